"""The BIG-IP side of each unit under the mock engine: provider, egress chain, ingress CRs, BGP."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from components import config, pki
from components.bigip import egress, ingress, persist, routing
from tests.support import ROOT, raw_stack, run_build, stack
from tools import engine
from tools.validate import Validator, resolve_schema_dir

UNIT = "onprem-syd"
PARTITION = "/cpaas-onprem-syd/"


@pytest.fixture(scope="module")
def prod() -> engine.Run:
    return run_build(stack("prod"), "prod")


def _in_unit(run: engine.Run, unit: str, type_prefix: str) -> list[engine.Registration]:
    return [r for r in run.registrations if r.type.startswith(type_prefix) and r.name.startswith(f"{unit}-")]


def test_each_unit_has_its_own_bigip_provider_verifying_tls_without_telemetry(prod: engine.Run) -> None:
    providers = [p for p in prod.by_type("pulumi:providers:f5bigip") if p.name != "gslb-provider"]
    assert sorted(p.name for p in providers) == [
        f"{u}-bigip-provider" for u in ("aws-syd", "azure-mel", UNIT)
    ]
    for p in providers:
        assert p.inputs["validateCertsDisable"] == "false"
        assert p.inputs["teemDisable"] == "true"
        assert p.inputs["password"] == engine.SECRET
        assert p.inputs["trustedCertPath"].startswith("/trust/bigipCert-")
    for unit in ("aws-syd", "azure-mel", UNIT):
        provider = prod.get(f"{unit}-bigip-provider")
        for reg in _in_unit(prod, unit, "f5bigip:"):
            assert reg.provider.startswith(provider.urn + "::"), reg.name


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
        prod.get(f"{UNIT}-egress-{r}").urn for r in ("identity-cert", "identity-key", "mesh-ca")
    }


def test_the_client_ssl_profile_requires_a_client_certificate_from_the_mesh_ca_only(prod: engine.Run) -> None:
    profile = prod.get(f"{UNIT}-egress-client-ssl").inputs
    assert profile["peerCertMode"] == "require"
    assert profile["authenticate"] == "always"
    assert profile["caFile"] == f"{PARTITION}mesh-ca-bundle.crt"
    assert profile["retainCertificate"] == "true"
    assert profile["certKeyChain"]["key"] == f"{PARTITION}egress-identity.key"


def test_the_identity_key_is_only_ever_a_secret(prod: engine.Run) -> None:
    assert prod.get(f"{UNIT}-egress-identity-key").inputs["content"] == engine.SECRET
    assert "PRIVATE KEY" not in json.dumps([r.as_json() for r in prod.registrations])


def test_every_named_bigip_object_is_deleted_before_it_is_replaced(prod: engine.Run) -> None:
    # The forward-proxy node is named by its address: a replacement has a new name, and the old
    # node must outlive the pool member that still uses it, so it is created first.
    node = f"{UNIT}-egress-forward-proxy-node"
    for reg in _in_unit(prod, UNIT, "f5bigip:ltm/") + _in_unit(prod, UNIT, "f5bigip:ssl/"):
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
    assert cleanup.inputs["commands"] == [f"delete ltm snat-translation {m}" for m in snat.inputs["members"]]
    assert cleanup.urn in snat.dependencies  # the pool goes first on destroy, then the translations


def test_the_allow_list_is_a_data_group_built_from_config_and_the_irule_names_it(prod: engine.Run) -> None:
    dg = prod.get(f"{UNIT}-egress-allow-list").inputs
    assert dg["type"] == "string"
    assert dg["records"] == [{"data": "*|10.30.17.201", "name": "bookinfo"}]
    rule = prod.get(f"{UNIT}-egress-irule").inputs["irule"]
    assert "/cpaas-onprem-syd/egress-allow" in rule
    assert "onprem-syd.cpaas.example-bank.com" in rule
    assert "@TRUST_DOMAIN@" not in rule and "@DATA_GROUP@" not in rule


def test_the_egress_gateway_is_registered_in_the_mesh_with_istio_mutual(prod: engine.Run) -> None:
    se = prod.get(f"{UNIT}-egress-service-entry").inputs
    assert se["spec"]["subjectAltNames"] == [pki.egress_spiffe_id("onprem-syd.cpaas.example-bank.com")]
    assert se["spec"]["location"] == "MESH_EXTERNAL"
    assert se["spec"]["endpoints"] == [{"address": "10.30.17.100"}]
    assert se["spec"]["exportTo"] == ["bookinfo"]
    dr = prod.get(f"{UNIT}-egress-destination-rule").inputs
    assert dr["spec"]["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL"
    validator = Validator(resolve_schema_dir(None))
    for reg in (prod.get(f"{UNIT}-egress-service-entry"), prod.get(f"{UNIT}-egress-destination-rule")):
        assert validator.k8s_object(dict(reg.inputs), "1.34", reg.name) == []


def test_ingress_has_a_cis_resource_per_app_in_the_right_namespace(prod: engine.Run) -> None:
    kinds = {
        (r.inputs["kind"], r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"])
        for r in _in_unit(prod, UNIT, "kubernetes:cis.f5.com/v1:")
    }
    assert kinds == {
        ("VirtualServer", "istio-ingress", "bookinfo"),
        ("TLSProfile", "istio-ingress", "bookinfo"),
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
    app = stack("prod").unit(UNIT).apps[0]
    vs = ingress.mesh_virtual_server(UNIT, app)
    assert vs["virtualServerAddress"] == "10.30.17.10" and vs["host"] == "bookinfo.apps.example-bank.com"
    profile = ingress.mesh_tls_profile(UNIT, app)["tls"]
    assert profile["termination"] == "reencrypt"
    assert profile["serverSSL"] == "/Common/cpaas-onprem-syd-bookinfo-reencrypt"
    mqtt = stack("prod").unit(UNIT).apps[2]
    assert ingress.transport_server(mqtt)["type"] == "tcp"


def test_bgp_is_recreated_whole_with_graceful_restart_and_one_neighbour_per_node() -> None:
    """As DO does: BIG-IP cannot overwrite a peer group with members or change local-as, so the
    object is deleted when it exists and created whole; running the commands again converges."""
    unit = stack("prod").unit(UNIT)
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
    return {r.name: r.options["replacementTrigger"] for r in run.registrations if "-bigip-save-" in r.name}


def test_the_saves_run_again_when_a_units_bigip_config_changes_and_only_that_units() -> None:
    before = _triggers(raw_stack("prod"))
    assert len(before) == 6 and _triggers(raw_stack("prod")) == before  # deterministic
    unit = stack("prod").unit(UNIT)
    assert before[f"{UNIT}-bigip-save-on-destroy"] == persist.unit_digest(unit, routing.tmsh_commands(unit))
    changed = raw_stack("prod")
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

    assert _triggers(raw_stack("prod"), DeviceAddsState) == _triggers(raw_stack("prod"))


_REFUSED_BGP = """
import json
from components import config
from components.bigip import routing
from tests.support import raw_stack, run_build
from tools import engine

registered = []

class DeviceSaysNo(engine.StateMocks):
    def new_resource(self, args):
        registered.append(args.name)
        id_, state = super().new_resource(args)
        if args.name == "onprem-syd-bgp-apply":
            state["commandResults"] = ["", "", "Syntax Error: unknown property"]
        return id_, state

try:
    run_build(config.parse_stack(raw_stack("prod")), "prod", mocks=DeviceSaysNo)
    failure = None
except routing.TmshError as exc:
    failure = type(exc).__name__
print(json.dumps({"failure": failure, "registered": registered}))
"""


def test_the_save_waits_for_the_bgp_check_so_a_refused_update_is_not_saved() -> None:
    # In its own interpreter: a whole build failing inside an apply can leave CPython 3.11's
    # recursion-depth bookkeeping off in a deep (pytest) stack, which breaks later parsing.
    done = subprocess.run(
        [sys.executable, "-c", _REFUSED_BGP],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["failure"] == "TmshError"
    registered = result["registered"]
    assert f"{UNIT}-bgp-apply" in registered and "aws-syd-bigip-save-command" in registered
    assert f"{UNIT}-bigip-save-command" not in registered


def test_the_code_digest_covers_the_bigip_code_and_irules() -> None:
    paths = [path for path, _ in persist.code_files()]
    assert {"egress.py", "persist.py", "routing.py", "irules/egress_authz.tcl", "irules/__init__.py"} <= set(
        paths
    )
    assert not [p for p in paths if "__pycache__" in p or not p.endswith((".py", ".tcl"))]


def test_the_save_refuses_an_empty_object_list() -> None:
    with pytest.raises(ValueError, match="nothing to save"):
        engine.run(lambda: {"x": persist.ConfigSave("save", persist.SaveArgs((), "t")).urn})


def test_the_do_form_of_the_bgp_peering_validates_against_the_do_schema() -> None:
    declaration = routing.do_declaration(stack("prod").unit(UNIT))
    assert Validator(resolve_schema_dir(None)).do(declaration, "bgp.do.json") == []


def test_the_dev_stack_has_no_bigip_resources() -> None:
    run = run_build(stack("dev"), "dev")
    assert not [r for r in run.registrations if r.type.startswith(("f5bigip:", "pulumi:providers:f5bigip"))]


def test_egress_helpers_name_the_mesh_host_and_objects() -> None:
    unit = stack("prod").unit(UNIT)
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


def test_a_tmsh_error_in_the_bgp_commands_output_is_reported_as_a_failure() -> None:
    commands = routing.tmsh_commands(stack("prod").unit(UNIT))
    ok = ["", "", "", "Saving running configuration...\n  /config/bigip.conf\n"]
    assert routing.tmsh_failures(commands, ok) == []
    broken = ["", "", 'Syntax Error: "graceful-reset" unknown property', ""]
    [failure] = routing.tmsh_failures(commands, broken)
    assert "create net routing bgp" in failure and "Syntax Error" in failure
    coded = ["01070734:3: Configuration error: invalid local-as", "", "", ""]
    assert len(routing.tmsh_failures(commands, coded)) == 1
    assert routing.tmsh_failures(commands, None) == []


def test_fails_the_update_when_the_bigip_reports_a_tmsh_error() -> None:
    class DeviceSaysNo(engine.StateMocks):
        def new_resource(self, args):  # type: ignore[no-untyped-def]
            id_, state = super().new_resource(args)
            if args.typ == "f5bigip:index/command:Command" and args.inputs.get("when") == "apply":
                state["commandResults"] = ["", "", "Syntax Error: unknown property", ""]
            return id_, state

    unit = stack("prod").unit(UNIT)
    with pytest.raises(routing.TmshError, match="BGP configuration failed on the BIG-IP") as failed:
        engine.run(
            lambda: {"bgp": routing.BigipBgp("bgp", routing.BgpArgs(unit)).checked}, mocks=DeviceSaysNo()
        )
    # The command is stored with that output, so an unchanged `pulumi up` would not re-run it.
    assert str(failed.value).endswith(
        "Fix the cause, then run the commands again with: pulumi up --replace "
        "'urn:pulumi:test::cpaas::cpaas:bigip:BigipBgp$f5bigip:index/command:Command::bgp-apply'"
    )


@pytest.mark.parametrize("unit", ["aws-syd", "azure-mel", "onprem-syd"])
def test_every_bigip_object_depends_directly_on_the_save_on_destroy(prod: engine.Run, unit: str) -> None:
    """The engine orders the deletions at the end of an update by direct dependencies only, so a
    removed object must name the old save-on-destroy itself to be deleted before it saves."""
    last = prod.get(f"{unit}-bigip-save-on-destroy")
    for reg in _in_unit(prod, unit, "f5bigip:"):
        if reg.name not in (last.name, f"{unit}-bigip-save-command"):
            assert last.urn in reg.dependencies, reg.name


def test_the_bgp_commands_and_the_provider_version_are_part_of_what_is_saved() -> None:
    unit = stack("prod").unit(UNIT)
    commands = routing.tmsh_commands(unit)
    assert persist.unit_digest(unit, commands) != persist.unit_digest(
        unit, [c.replace("120", "90") for c in commands]
    )
