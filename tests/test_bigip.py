"""The BIG-IP side of each unit under the mock engine: provider, egress chain, ingress CRs, BGP."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components import config, pki
from components.bigip import drain, egress, ingress, persist, routing, tmsh_check
from tests import support
from tests.support import BEFORE_DEVICES, raw_stack_file, run_build, run_script
from tools import engine
from tools.validate import Validator

UNIT = "onprem-syd"
PARTITION = "/cpaas-onprem-syd/"


# The per-unit BIG-IP side (its own provider, BGP instance and save): prod before shared devices,
# where onprem-syd has its BIG-IP to itself. Shared devices: tests/test_devices.py.
def raw_stack(name: str) -> dict[str, Any]:
    return raw_stack_file(BEFORE_DEVICES) if name == "prod-before-devices" else support.raw_stack(name)


def stack(name: str) -> config.StackConfig:
    return config.parse_stack(raw_stack(name))


@pytest.fixture(scope="module")
def prod(prod_before_devices: engine.Run) -> engine.Run:
    return prod_before_devices


def _in_unit(run: engine.Run, unit: str, type_prefix: str) -> list[engine.Registration]:
    return [r for r in run.registrations if r.type.startswith(type_prefix) and r.name.startswith(f"{unit}-")]


# Their create and update take one lock per provider process and return on an error without
# releasing it, so a second one on that process would wait forever (components/bigip/device.py).
LOCKING = ("f5bigip:index/sslKeyCert:SslKeyCert", "f5bigip:index/wafPolicy:WafPolicy")


def _provider_of(run: engine.Run, reg: engine.Registration) -> engine.Registration:
    return run.by_urn()[reg.provider.rsplit("::", 1)[0]]


def test_each_unit_has_its_own_bigip_provider_verifying_tls_without_telemetry(prod: engine.Run) -> None:
    units = ("aws-syd", "azure-mel", UNIT)
    providers = [p for p in prod.by_type("pulumi:providers:f5bigip") if p.name != "gslb-provider"]
    assert {f"{u}-bigip-provider" for u in units} <= {p.name for p in providers}
    for p in providers:
        assert p.inputs["validateCertsDisable"] == "false"
        assert p.inputs["teemDisable"] == "true"
        assert p.inputs["password"] == engine.SECRET
        unit = next(u for u in units if p.name.startswith(f"{u}-"))
        assert p.inputs == prod.get(f"{unit}-bigip-provider").inputs, p.name  # the same device
        assert p.inputs["trustedCertPath"] == f"trust/prod/bigip-{unit}.pem"
    for unit in units:
        provider = prod.get(f"{unit}-bigip-provider")
        for reg in _in_unit(prod, unit, "f5bigip:"):
            if reg.type not in LOCKING:
                assert reg.provider.startswith(provider.urn + "::"), reg.name


def _two_templated_apps_in_one_unit() -> engine.Run:
    raw = raw_stack("prod-before-devices")
    httpbin = raw["units"][2]["apps"][1]
    assert (raw["units"][2]["name"], httpbin["name"]) == (UNIT, "httpbin")
    httpbin["waf"] = {"template": "POLICY_TEMPLATE_FUNDAMENTAL", "enforcementMode": "transparent"}
    return run_build(config.parse_stack(raw), "prod")


def test_every_step_that_takes_the_providers_lock_has_a_provider_process_of_its_own() -> None:
    """terraform-provider-bigip v1.26.0 guards SslKeyCert's and WafPolicy's create and update with
    one mutex per provider process, and returns on an error without unlocking it: a failed egress
    identity upload or WAF step would leave every later such step of the update waiting forever.
    The engine starts one plugin process per provider resource, so each gets its own provider for
    the same device."""
    run = _two_templated_apps_in_one_unit()
    locking = [r for r in run.registrations if r.type in LOCKING]
    assert {r.name for r in locking} >= {
        f"{UNIT}-egress-identity",
        f"{UNIT}-waf-bookinfo-rapid-deployment",
        f"{UNIT}-waf-httpbin-fundamental",
    }
    owners: dict[str, list[str]] = {}
    for reg in run.registrations:
        if reg.provider:
            owners.setdefault(reg.provider, []).append(reg.name)
    for reg in locking:
        assert owners[reg.provider] == [reg.name], reg.name  # nothing else on that process
        provider = _provider_of(run, reg)
        unit = reg.name.split("-egress-")[0].split("-waf-")[0]
        assert provider.inputs == run.get(f"{unit}-bigip-provider").inputs, reg.name


def test_the_egress_chain_lives_in_the_pulumi_partition_and_never_in_cis(prod: engine.Run) -> None:
    named = [r for r in _in_unit(prod, f"{UNIT}-egress", "f5bigip:ltm/") if "name" in r.inputs]
    assert named
    for reg in named:
        assert reg.inputs["name"].startswith(PARTITION), reg.inputs["name"]
        assert "-cis/" not in reg.inputs["name"]
    for reg in _in_unit(prod, f"{UNIT}-egress", "f5bigip:ssl/"):
        assert reg.inputs["partition"] == "cpaas-onprem-syd"
    # What CIS's objects may reference lives in /Common, never in Pulumi's partition.
    for reg in _in_unit(prod, f"{UNIT}-reencrypt", "f5bigip:"):
        assert reg.inputs.get("partition", "Common") == "Common"
        assert reg.inputs.get("name", "").startswith(("/Common/", "cpaas-onprem-syd-"))


def test_the_egress_virtual_server_depends_on_its_irule_data_group_profile_and_pools(
    prod: engine.Run,
) -> None:
    vs = prod.get(f"{UNIT}-egress-virtual-server")
    needed = {
        f"{UNIT}-egress-{role}"
        for role in ("irule", "allow-list", "client-ssl", "pool", "pool-member", "snat-pool")
    }
    direct = {prod.by_urn()[d].name for d in vs.dependencies}
    assert needed <= direct
    assert vs.inputs["clientProfiles"] == [f"{PARTITION}egress-mtls"]
    assert vs.inputs["irules"] == [f"{PARTITION}egress-spiffe-authz"]
    assert vs.inputs["sourceAddressTranslation"] == "snat"
    assert vs.inputs["snatpool"] == f"{PARTITION}egress-snat"
    assert (vs.inputs["destination"], vs.inputs["port"]) == ("10.30.17.100", 443)
    profile = prod.get(f"{UNIT}-egress-client-ssl")
    assert {d for d in profile.dependencies} >= {
        prod.get(f"{UNIT}-egress-{r}").urn for r in ("identity", "mesh-ca")
    }


def test_the_client_ssl_profile_requires_a_client_certificate_from_the_mesh_ca_only(prod: engine.Run) -> None:
    profile = prod.get(f"{UNIT}-egress-client-ssl").inputs
    assert profile["peerCertMode"] == "require"
    assert profile["authenticate"] == "always"
    assert profile["caFile"] == f"{PARTITION}mesh-ca-bundle.crt"
    assert profile["retainCertificate"] == "true"
    assert profile["certKeyChain"]["key"] == f"{PARTITION}egress-gateway.key"


def test_the_identity_key_is_only_ever_a_secret(prod: engine.Run) -> None:
    assert prod.get(f"{UNIT}-egress-identity").inputs["keyContent"] == engine.SECRET
    assert "PRIVATE KEY" not in json.dumps([r.as_json() for r in prod.registrations])


@pytest.mark.parametrize("unit", ["aws-syd", "azure-mel", "onprem-syd"])
def test_the_egress_identity_key_and_certificate_are_uploaded_together_as_the_profile_names_them(
    prod: engine.Run, unit: str
) -> None:
    """One SslKeyCert uploads both in one transaction, so a new key never meets the old
    certificate; the provider creates them as /<partition>/<key_name> and /<partition>/<cert_name>."""
    assert not _in_unit(prod, f"{unit}-egress", "f5bigip:ssl/key:Key")
    [pair] = _in_unit(prod, f"{unit}-egress", "f5bigip:index/sslKeyCert:SslKeyCert")
    assert pair.name == f"{unit}-egress-identity"
    assert (pair.inputs["keyContent"], pair.inputs["certContent"]) == (engine.SECRET, engine.SECRET)
    partition = pair.inputs["partition"]
    assert partition == stack("prod-before-devices").unit(unit).bigip.pulumi_partition  # type: ignore[union-attr]
    profile = prod.get(f"{unit}-egress-client-ssl")
    chain = profile.inputs["certKeyChain"]
    assert chain["cert"] == f"/{partition}/{pair.inputs['certName']}"
    assert chain["key"] == f"/{partition}/{pair.inputs['keyName']}"
    assert pair.urn in profile.dependencies
    assert pair.options["deleteBeforeReplace"] is True


def test_every_named_bigip_object_is_deleted_before_it_is_replaced(prod: engine.Run) -> None:
    # The forward-proxy node is named by its address: a replacement has a new name, and the old
    # node must outlive the pool member that still uses it, so it is created first.
    node = f"{UNIT}-egress-forward-proxy-node"
    named = ("f5bigip:ltm/", "f5bigip:ssl/", "f5bigip:index/sslKeyCert:")
    for reg in [r for prefix in named for r in _in_unit(prod, UNIT, prefix)]:
        assert reg.options["deleteBeforeReplace"] is (reg.name != node), reg.name
    assert prod.get(node).inputs["name"] == f"{PARTITION}{prod.get(node).inputs['address']}"


def test_the_pool_member_names_the_explicit_node_so_nothing_is_left_in_the_partition(
    prod: engine.Run,
) -> None:
    node, member = prod.get(f"{UNIT}-egress-forward-proxy-node"), prod.get(f"{UNIT}-egress-pool-member")
    assert member.inputs["node"] == f"{node.inputs['name']}:3128"
    assert node.urn in member.dependencies
    # The provider's pattern for "an existing node": /<partition>/<name>:<port>.
    assert re.fullmatch(r"/([a-zA-z0-9?_-]+)/([a-zA-z0-9.?_-]+):(\d+)", member.inputs["node"])
    cleanup = prod.get(f"{UNIT}-egress-snat-translations-cleanup")
    assert cleanup.inputs["when"] == "destroy"
    snat = prod.get(f"{UNIT}-egress-snat-pool")
    assert {f"delete ltm snat-translation {m}" for m in snat.inputs["members"]} <= set(
        cleanup.inputs["commands"]
    )
    assert cleanup.urn in snat.dependencies  # the pool goes first on destroy, then the translations


SNAT_POOL = "f5bigip:ltm/snatPool:SnatPool"


@pytest.mark.parametrize("unit", ["aws-syd", "azure-mel", "onprem-syd"])
def test_a_per_app_snat_address_is_used_by_its_app_only_never_by_the_virtual_servers_snat_pool(
    prod: engine.Run, unit: str
) -> None:
    """The virtual server's SNAT pool serves every namespace without an address of its own, so an
    address in it can leave with any of them: a per-app address sits alone in its app's pool."""
    egress_config = stack("prod-before-devices").unit(unit).egress
    assert egress_config is not None
    per_app = {str(a.snat_address): a.namespace for a in egress_config.allow if a.snat_address is not None}
    assert per_app, "the prod stack has per-app addresses to check"
    pools = {r.inputs["name"]: r for r in _in_unit(prod, f"{unit}-egress", SNAT_POOL)}
    shared = pools[prod.get(f"{unit}-egress-virtual-server").inputs["snatpool"]]
    shared_addresses = {m.rsplit("/", 1)[1] for m in shared.inputs["members"]}
    assert shared_addresses == {str(a) for a in egress_config.snat_addresses}
    assert not shared_addresses & set(per_app)
    data_group = prod.get(f"{unit}-egress-allow-list")
    records = {r["name"]: r["data"] for r in data_group.inputs["records"]}
    for address, namespace in per_app.items():
        own = pools[records[namespace].split("|")[1]]
        assert [m.rsplit("/", 1)[1] for m in own.inputs["members"]] == [address]
        assert own.urn in data_group.dependencies  # the pool the record names exists first
    members = [m for pool in pools.values() for m in pool.inputs["members"]]
    assert len(members) == len(set(members)), "an address in two SNAT pools"
    cleanup = prod.get(f"{unit}-egress-snat-translations-cleanup")
    assert sorted(cleanup.inputs["commands"]) == sorted(f"delete ltm snat-translation {m}" for m in members)
    for pool in pools.values():
        assert cleanup.urn in pool.dependencies


def test_the_allow_list_is_a_data_group_built_from_config_and_the_irule_names_it(prod: engine.Run) -> None:
    dg = prod.get(f"{UNIT}-egress-allow-list").inputs
    assert dg["type"] == "string"
    assert dg["records"] == [{"data": "*|/cpaas-onprem-syd/egress-snat-bookinfo", "name": "bookinfo"}]
    rule = prod.get(f"{UNIT}-egress-irule").inputs["irule"]
    assert "/cpaas-onprem-syd/egress-allow" in rule
    assert "onprem-syd.cpaas.example-bank.com" in rule
    assert "@TRUST_DOMAIN@" not in rule and "@DATA_GROUP@" not in rule


def test_the_egress_gateway_is_registered_in_the_mesh_with_istio_mutual(
    prod: engine.Run, schema_dir: Path
) -> None:
    se = prod.get(f"{UNIT}-egress-service-entry").inputs
    assert se["spec"]["subjectAltNames"] == [pki.egress_spiffe_id("onprem-syd.cpaas.example-bank.com")]
    assert se["spec"]["location"] == "MESH_EXTERNAL"
    assert se["spec"]["endpoints"] == [{"address": "10.30.17.100"}]
    assert se["spec"]["exportTo"] == ["bookinfo"]
    dr = prod.get(f"{UNIT}-egress-destination-rule").inputs
    assert dr["spec"]["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL"
    validator = Validator(schema_dir)
    for reg in (prod.get(f"{UNIT}-egress-service-entry"), prod.get(f"{UNIT}-egress-destination-rule")):
        assert validator.k8s_object(dict(reg.inputs), "1.34", reg.name) == []
    assert not validator.skipped and sum(validator.checked.values()) == 2  # validated, not skipped


def test_pulumi_leaves_the_cis_partition_to_cis_and_as3(prod: engine.Run) -> None:
    """AS3 creates and deletes its tenants itself (CIS posts them): a Pulumi-managed partition
    fails to delete, and to refresh, once AS3 has removed it."""
    partitions = {r.inputs["name"] for r in prod.by_type("f5bigip:index/partition:Partition")}
    for unit in ("aws-syd", "azure-mel", UNIT):
        bigip = stack("prod-before-devices").unit(unit).bigip
        assert bigip is not None
        assert bigip.pulumi_partition in partitions
        assert bigip.cis_partition not in partitions


@pytest.mark.parametrize("unit", ["aws-syd", "azure-mel", "onprem-syd"])
def test_removing_a_unit_drains_cis_before_deleting_what_cis_objects_reference(
    prod: engine.Run, unit: str
) -> None:
    """Deletion runs in reverse dependency order: the CIS resources go first, then the drain waits
    until CIS has emptied its partition on the device, then the re-encrypt profiles, the WAF
    policies and the CIS release go."""
    wait = prod.get(f"{unit}-cis-drain-wait")
    assert wait.type == "command:local:Command"
    assert "create" not in wait.inputs and wait.inputs["delete"] == drain.script()
    referenced = [
        *_in_unit(prod, f"{unit}-reencrypt", "f5bigip:"),
        *_in_unit(prod, f"{unit}-waf", "f5bigip:"),
        prod.get(f"{unit}-cis-release"),
    ]
    assert len(referenced) >= 2
    for reg in referenced:
        assert reg.urn in wait.dependencies, reg.name
    crs = _in_unit(prod, f"{unit}-ingress", "kubernetes:cis.f5.com/v1:")
    assert crs
    for reg in crs:
        assert wait.urn in reg.dependencies, reg.name
    env = wait.inputs["environment"]
    bigip = stack("prod-before-devices").unit(unit).bigip
    assert bigip is not None
    assert env["CPAAS_CIS_PARTITION"] == bigip.cis_partition
    assert env["CPAAS_BIGIP_URL"] == f"https://{bigip.management_address}:{bigip.management_port}"
    assert env["CPAAS_BIGIP_PASSWORD"] == engine.SECRET
    assert env["CPAAS_BIGIP_CA_PEM"].startswith("-----BEGIN CERTIFICATE-----")


def _object_path(reg: engine.Registration) -> str:
    """The BIG-IP path of a re-encrypt profile (its name) or a WAF policy (partition and name)."""
    name = str(reg.inputs.get("name", ""))
    return name if name.startswith("/") else f"/{reg.inputs.get('partition', 'Common')}/{name}"


@pytest.mark.parametrize("unit", ["aws-syd", "azure-mel", "onprem-syd"])
def test_removing_an_app_waits_for_cis_to_release_its_reencrypt_profile_and_waf_policy(
    prod: engine.Run, unit: str
) -> None:
    """CIS applies a deleted or changed VirtualServer later, and the BIG-IP refuses to delete a
    profile or WAF policy still in use. So each object that CIS resources name and Pulumi deletes
    has a wait: it depends on the object and CIS, and every CIS resource depends on it, so it is
    deleted after them and before both, and its delete waits until nothing names the path."""
    templated = unit != "azure-mel"  # azure-mel names an existing policy: nothing to delete
    # Every http-mesh app has a re-encrypt profile: bookinfo, and portal (aws-syd) or teller (onprem-syd).
    mesh_apps = [a.name for a in stack("prod").unit(unit).apps if a.kind == "http-mesh"]
    expected = {f"{unit}-cis-drain-{a}-reencrypt": f"/Common/cpaas-{unit}-{a}-reencrypt" for a in mesh_apps}
    if templated:
        waf_path = f"/Common/cpaas-{unit}-bookinfo-waf-rapid-deployment"
        expected[f"{unit}-cis-drain-bookinfo-waf-rapid-deployment"] = waf_path
    waits = {r.name: r for r in _in_unit(prod, f"{unit}-cis-drain", "command:local:Command")}
    assert set(waits) == {f"{unit}-cis-drain-wait", *expected}
    owners = {_object_path(r): r for r in _in_unit(prod, unit, "f5bigip:") if r.inputs.get("name")}
    crs = _in_unit(prod, f"{unit}-ingress", "kubernetes:cis.f5.com/v1:")
    bigip = stack("prod-before-devices").unit(unit).bigip
    assert bigip is not None and crs
    for name, path in expected.items():
        wait = waits[name]
        assert "create" not in wait.inputs and wait.inputs["delete"] == drain.script()
        env = wait.inputs["environment"]
        assert env["CPAAS_DRAIN_REFERENCE"] == path
        assert env["CPAAS_CIS_PARTITION"] == bigip.cis_partition
        assert env["CPAAS_BIGIP_PASSWORD"] == engine.SECRET
        assert env["CPAAS_BIGIP_CA_PEM"].startswith("-----BEGIN CERTIFICATE-----")
        assert owners[path].urn in wait.dependencies, name
        assert prod.get(f"{unit}-cis-release").urn in wait.dependencies, name
        for reg in crs:
            assert wait.urn in reg.dependencies, (name, reg.name)


def test_ingress_has_a_cis_resource_per_app_in_the_right_namespace(prod: engine.Run) -> None:
    kinds = {
        (r.inputs["kind"], r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"])
        for r in _in_unit(prod, UNIT, "kubernetes:cis.f5.com/v1:")
    }
    assert kinds == {
        ("VirtualServer", "istio-ingress", "bookinfo"),
        ("TLSProfile", "istio-ingress", "bookinfo"),
        ("VirtualServer", "istio-ingress", "teller"),
        ("TLSProfile", "istio-ingress", "teller"),
        ("VirtualServer", "nginx-ingress", "httpbin"),
        ("TLSProfile", "nginx-ingress", "httpbin"),
        ("TransportServer", "mqtt", "mqtt"),
    }
    for reg in _in_unit(prod, UNIT, "kubernetes:cis.f5.com/v1:"):
        assert reg.inputs["metadata"]["labels"]["f5cr"] == "true"
        assert prod.upstream(reg) >= {prod.get(f"{UNIT}-cis-crds").urn}


def test_app_tls_secrets_are_secret_and_come_from_the_unit_pki(prod: engine.Run) -> None:
    secret = prod.get(f"{UNIT}-ingress-bookinfo-tls")
    assert secret.inputs["type"] == "kubernetes.io/tls"
    assert secret.inputs["stringData"] == {"tls.crt": engine.SECRET, "tls.key": engine.SECRET}
    leaf = prod.get(f"pki-{pki.app_role(UNIT, 'bookinfo')}")
    assert leaf.urn in prod.upstream(secret)


def test_ingress_specs_are_pure_functions_of_the_app() -> None:
    app = stack("prod-before-devices").unit(UNIT).apps[0]
    vs = ingress.mesh_virtual_server(UNIT, app)
    assert vs["virtualServerAddress"] == "10.30.17.10" and vs["host"] == "bookinfo.apps.example-bank.com"
    profile = ingress.mesh_tls_profile(UNIT, app)["tls"]
    assert profile["termination"] == "reencrypt"
    assert profile["serverSSL"] == "/Common/cpaas-onprem-syd-bookinfo-reencrypt"
    mqtt = stack("prod-before-devices").unit(UNIT).apps[2]
    assert ingress.transport_server(mqtt)["type"] == "tcp"


def test_bgp_is_recreated_whole_with_graceful_restart_and_one_neighbour_per_node() -> None:
    """As DO does: BIG-IP cannot overwrite a peer group with members or change local-as, so the
    object is deleted when it exists and created whole; running the commands again converges."""
    unit = stack("prod-before-devices").unit(UNIT)
    commands = routing.tmsh_commands(unit)
    assert commands[0] == "modify sys db tmrouted.tmos.routing value enable"
    assert commands[1] == (
        'run util bash -c "if tmsh list net routing bgp /Common/cpaas-onprem-syd >/dev/null 2>&1; '
        'then tmsh delete net routing bgp /Common/cpaas-onprem-syd; fi"'
    )
    assert commands[2].startswith("create net routing bgp /Common/cpaas-onprem-syd local-as 64513 ")
    assert "graceful-restart { graceful-reset enabled restart-time 120 }" in commands[2]
    assert "peer-group add { calico { remote-as 64512 } }" in commands[2]
    assert "neighbor add { 10.30.0.11 { peer-group calico } 10.30.0.12 { peer-group calico } " in commands[2]
    assert "modify" not in " ".join(commands[1:]) and "replace-all-with" not in " ".join(commands)
    # No save in the list: the unit's ConfigSave saves only once the output shows no tmsh error.
    assert len(commands) == 3 and not any("save" in c for c in commands)
    assert "'" not in " ".join(commands)  # the provider does not escape single quotes on update


def test_bgp_runs_only_on_calico_units_and_cleans_up_on_destroy(prod: engine.Run) -> None:
    commands = [c.name for c in prod.by_type("f5bigip:index/command:Command") if "-bgp-" in c.name]
    assert sorted(commands) == [f"{UNIT}-bgp-apply", f"{UNIT}-bgp-remove"]
    assert prod.get(f"{UNIT}-bgp-remove").inputs["when"] == "destroy"


def _device_objects(run: engine.Run, unit: str) -> list[engine.Registration]:
    """The f5bigip objects of a unit, without its save commands and destroy-only cleanups."""
    skip = {
        f"{unit}-bigip-save-command",
        f"{unit}-bigip-save-on-destroy",
        f"{unit}-egress-snat-translations-cleanup",
    }
    return [r for r in _in_unit(run, unit, "f5bigip:") if r.name not in skip]


@pytest.mark.parametrize("unit", ["aws-syd", "azure-mel", "onprem-syd"])
def test_the_running_config_is_saved_after_every_change_and_after_the_last_deletion(
    prod: engine.Run, unit: str
) -> None:
    save = prod.get(f"{unit}-bigip-save-command")
    assert save.inputs == {"commands": ["save sys config"], "when": "apply"}
    assert save.provider.startswith(prod.get(f"{unit}-bigip-provider").urn)
    objects = _device_objects(prod, unit)
    assert len(objects) >= 14 and {o.urn for o in objects} <= set(save.dependencies)
    # Re-runs exactly when their state changes; no secret in the trigger.
    assert re.fullmatch(r"[0-9a-f]{64}", save.options["replacementTrigger"])
    # On destroy, dependents go first: this one sits under every object, so it saves last.
    last = prod.get(f"{unit}-bigip-save-on-destroy")
    assert last.inputs == {"commands": ["save sys config"], "when": "destroy"}
    for reg in _in_unit(prod, unit, "f5bigip:"):
        if reg.name != last.name:
            assert last.urn in prod.upstream(reg), reg.name


def _triggers(raw: dict[str, Any], mocks: type[engine.StateMocks] = engine.StateMocks) -> dict[str, Any]:
    run = run_build(config.parse_stack(raw), "prod", mocks=mocks)
    return {
        r.name: r.options["replacementTrigger"]
        for r in run.by_type("f5bigip:index/command:Command")
        if "-bigip-save-" in r.name
    }


def test_the_saves_run_again_when_a_units_bigip_config_changes_and_only_that_units() -> None:
    before = _triggers(raw_stack("prod-before-devices"))
    assert len(before) == 6 and _triggers(raw_stack("prod-before-devices")) == before  # deterministic
    unit = stack("prod-before-devices").unit(UNIT)
    assert before[f"{UNIT}-bigip-save-on-destroy"] == persist.unit_digest(unit, routing.tmsh_commands(unit))
    changed = raw_stack("prod-before-devices")
    changed["units"][2]["egress"]["allow"][0]["serviceAccounts"] = ["bookinfo-productpage"]
    after = _triggers(changed)
    for role in ("save-command", "save-on-destroy"):
        assert after[f"{UNIT}-bigip-{role}"] != before[f"{UNIT}-bigip-{role}"]
    assert {k: v for k, v in after.items() if UNIT not in k} == {
        k: v for k, v in before.items() if UNIT not in k
    }


def test_the_save_triggers_never_read_what_the_device_returns() -> None:
    """A failed BIG-IP object's outputs are unknown, and an unknown trigger stops the whole
    update: the triggers come from what cpaas sends, so device-side state cannot move them."""

    class DeviceAddsState(engine.StateMocks):
        def new_resource(self, args):  # type: ignore[no-untyped-def]
            id_, state = super().new_resource(args)
            if args.typ.startswith("f5bigip:") and args.typ != "f5bigip:index/command:Command":
                state = {**state, "description": "changed on the device", "generation": 42}
            return id_, state

    assert _triggers(raw_stack("prod-before-devices"), DeviceAddsState) == _triggers(
        raw_stack("prod-before-devices")
    )


def _device_answers(command: str, results: list[str]) -> type[engine.StateMocks]:
    """Mocks whose BIG-IP stores `results` as what the f5bigip.Command `command` printed."""

    class Answers(engine.StateMocks):
        def new_resource(self, args):  # type: ignore[no-untyped-def]
            id_, state = super().new_resource(args)
            if args.name == command:
                state["commandResults"] = results
            return id_, state

    return Answers


# onprem-syd's BIG-IP refuses the BGP update: its stored output holds a tmsh error.
DeviceRefusesBgp = _device_answers(f"{UNIT}-bgp-apply", ["", "", "Syntax Error: unknown property"])


def _run_step(reg: engine.Registration, script: str) -> subprocess.CompletedProcess[str]:
    """Runs a registered local command's script as the step would: its interpreter, its environment."""
    return run_script(reg.inputs["interpreter"], reg.inputs[script], reg.inputs.get("environment", {}))


def test_a_refused_bgp_update_fails_only_its_own_check_step_and_the_program_finishes() -> None:
    """The program never raises on what a device answered (an exception in an apply cancels every
    unit's update); the check is a step of its own, so only its dependents are skipped."""
    run = run_build(stack("prod-before-devices"), "prod", mocks=DeviceRefusesBgp)
    apply, check = run.get(f"{UNIT}-bgp-apply"), run.get(f"{UNIT}-bgp-check")
    assert check.type == "command:local:Command" and apply.urn in check.dependencies
    env = check.inputs["environment"]
    assert env["CPAAS_CHECK_OUTPUT_2"] == "Syntax Error: unknown property"
    assert env["CPAAS_CHECK_URN"] == apply.urn
    assert check.inputs["create"] == tmsh_check.script()
    done = _run_step(check, "create")
    assert done.returncode != 0
    assert f"unit {UNIT}: BGP configuration failed on the BIG-IP: " in done.stderr
    assert f"pulumi up --replace '{apply.urn}'" in done.stderr
    for unit in ("aws-syd", "azure-mel", UNIT):
        run.get(f"{unit}-bigip-save-command")  # every unit is registered as usual


def test_an_accepted_bgp_update_passes_its_check_step() -> None:
    run = run_build(
        stack("prod-before-devices"), "prod", mocks=_device_answers(f"{UNIT}-bgp-apply", ["", "", ""])
    )
    done = _run_step(run.get(f"{UNIT}-bgp-check"), "create")
    assert done.returncode == 0, done.stderr


def test_the_save_waits_for_the_bgp_check_step_so_a_refused_update_is_never_saved(prod: engine.Run) -> None:
    """A failed step's dependents are skipped (--continue-on-error) or never started: the save
    depends on the check directly, and its inputs carry nothing from the device."""
    save, check = prod.get(f"{UNIT}-bigip-save-command"), prod.get(f"{UNIT}-bgp-check")
    assert check.urn in save.dependencies
    assert save.inputs == {"commands": ["save sys config"], "when": "apply"}


@pytest.mark.parametrize("unit", ["aws-syd", "azure-mel", "onprem-syd"])
def test_the_save_sys_config_output_is_checked_by_a_step_of_its_own_with_the_same_script(
    prod: engine.Run, unit: str
) -> None:
    save, check = prod.get(f"{unit}-bigip-save-command"), prod.get(f"{unit}-bigip-save-check")
    assert check.type == "command:local:Command" and save.urn in check.dependencies
    assert check.inputs["create"] == prod.get(f"{UNIT}-bgp-check").inputs["create"] == tmsh_check.script()
    env = check.inputs["environment"]
    assert (env["CPAAS_CHECK_COUNT"], env["CPAAS_CHECK_COMMAND_0"]) == ("1", "save sys config")
    assert env["CPAAS_CHECK_URN"] == save.urn


def test_a_refused_save_fails_its_check_step() -> None:
    refused = ["01070711:3: Caught configuration exception (0), unable to save"]
    run = run_build(
        stack("prod-before-devices"), "prod", mocks=_device_answers(f"{UNIT}-bigip-save-command", refused)
    )
    done = _run_step(run.get(f"{UNIT}-bigip-save-check"), "create")
    assert done.returncode != 0 and "save sys config" in done.stderr


def test_the_code_digest_covers_the_bigip_code_and_irules() -> None:
    paths = [path for path, _ in persist.code_files()]
    assert {"egress.py", "persist.py", "routing.py", "irules/egress_authz.tcl", "irules/__init__.py"} <= set(
        paths
    )
    assert not [p for p in paths if "__pycache__" in p or not p.endswith((".py", ".tcl"))]


def _edited(path: str, edit: Callable[[str], str]) -> list[tuple[str, str]]:
    files = persist.code_files()
    assert path in dict(files), path
    out = [(p, edit(text) if p == path else text) for p, text in files]
    assert out != files, f"the edit left {path} as it was"
    return out


@pytest.mark.parametrize("path", ["egress.py", "persist.py", "routing.py", "irules/__init__.py"])
def test_a_comment_docstring_or_layout_edit_in_the_bigip_code_leaves_the_save_trigger_as_it_was(
    path: str,
) -> None:
    """Nothing the BIG-IP receives changes, so no device is saved again (issue 15)."""

    def reword(text: str) -> str:
        assert text.startswith('"""'), f"{path} has no module docstring"
        # Every docstring that starts on its opening quotes' line: module, class, function.
        text = re.sub(r'^(\s*)"""(?=\w)', r'\1"""Reworded. ', text, flags=re.MULTILINE)
        return text.replace("\n\n\n", "\n\n\n\n# A new comment.\n", 1) + "\n# The end.\n"

    assert persist.code_digest(_edited(path, reword)) == persist.code_digest()


def test_a_change_in_what_the_bigip_code_sends_moves_the_save_trigger() -> None:
    now = persist.code_digest()
    save = _edited("persist.py", lambda t: t.replace('"save sys config"', '"save sys config partitions all"'))
    assert persist.code_digest(save) != now
    pool = _edited("egress.py", lambda t: t.replace('"round-robin"', '"ratio-member"'))
    assert persist.code_digest(pool) != now
    # An iRule goes to the BIG-IP as written, comments included.
    tcl = "irules/egress_authz.tcl"
    assert persist.code_digest(_edited(tcl, lambda t: "# A new comment.\n" + t)) != now


def test_the_save_refuses_an_empty_object_list() -> None:
    with pytest.raises(ValueError, match="nothing to save"):
        engine.run(lambda: {"x": persist.ConfigSave("save", persist.SaveArgs((), "t")).urn})


def test_the_do_form_of_the_bgp_peering_validates_against_the_do_schema(schema_dir: Path) -> None:
    declaration = routing.do_declaration(stack("prod-before-devices").unit(UNIT))
    validator = Validator(schema_dir)
    assert validator.do(declaration, "bgp.do.json") == []
    assert not validator.skipped and validator.checked["do"] == 1  # validated, not skipped


def test_the_dev_stack_has_no_bigip_resources(dev: engine.Run) -> None:
    assert not [r for r in dev.registrations if r.type.startswith(("f5bigip:", "pulumi:providers:f5bigip"))]


def test_egress_helpers_name_the_mesh_host_and_objects() -> None:
    unit = stack("prod-before-devices").unit(UNIT)
    assert egress.egress_host(unit) == "egress.onprem-syd.cpaas.internal"
    assert egress.Names("p").virtual_server == "/p/egress"


def test_the_reencrypt_profile_sends_the_fqdn_and_verifies_the_gateway_against_the_org_root(
    prod: engine.Run,
) -> None:
    profile = prod.get(f"{UNIT}-reencrypt-bookinfo")
    assert profile.provider.startswith(prod.get(f"{UNIT}-bigip-provider").urn)
    assert profile.inputs["name"] == "/Common/cpaas-onprem-syd-bookinfo-reencrypt"
    assert profile.inputs["serverName"] == "bookinfo.apps.example-bank.com"
    assert profile.inputs["peerCertMode"] == "require"
    assert profile.inputs["caFile"] == "/Common/cpaas-onprem-syd-org-root.crt"
    assert profile.inputs["untrustedCertResponseControl"] == "drop"
    vs = prod.get(f"{UNIT}-ingress-bookinfo-tlsprofile")
    assert profile.urn in prod.upstream(vs)


@pytest.mark.parametrize("unit", ["aws-syd", "azure-mel", "onprem-syd"])
def test_every_bigip_object_depends_directly_on_the_save_on_destroy(prod: engine.Run, unit: str) -> None:
    """The engine orders the deletions at the end of an update by direct dependencies only, so a
    removed object must name the old save-on-destroy itself to be deleted before it saves."""
    last = prod.get(f"{unit}-bigip-save-on-destroy")
    for reg in _in_unit(prod, unit, "f5bigip:"):
        if reg.name not in (last.name, f"{unit}-bigip-save-command"):
            assert last.urn in reg.dependencies, reg.name


def test_the_bgp_commands_and_the_provider_version_are_part_of_what_is_saved() -> None:
    unit = stack("prod-before-devices").unit(UNIT)
    commands = routing.tmsh_commands(unit)
    assert persist.unit_digest(unit, commands) != persist.unit_digest(
        unit, [c.replace("120", "90") for c in commands]
    )
