"""The components under the recording mock engine: structure, providers, order, inputs, outputs.

Every test gets its own recording mock (`engine.run` in a fresh context); only the full prod
build, the expensive one, is shared through a module-scoped fixture. Registrations carry the
URN, parent, provider reference, dependencies and camelCase inputs (secrets as "[secret]").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from ipaddress import IPv4Address

import pulumi
import pulumi_tls as tls
import pytest
import yaml

from components import calico, cis, cluster, config, mesh, nginx, versions
from components.bigip.access import AccessImports
from components.bigip.device import BigipDevice
from components.bigip.drain import CisDrain
from components.bigip.egress import EgressGateway
from components.bigip.ingress import CisIngress
from components.bigip.persist import ConfigSave
from components.bigip.reencrypt import ReencryptProfiles
from components.bigip.routing import BigipBgp
from components.bigip.shared import SharedDevice
from components.bigip.waf import WafPolicies
from components.calico import Calico
from components.cis import Cis, CisArgs
from components.cluster import Cluster, ClusterArgs
from components.demo import DemoWorkloads
from components.gslb import Gslb
from components.mesh import Mesh
from components.meshauthz import MeshAuthorization
from components.namespaces import AppNamespaces
from components.nginx import NginxIngress
from components.observability import Observability
from components.pki import Pki
from components.routes import InClusterRoutes
from components.unit import AtomicUnit
from tests.support import stack
from tools import engine, graph

SECRET = engine.SECRET
K8S_PROVIDER = "pulumi:providers:kubernetes"
UNIT_TYPE = "cpaas:unit:AtomicUnit"
RELEASE = "kubernetes:helm.sh/v3:Release"
NAMESPACE = "kubernetes:core/v1:Namespace"
ISTIO_REPO = versions.ISTIO_REPO
TIGERA_REPO = "https://docs.tigera.io/calico/charts"
F5_REPO = "https://f5networks.github.io/charts/stable"
NGINX_OCI = "oci://ghcr.io/nginx/charts/nginx-ingress"
KPS_OCI = "oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack"
KPS_VERSION = versions.KUBE_PROMETHEUS_STACK.version
JAEGER_REPO = "https://jaegertracing.github.io/helm-charts"
COMPONENTS = {
    "cpaas:pki:Pki": Pki,
    "cpaas:gslb:Gslb": Gslb,
    "cpaas:bigip:ReencryptProfiles": ReencryptProfiles,
    "cpaas:unit:AtomicUnit": AtomicUnit,
    "cpaas:cluster:Cluster": Cluster,
    "cpaas:calico:Calico": Calico,
    "cpaas:mesh:Mesh": Mesh,
    "cpaas:nginx:NginxIngress": NginxIngress,
    "cpaas:cis:Cis": Cis,
    "cpaas:namespaces:AppNamespaces": AppNamespaces,
    "cpaas:bigip:BigipDevice": BigipDevice,
    "cpaas:bigip:SharedDevice": SharedDevice,
    "cpaas:bigip:CisIngress": CisIngress,
    "cpaas:bigip:EgressGateway": EgressGateway,
    "cpaas:bigip:BigipBgp": BigipBgp,
    "cpaas:bigip:WafPolicies": WafPolicies,
    "cpaas:bigip:ConfigSave": ConfigSave,
    "cpaas:bigip:CisDrain": CisDrain,
    "cpaas:observability:Observability": Observability,
    "cpaas:routes:InClusterRoutes": InClusterRoutes,
    "cpaas:demo:DemoWorkloads": DemoWorkloads,
    "cpaas:meshauthz:MeshAuthorization": MeshAuthorization,
    "cpaas:bigip:AccessImports": AccessImports,
}


# ---------------------------------------------------------------------------------------------
# Runs and helpers
# ---------------------------------------------------------------------------------------------


def _unit_of(run: engine.Run, reg: engine.Registration) -> str | None:
    """The name of the AtomicUnit above reg, if any."""
    units = [a.name for a in graph.ancestors(reg, run.by_urn()) if a.type == UNIT_TYPE]
    assert len(units) <= 1, f"{reg.name} sits under several units: {units}"
    return units[0] if units else None


def _upstream(run: engine.Run, name: str) -> set[str]:
    """Names of every resource `name` waits for, directly or transitively."""
    by_urn = run.by_urn()
    return {by_urn[u].name for u in run.upstream(run.get(name))}


def _assert_after(run: engine.Run, later: str, earlier: Iterable[str]) -> None:
    upstream = _upstream(run, later)
    missing = sorted(set(earlier) - upstream)
    assert not missing, f"{later} does not wait for {missing}"


def _unit(stack_name: str, unit: str) -> config.Unit:
    return stack(stack_name).unit(unit)


BIGIP: dict[str, object] = {
    "management_address": "192.0.2.10",
    "password_secret": "bigipPassword-t",
    "trusted_cert_file": "trust/t/bigip.pem",
    "cis_partition": "t-cis",
    "pulumi_partition": "t-pulumi",
    "vlan": "internal",
    "self_ips": ["192.0.2.20", "192.0.2.21"],
    "asn": 65010,
}


def _bigip(**update: object) -> config.Bigip:
    return config.Bigip.model_validate({**BIGIP, **update})


# ---------------------------------------------------------------------------------------------
# 1. Structure: type tokens, names, ancestry, providers
# ---------------------------------------------------------------------------------------------


def test_every_component_type_token_is_cpaas_module_type_and_matches_its_python_module(
    prod: engine.Run, dev: engine.Run
) -> None:
    tokens = {r.type for run in (prod, dev) for r in run.registrations if r.type.startswith("cpaas:")}
    assert tokens == set(COMPONENTS)
    for token in tokens:
        assert re.fullmatch(r"cpaas:[a-z]+:[A-Z][A-Za-z]+", token), token
    for token, cls in COMPONENTS.items():
        _, module, type_name = token.split(":")
        assert cls.__module__ == f"components.{module}" or cls.__module__.startswith(f"components.{module}.")
        assert cls.__name__ == type_name


def test_every_child_is_named_after_its_parent_with_a_role_suffix(prod: engine.Run, dev: engine.Run) -> None:
    for run in (prod, dev):
        by_urn = run.by_urn()
        for reg in run.registrations:
            if reg.parent in by_urn:
                parent = by_urn[reg.parent].name
                assert re.fullmatch(rf"{re.escape(parent)}-[a-z0-9][a-z0-9-]*", reg.name), (
                    f"{reg.name} is not named {parent}-<role>"
                )


def test_every_resource_named_for_a_unit_has_that_units_atomic_unit_as_an_ancestor(
    prod: engine.Run,
) -> None:
    units = [r.name for r in prod.by_type(UNIT_TYPE)]
    assert sorted(units) == ["aws-syd", "azure-mel", "onprem-syd", "onprem-syd-b"]
    devices = [d.name for d in stack("prod").bigip_devices]
    for reg in prod.registrations:
        # The longest unit name that prefixes it: onprem-syd-b-* belongs to onprem-syd-b.
        owner = max((u for u in units if reg.name.startswith(f"{u}-")), key=len, default=None)
        if reg.type == UNIT_TYPE:
            assert _unit_of(prod, reg) is None, "units do not nest"
        elif owner is not None:
            assert _unit_of(prod, reg) == owner, f"{reg.name} is not under unit {owner}"
        else:
            # Only the PKI, GSLB and shared BIG-IPs live outside the units.
            outside = ("pki", "gslb", *devices)
            assert reg.name in outside or reg.name.startswith(tuple(f"{o}-" for o in outside)), reg.name
            assert _unit_of(prod, reg) is None


def test_every_kubernetes_resource_uses_its_own_units_provider_never_the_default(
    prod: engine.Run, dev: engine.Run
) -> None:
    for run in (prod, dev):
        providers = {_unit_of(run, p): p for p in run.by_type(K8S_PROVIDER)}
        kube = [r for r in run.registrations if r.type.startswith("kubernetes:")]
        assert kube
        for reg in kube:
            unit = _unit_of(run, reg)
            assert unit is not None, f"{reg.name} is outside every unit"
            assert reg.provider.startswith(providers[unit].urn + "::"), (
                f"{reg.name} uses {reg.provider or 'the default provider'}"
            )
            assert "::default" not in reg.provider


def test_each_unit_has_exactly_one_kubernetes_provider_and_none_is_shared(prod: engine.Run) -> None:
    providers = prod.by_type(K8S_PROVIDER)
    owners = [_unit_of(prod, p) for p in providers]
    assert sorted(owners) == ["aws-syd", "azure-mel", "onprem-syd", "onprem-syd-b"]  # type: ignore[type-var]
    used: dict[str, set[str]] = {}
    for reg in prod.registrations:
        if reg.type.startswith("kubernetes:"):
            used.setdefault(reg.provider, set()).add(_unit_of(prod, reg) or "")
    assert len(used) == 4
    assert all(len(units) == 1 for units in used.values()), used


def test_the_kubernetes_providers_kubeconfig_input_is_secret(prod: engine.Run, dev: engine.Run) -> None:
    for run in (prod, dev):
        providers = run.by_type(K8S_PROVIDER)
        assert providers
        for p in providers:
            assert p.inputs["kubeconfig"] == SECRET, p.name


# ---------------------------------------------------------------------------------------------
# 2. Order a real cluster needs
# ---------------------------------------------------------------------------------------------


def test_the_upstream_helper_follows_dependency_edges_one_way(prod: engine.Run) -> None:
    assert "onprem-syd-calico-operator" in _upstream(prod, "onprem-syd-mesh-istiod")
    assert "onprem-syd-mesh-istiod" not in _upstream(prod, "onprem-syd-calico-operator")
    assert _upstream(prod, "onprem-syd-calico-crds") == set()


def test_calico_api_ready_waits_for_the_operator_which_waits_for_the_crds(prod: engine.Run) -> None:
    c = "onprem-syd-calico"
    _assert_after(prod, f"{c}-operator", [f"{c}-crds", f"{c}-namespace"])
    _assert_after(prod, f"{c}-api-ready", [f"{c}-operator", f"{c}-crds"])


def test_istio_nginx_and_cis_namespaces_and_releases_come_after_calicos_api_server(
    prod: engine.Run,
) -> None:
    later = [
        "onprem-syd-mesh-namespace",
        "onprem-syd-mesh-gateway-namespace",
        "onprem-syd-mesh-ns-bookinfo",
        "onprem-syd-mesh-cacerts",
        "onprem-syd-mesh-base",
        "onprem-syd-mesh-istiod",
        "onprem-syd-mesh-gateway",
        "onprem-syd-nginx-namespace",
        "onprem-syd-nginx-release",
        "onprem-syd-cis-namespace",
        "onprem-syd-cis-crds",
        "onprem-syd-cis-release",
    ]
    for name in later:
        _assert_after(prod, name, ["onprem-syd-calico-api-ready"])


def test_bgp_configuration_and_peers_wait_for_calicos_api_server(prod: engine.Run) -> None:
    bgp = [r.name for r in prod.registrations if r.type.startswith("kubernetes:projectcalico.org/v3:")]
    assert len(bgp) == 5  # per calico unit one BGPConfiguration; a peer per self IP (two, one)
    for name in bgp:
        unit = "onprem-syd-b" if name.startswith("onprem-syd-b-") else "onprem-syd"
        _assert_after(prod, name, [f"{unit}-calico-api-ready"])


@pytest.mark.parametrize("unit", ["aws-syd", "azure-mel", "onprem-syd"])
def test_istiod_comes_after_cacerts_and_base_and_before_what_needs_it(prod: engine.Run, unit: str) -> None:
    m = f"{unit}-mesh"
    _assert_after(prod, f"{m}-istiod", [f"{m}-cacerts", f"{m}-base"])
    for name in (f"{m}-gateway", f"{m}-strict-mtls", f"{m}-tracing", f"{m}-ns-bookinfo"):
        _assert_after(prod, name, [f"{m}-istiod"])


@pytest.mark.parametrize("unit", ["aws-syd", "azure-mel", "onprem-syd"])
def test_the_cis_release_comes_after_its_crds_login_secret_and_trusted_certs(
    prod: engine.Run, unit: str
) -> None:
    c = f"{unit}-cis"
    _assert_after(prod, f"{c}-release", [f"{c}-crds", f"{c}-login", f"{c}-trusted-certs", f"{c}-namespace"])


def test_dev_workloads_also_wait_for_calico_and_the_provider_for_the_cluster(dev: engine.Run) -> None:
    for name in ("dev-mesh-istiod", "dev-nginx-release", "dev-calico-bgp-configuration"):
        _assert_after(dev, name, ["dev-calico-api-ready", "dev-cluster-kubeconfig", "dev-cluster-k3d"])


# ---------------------------------------------------------------------------------------------
# 3. Inputs
# ---------------------------------------------------------------------------------------------

EXPECTED_RELEASES = {
    # role: (release name, chart, version, repo or None for an oci:// chart)
    "calico-operator": ("calico", "tigera-operator", versions.TIGERA_OPERATOR.version, TIGERA_REPO),
    "mesh-base": ("istio-base", "base", versions.ISTIO_VERSION, ISTIO_REPO),
    "mesh-istiod": ("istiod", "istiod", versions.ISTIO_VERSION, ISTIO_REPO),
    "mesh-gateway": ("istio-ingressgateway", "gateway", versions.ISTIO_VERSION, ISTIO_REPO),
    "nginx-release": ("nginx-ingress", NGINX_OCI, versions.NGINX_INGRESS.version, None),
    "cis-release": ("f5-bigip-ctlr", "f5-bigip-ctlr", versions.CIS.version, F5_REPO),
    "observability-prometheus": ("kube-prometheus-stack", KPS_OCI, KPS_VERSION, None),
    "observability-jaeger": ("jaeger-collector", "jaeger", versions.JAEGER.version, JAEGER_REPO),
}


def test_every_helm_release_pins_its_chart_names_its_release_and_uses_the_expected_repo(
    prod: engine.Run, dev: engine.Run
) -> None:
    seen: set[str] = set()
    for run in (prod, dev):
        for reg in run.by_type(RELEASE):
            unit = _unit_of(run, reg)
            role = reg.name.removeprefix(f"{unit}-")
            seen.add(role)
            name, chart, version, repo = EXPECTED_RELEASES[role]
            got = reg.inputs
            assert got["version"] and got["version"] != "latest"
            assert re.fullmatch(r"v?\d+\.\d+\.\d+", got["version"]), got["version"]
            assert (got["name"], got["chart"], got["version"]) == (name, chart, version), reg.name
            if repo is None:
                assert "repositoryOpts" not in got, reg.name
            else:
                assert got["repositoryOpts"] == {"repo": repo}, reg.name
            assert got["namespace"]
            assert got["atomic"] is True
    assert seen == set(EXPECTED_RELEASES)


@pytest.mark.parametrize("unit", ["aws-syd", "azure-mel", "onprem-syd"])
def test_cis_release_runs_the_pinned_version_in_cluster_crd_mode_verifying_bigip_tls_and_skips_chart_crds(
    prod: engine.Run, unit: str
) -> None:
    release = prod.get(f"{unit}-cis-release").inputs
    assert release["skipCrds"] is True
    values = release["values"]
    assert values["version"] == versions.CIS_VERSION
    args = values["args"]
    assert args["pool_member_type"] == "cluster"
    assert args["custom_resource_mode"] is True
    assert args["trusted_certs_cfgmap"] == "f5-cis/bigip-trusted-certs"
    assert args["insecure"] is False
    assert args["bigip_partition"] == f"cpaas-{unit}-cis"
    assert values["bigip_login_secret"] == "f5-bigip-ctlr-login"
    assert values["bigip_secret"] == {"create": False}
    trusted = prod.get(f"{unit}-cis-trusted-certs").inputs
    assert trusted["metadata"] == {"name": "bigip-trusted-certs", "namespace": "f5-cis"}
    assert list(trusted["data"]) == ["bigip.pem"]


def test_the_cis_login_secret_holds_username_and_password_only_as_secrets(prod: engine.Run) -> None:
    logins = [r for r in prod.registrations if r.name.endswith("-cis-login")]
    assert len(logins) == 4
    for reg in logins:
        assert reg.inputs["metadata"] == {"name": "f5-bigip-ctlr-login", "namespace": "f5-cis"}
        assert reg.inputs["stringData"] == {"username": SECRET, "password": SECRET}
        assert "data" not in reg.inputs


def test_no_resource_input_carries_a_secret_placeholder_in_clear(prod: engine.Run, dev: engine.Run) -> None:
    for run in (prod, dev):
        for reg in run.registrations:
            text = json.dumps(reg.inputs)
            assert "<secret" not in text, f"{reg.name} exposes a secret: {text[:300]}"
            assert "<kubeconfig>" not in text, f"{reg.name} exposes a kubeconfig"
        assert "<secret" not in json.dumps(run.outputs)


def test_the_cis_pod_meets_the_restricted_pod_security_standard_its_namespace_enforces(
    prod: engine.Run,
) -> None:
    """f5-cis is labelled enforce=restricted. Chart 0.0.33 (as 0.0.35) sets only runAsUser,
    runAsGroup and fsGroup on the pod and copies `podSecurityContext` to the container, so without
    these values the API server refuses the pod and the atomic release times out."""
    ns = prod.get("onprem-syd-cis-namespace").inputs
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    container = prod.get("onprem-syd-cis-release").inputs["values"].get("podSecurityContext", {})
    assert container.get("runAsNonRoot") is True
    assert container.get("allowPrivilegeEscalation") is False
    assert container.get("capabilities", {}).get("drop") == ["ALL"]
    assert container.get("seccompProfile") == {"type": "RuntimeDefault"}
    assert not container.get("privileged", False)


@pytest.mark.parametrize("unit", ["aws-syd", "azure-mel", "onprem-syd"])
def test_mesh_wide_peer_authentication_is_strict_in_istio_system(prod: engine.Run, unit: str) -> None:
    pa = prod.get(f"{unit}-mesh-strict-mtls")
    assert pa.type == "kubernetes:security.istio.io/v1:PeerAuthentication"
    assert pa.inputs["metadata"] == {"name": "default", "namespace": "istio-system"}
    assert pa.inputs["spec"] == {"mtls": {"mode": "STRICT"}}


def test_calico_peers_every_bigip_self_ip_with_the_bigip_asn_and_graceful_restart(
    prod: engine.Run,
) -> None:
    unit = _unit("prod", "onprem-syd")
    assert unit.bigip is not None
    peers = {
        r.inputs["spec"]["peerIP"]: r
        for r in prod.by_type("kubernetes:projectcalico.org/v3:BGPPeer")
        if r.name.startswith("onprem-syd-calico-")
    }
    assert sorted(peers) == sorted(str(ip) for ip in unit.bigip.self_ips)
    for ip, reg in peers.items():
        assert reg.inputs["spec"] == {"peerIP": ip, "asNumber": unit.bigip.asn, "maxRestartTime": "120s"}
        assert reg.inputs["metadata"] == {"name": "bigip-" + ip.replace(".", "-")}
        assert reg.inputs["apiVersion"] == "projectcalico.org/v3"


def test_the_bgp_configuration_uses_the_cluster_asn(prod: engine.Run, dev: engine.Run) -> None:
    for run, stack_name, unit_name in ((prod, "prod", "onprem-syd"), (dev, "dev", "dev")):
        cni = _unit(stack_name, unit_name).network.cni
        assert isinstance(cni, config.CalicoBgp)
        (conf,) = [
            r
            for r in run.by_type("kubernetes:projectcalico.org/v3:BGPConfigurationPatch")
            if r.name.startswith(f"{unit_name}-calico-")
        ]
        # calico-node has created "default" by the time the API server answers: patched, forced.
        assert conf.inputs["metadata"] == {
            "name": "default",
            "annotations": {"pulumi.com/patchForce": "true"},
        }
        assert conf.inputs["spec"]["asNumber"] == cni.asn
        assert conf.inputs["spec"]["nodeToNodeMeshEnabled"] is cni.node_to_node_mesh


def test_injected_namespaces_are_labelled_for_sidecar_injection(prod: engine.Run, dev: engine.Run) -> None:
    for run in (prod, dev):
        injected = [r for r in run.by_type(NAMESPACE) if "-mesh-ns-" in r.name]
        assert injected
        for reg in injected:
            assert reg.inputs["metadata"]["labels"] == {"istio-injection": "enabled"}
            assert reg.inputs["metadata"]["name"] == reg.name.rsplit("-mesh-ns-", 1)[1]


def test_cacerts_has_exactly_istios_four_plugged_ca_keys_all_secret(prod: engine.Run) -> None:
    secrets = [r for r in prod.registrations if r.name.endswith("-mesh-cacerts")]
    assert len(secrets) == 4
    for reg in secrets:
        assert reg.inputs["metadata"] == {"name": "cacerts", "namespace": "istio-system"}
        assert reg.inputs["stringData"] == {
            "ca-cert.pem": SECRET,
            "ca-key.pem": SECRET,
            "root-cert.pem": SECRET,
            "cert-chain.pem": SECRET,
        }


# ---------------------------------------------------------------------------------------------
# 4. Dev stack
# ---------------------------------------------------------------------------------------------


def test_dev_has_no_cis_and_no_bigip_resources_and_says_so(dev: engine.Run) -> None:
    for reg in dev.registrations:
        assert not reg.type.startswith(("f5bigip:", "cpaas:cis:", "cpaas:bigip", "cpaas:gslb")), reg.type
        assert "-cis" not in reg.name
    unit = dev.outputs["units"]["dev"]
    assert unit["cisPartition"] is None
    assert any("bigip" in line for line in unit["skipped"])


def test_the_k3d_command_creates_and_deletes_the_cluster_named_in_its_environment(dev: engine.Run) -> None:
    k3d = dev.get("dev-cluster-k3d")
    env = k3d.inputs["environment"]
    assert env["CPAAS_K3D_NAME"] == "cpaas-dev"
    assert '"$CPAAS_K3D_NAME"' in k3d.inputs["create"]
    assert '"$CPAAS_K3D_CONFIG"' in k3d.inputs["create"]
    assert 'k3d cluster delete "$CPAAS_K3D_NAME"' in k3d.inputs["delete"]
    assert "cpaas-dev" not in k3d.inputs["create"] + k3d.inputs["delete"], "the name comes from env"
    assert yaml.safe_load(env["CPAAS_K3D_CONFIG"]) == cluster.k3d_config(_unit("dev", "dev"))
    # A config change replaces the cluster.
    assert k3d.inputs["triggers"] == [env["CPAAS_K3D_CONFIG"]]


def test_the_kubeconfig_read_keeps_stdout_secret_and_the_provider_waits_for_it(dev: engine.Run) -> None:
    read = dev.get("dev-cluster-kubeconfig")
    assert "stdout" in read.options["additionalSecretOutputs"]
    assert '"$CPAAS_K3D_NAME"' in read.inputs["create"]
    assert read.inputs["environment"] == {"CPAAS_K3D_NAME": "cpaas-dev"}
    assert dev.get("dev-cluster-k3d").urn in read.dependencies
    provider = dev.get("dev-cluster-k8s")
    assert read.urn in provider.dependencies
    assert provider.inputs["kubeconfig"] == SECRET


def test_k3d_config_turns_off_flannel_traefik_servicelb_and_k3s_policy_and_passes_the_cidrs() -> None:
    unit = _unit("dev", "dev")
    doc = cluster.k3d_config(unit)
    assert doc["apiVersion"] == "k3d.io/v1alpha5"
    assert doc["kind"] == "Simple"
    assert doc["metadata"] == {"name": "cpaas-dev"}
    assert doc["kubeAPI"] == {"hostIP": "127.0.0.1", "hostPort": "6550"}
    assert doc["subnet"] == "172.28.0.0/16"
    extra = doc["options"]["k3s"]["extraArgs"]
    args = [e["arg"] for e in extra]
    for flag in (
        "--flannel-backend=none",
        "--disable-network-policy",
        "--disable=traefik",
        "--disable=servicelb",
        "--cluster-cidr=10.42.0.0/16",
        "--service-cidr=10.43.0.0/16",
        "--tls-san=host.k3d.internal",
    ):
        assert flag in args
    assert all(e["nodeFilters"] == ["server:*"] for e in extra)
    assert doc["options"]["kubeconfig"] == {"updateDefaultKubeconfig": False, "switchCurrentContext": False}
    # k3d refuses a subnet on a named (existing) network: one or the other, never both.
    assert "network" not in doc
    own = unit.model_copy(update={"cluster": unit.cluster.model_copy(update={"docker_network": "labnet"})})
    joined = cluster.k3d_config(own)
    assert joined["network"] == "labnet" and "subnet" not in joined


# ---------------------------------------------------------------------------------------------
# 5. Pure functions
# ---------------------------------------------------------------------------------------------


def test_operator_values_forward_container_ip_only_on_k3d_and_scale_the_control_plane() -> None:
    dev_values = calico.operator_values(_unit("dev", "dev"))["installation"]
    prod_values = calico.operator_values(_unit("prod", "onprem-syd"))["installation"]
    assert dev_values["calicoNetwork"]["containerIPForwarding"] == "Enabled"
    assert "containerIPForwarding" not in prod_values["calicoNetwork"]
    assert (dev_values["controlPlaneReplicas"], prod_values["controlPlaneReplicas"]) == (1, 2)
    (pool,) = prod_values["calicoNetwork"]["ipPools"]
    assert pool["cidr"] == "10.30.64.0/18"
    assert pool["encapsulation"] == "None"
    assert pool["natOutgoing"] == "Enabled"
    assert dev_values["calicoNetwork"]["ipPools"][0]["encapsulation"] == "VXLAN"


def test_bgp_configuration_sets_mesh_restart_time_only_with_the_node_mesh() -> None:
    on = config.CalicoBgp(type="calico-bgp", asn=64600)
    off = config.CalicoBgp(type="calico-bgp", asn=64601, node_to_node_mesh=False)
    assert calico.bgp_configuration(on) == {
        "asNumber": 64600,
        "nodeToNodeMeshEnabled": True,
        "logSeverityScreen": "Info",
        "nodeMeshMaxRestartTime": "120s",
    }
    assert calico.bgp_configuration(off)["nodeToNodeMeshEnabled"] is False
    assert "nodeMeshMaxRestartTime" not in calico.bgp_configuration(off)


def test_bgp_peer_names_the_self_ip_and_the_bigip_asn() -> None:
    bigip = _bigip()
    assert calico.bgp_peer(IPv4Address("192.0.2.20"), bigip) == {
        "peerIP": "192.0.2.20",
        "asNumber": 65010,
        "maxRestartTime": "120s",
    }
    assert calico.peer_name(IPv4Address("192.0.2.20")) == "bigip-192-0-2-20"


def test_istiod_values_declare_the_tracing_provider_only_when_tracing_is_on() -> None:
    base = config.Mesh(trust_domain="t.example.com")
    off = mesh.istiod_values(base, "u1")
    assert "extensionProviders" not in off["meshConfig"]
    assert off["traceSampling"] == 1.0
    assert off["meshConfig"]["trustDomain"] == "t.example.com"
    assert off["meshConfig"]["outboundTrafficPolicy"] == {"mode": "REGISTRY_ONLY"}
    assert off["global"]["multiCluster"] == {"clusterName": "u1"}
    assert off["global"]["tag"] == versions.ISTIO_VERSION
    tracing = config.Tracing(enabled=True, provider="opentelemetry", port=4317, sampling_percent=5.0)
    traced = base.model_copy(update={"tracing": tracing})
    on = mesh.istiod_values(traced, "u1")
    assert on["meshConfig"]["extensionProviders"] == [
        {
            "name": mesh.TRACING_PROVIDER,
            "opentelemetry": {"service": "jaeger-collector.observability.svc.cluster.local", "port": 4317},
        }
    ]
    assert on["traceSampling"] == 5.0
    assert mesh.telemetry(traced.tracing)["tracing"][0]["providers"] == [{"name": mesh.TRACING_PROVIDER}]


def test_gateway_values_use_a_cluster_ip_service_and_a_pdb_only_with_replicas() -> None:
    two = mesh.gateway_values(config.Mesh(trust_domain="t.example.com"))
    one = mesh.gateway_values(config.Mesh(trust_domain="t.example.com", ingress_gateway_replicas=1))
    assert two["service"]["type"] == "ClusterIP"
    assert {p["port"] for p in two["service"]["ports"]} == {15021, 80, 443}
    assert two["podDisruptionBudget"] == {"minAvailable": 1}
    assert one["podDisruptionBudget"] == {}
    # The chart ignores replicaCount while its HPA is on: the count is the HPA's floor.
    assert one["autoscaling"] == {"enabled": True, "minReplicas": 1, "maxReplicas": 5}
    assert two["autoscaling"]["minReplicas"] == 2


def test_nginx_values_use_a_cluster_ip_service_and_watch_the_listed_namespaces() -> None:
    values = nginx.values(config.Nginx(namespaces=("httpbin", "shop"), replicas=3, ingress_class="web"))
    controller = values["controller"]
    assert controller["service"]["type"] == "ClusterIP"
    assert controller["watchNamespace"] == "httpbin,shop"
    assert controller["ingressClass"]["name"] == "web"
    assert controller["ingressClass"]["setAsDefaultIngress"] is False
    assert controller["replicaCount"] == 3
    assert controller["image"] == {"repository": versions.NGINX_IMAGE, "tag": versions.NGINX_IMAGE_TAG}
    assert controller["enableSnippets"] is False
    assert nginx.values(config.Nginx(replicas=1))["controller"]["podDisruptionBudget"]["enabled"] is False


def test_cis_values_verify_tls_with_the_trusted_certs_unless_insecure_is_chosen() -> None:
    secure = cis.values(_bigip())
    assert secure["args"]["insecure"] is False
    assert secure["args"]["trusted_certs_cfgmap"] == "f5-cis/bigip-trusted-certs"
    assert secure["args"]["bigip_url"] == "https://192.0.2.10:443"
    insecure = cis.values(_bigip(trusted_cert_file=None, insecure_skip_verify=True))
    assert insecure["args"]["insecure"] is True
    assert "trusted_certs_cfgmap" not in insecure["args"]
    assert secure["ingressClass"] == {"create": False}
    assert secure["version"] == versions.CIS_VERSION
    assert (secure["image"]["user"], secure["image"]["repo"]) == tuple(versions.CIS_IMAGE.split("/"))


def test_an_insecure_cis_makes_no_trusted_certs_config_map() -> None:
    bigip = _bigip(trusted_cert_file=None, insecure_skip_verify=True)

    def program() -> None:
        Cis("t-cis", CisArgs(bigip, pulumi.Output.secret("pw"), None))

    run = engine.run(program)
    names = {r.name for r in run.registrations}
    assert "t-cis-trusted-certs" not in names
    assert {"t-cis-namespace", "t-cis-login", "t-cis-crds", "t-cis-release"} <= names


# ---------------------------------------------------------------------------------------------
# 6. Failing paths
# ---------------------------------------------------------------------------------------------


def test_fails_an_unexpected_raw_invoke_under_state_mocks() -> None:
    def program() -> None:
        pulumi.runtime.invoke("kubernetes:helm:template", {"chart": "x"})

    with pytest.raises(Exception, match="unexpected invoke"):
        engine.run(program)


def test_fails_a_provider_function_under_state_mocks() -> None:
    def program() -> None:
        tls.get_public_key(private_key_pem=engine.mock_pem("PRIVATE KEY", "k"))

    with pytest.raises(Exception, match="unexpected invoke tls:index/getPublicKey:getPublicKey"):
        engine.run(program)


def test_fails_cis_without_a_trusted_cert_while_verifying_tls() -> None:
    bigip = _bigip()

    def program() -> None:
        Cis("t-cis", CisArgs(bigip, pulumi.Output.secret("pw"), None))

    with pytest.raises(ValueError, match="trusted certificate is required"):
        engine.run(program)


# ---------------------------------------------------------------------------------------------
# 7. Stack outputs
# ---------------------------------------------------------------------------------------------


def test_kubeconfigs_is_a_secret_stack_output_and_the_root_cert_is_not(
    prod: engine.Run, dev: engine.Run
) -> None:
    for run in (prod, dev):
        assert "kubeconfigs" in run.secret_outputs
        assert run.outputs["kubeconfigs"] == SECRET
        assert "rootCertPem" not in run.secret_outputs
        assert run.outputs["rootCertPem"].startswith("-----BEGIN CERTIFICATE-----")
        assert run.secret_outputs == {"kubeconfigs"}


def test_a_changed_k3d_config_deletes_the_old_cluster_before_creating_the_new_one(dev: engine.Run) -> None:
    assert dev.get("dev-cluster-k3d").options["deleteBeforeReplace"] is True


def test_a_kubeconfig_exported_as_an_object_by_a_cluster_stack_reaches_the_provider_as_json() -> None:
    unit = stack("prod").unit("azure-mel")
    kubeconfig = {"apiVersion": "v1", "kind": "Config", "clusters": []}
    mocks = engine.StateMocks(
        stack_outputs={"example-bank/aks-clusters/prod-mel": {"kubeconfig": kubeconfig}}
    )
    run = engine.run(
        lambda: {"kc": Cluster("c", ClusterArgs(unit)).kubeconfig.apply(lambda v: v)}, mocks=mocks
    )
    assert run.secret_outputs == {"kc"}
    assert run.get("c-k8s").inputs["kubeconfig"] == engine.SECRET


def test_cluster_kubeconfig_from_an_object_is_json_text() -> None:
    unit = stack("prod").unit("azure-mel")
    seen: list[str] = []
    mocks = engine.StateMocks(
        stack_outputs={"example-bank/aks-clusters/prod-mel": {"kubeconfig": {"apiVersion": "v1"}}}
    )
    engine.run(lambda: {"kc": Cluster("c", ClusterArgs(unit)).kubeconfig.apply(seen.append)}, mocks=mocks)
    assert seen == ['{"apiVersion": "v1"}']
