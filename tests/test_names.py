"""Every name and host the config accepts is accepted by each system it reaches.

The oracles are the receiving systems' own rules: Kubernetes' name validators, the Ingress host
rule, Istio's trust-domain and host checks, SPIFFE IDs, k3d's cluster-name check, Docker image
references, the f5bigip provider's name validators, X.509's common-name bound and Helm's
release-name rule, each re-implemented below from the cited source; and the CIS CRD and AS3
patterns, read from the schema files themselves. Hypothesis draws values the config accepts (each
candidate goes through `config.parse_stack`) and every name derived from them is checked, through
the components' own naming functions. One render of a stack whose names sit at the edges of what
the config accepts checks the names of every object the program registers.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, example, given, reject
from hypothesis import strategies as st

from components import cluster, config, gslb, mesh, pki
from components.bigip import egress, ingress, reencrypt, routing, waf
from tests import support
from tests.support import examples, raw_stack, run_build
from tools import render
from tools.validate import Validator

PROPERTY = examples(40, HealthCheck.filter_too_much)

# ---------------------------------------------------------------------------------------------
# Oracles: the receiving systems' rules
# ---------------------------------------------------------------------------------------------

# Ref: kubernetes/apimachinery@v0.34.10 pkg/util/validation/validation.go
_K8S_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"


def dns1123_label(value: str) -> bool:  # IsDNS1123Label
    return len(value) <= 63 and re.fullmatch(_K8S_LABEL, value) is not None


def dns1123_subdomain(value: str) -> bool:  # IsDNS1123Subdomain
    return len(value) <= 253 and re.fullmatch(rf"{_K8S_LABEL}(\.{_K8S_LABEL})*", value) is not None


def dns1035_label(value: str) -> bool:  # IsDNS1035Label
    return len(value) <= 63 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", value) is not None


def label_value(value: str) -> bool:  # IsValidLabelValue
    return (
        len(value) <= 63 and re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", value) is not None
    )


# metadata.name by kind. Ref: kubernetes/kubernetes pkg/apis/core/validation/validation.go
# (ValidateServiceName = NameIsDNS1035Label, ValidateNamespaceName = NameIsDNSLabel); the other
# kinds cpaas makes, custom resources included, use NameIsDNSSubdomain.
NAME_RULE: dict[str, Callable[[str], bool]] = {"Service": dns1035_label, "Namespace": dns1123_label}


def ingress_host(value: str) -> bool:
    """Ref: kubernetes/kubernetes@019c5dc5 pkg/apis/networking/validation/validation.go
    (validateIngressRules): not an IP address; a DNS-1123 subdomain (cpaas never writes '*')."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return dns1123_subdomain(value)
    return False


# Ingress backend service names: ValidateServiceName (DNS-1035) unless the alpha
# RelaxedServiceNameValidation gate is on (off by default in 1.34, pkg/features/kube_features.go).
ingress_backend_service = dns1035_label

# Ref: istio/istio@1.30.3 pkg/config/labels/instance.go (IsDNS1123Label)
_ISTIO_LABEL = r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?"


def _istio_labels(parts: list[str]) -> bool:
    for i, label in enumerate(parts):
        if i == len(parts) - 1 and label == "":
            return True
        if len(label) > 63 or not re.fullmatch(_ISTIO_LABEL, label):
            return False
    return True


def istio_trust_domain(value: str) -> bool:
    """Ref: istio/istio@1.30.3 pkg/config/validation/agent/validation.go (ValidateTrustDomain)."""
    return bool(value) and _istio_labels(value.split("."))


def istio_fqdn(value: str) -> bool:
    """Ref: istio/istio@1.30.3 pkg/config/validation/agent/validation.go (ValidateFQDN; hosts
    without a wildcard pass ValidateWildcardDomain the same way)."""
    parts = value.split(".")
    return 0 < len(value) <= 255 and not parts[-1].isdigit() and _istio_labels(parts)


def spiffe_id(value: str) -> bool:
    """Ref: spiffe/spiffe@665a28f3 standards/SPIFFE-ID.md sections 2.1 (trust domain: [a-z0-9.-_],
    at most 255), 2.2 (path segments: [a-zA-Z0-9.-_], not '.' or '..') and 2.3 (2048 bytes)."""
    match = re.fullmatch(r"spiffe://([a-z0-9._-]+)((?:/[A-Za-z0-9._-]+)*)", value)
    if match is None or len(value) > 2048 or len(match[1]) > 255:
        return False
    return all(segment not in (".", "..") for segment in match[2].split("/")[1:])


def k3d_cluster_name(value: str) -> bool:
    """Ref: k3d-io/k3d@v5.9.0 pkg/client/clusterName.go (CheckName, HostnameRegexp) and
    pkg/types/defaults.go (DefaultClusterNameMaxLength = 32)."""
    label = r"([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])"
    host = rf"({label}\.)*{label}"
    return len(value) <= 32 and re.fullmatch(host, value) is not None


# Ref: distribution/reference@v0.6.0 regexp.go (ReferenceRegexp) and reference.go
# (RepositoryNameTotalLengthMax = 255). Go's \w is ASCII.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_REFERENCE = re.compile(
    rf"((?:{_DOMAIN}(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::([\w][\w.-]{0,127}))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?",
    re.ASCII,
)


def docker_tagged_reference(value: str) -> bool:
    match = _REFERENCE.fullmatch(value)
    return match is not None and len(match[1]) <= 255 and match[2] is not None


# Ref: F5Networks/terraform-provider-bigip@v1.26.0 bigip/validators.go (pulumi-f5bigip 3.25.1 wraps
# it): validateF5Name, the strictest of its full-path rules, and validatePartitionName.
def f5_full_path(value: str) -> bool:
    return re.fullmatch(r"/[\w_\-.]+/[\w_\-.:]+", value, re.ASCII) is not None


def f5_partition(value: str) -> bool:
    return re.fullmatch(r"[^/][^\s]+", value, re.ASCII) is not None


def waf_policy_name(value: str) -> bool:
    """The WAF policy name the provider documents: a-z, A-Z, 0-9, '.', '-', ':' and '_'.
    Ref: F5Networks/terraform-provider-bigip@v1.26.0 bigip/resource_bigip_awaf_policy.go (name)."""
    return re.fullmatch(r"[A-Za-z0-9.\-:_]+", value) is not None


def x509_name_value(oid: x509.ObjectIdentifier, value: str) -> bool:
    """cryptography refuses a common name, O or OU longer than RFC 5280's upper bound (64)."""
    try:
        x509.NameAttribute(oid, value)
    except ValueError:
        return False
    return True


def helm_release_name(value: str) -> bool:
    """Ref: helm/helm@d9ffe37d pkg/chartutil/validate_name.go (ValidateReleaseName)."""
    return len(value) <= 53 and re.fullmatch(rf"{_K8S_LABEL}(\.{_K8S_LABEL})*", value) is not None


# ---------------------------------------------------------------------------------------------
# The schema files
# ---------------------------------------------------------------------------------------------


class Upstream:
    """The CIS CRDs and the AS3 schema as files, and the validator the render uses."""

    def __init__(self, validator: Validator, crds: dict[str, dict[str, Any]], as3: dict[str, Any]):
        self.validator = validator
        self.crds = crds  # CIS kind -> openAPIV3Schema of v1
        self.as3 = as3

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return "Upstream(<schemas>)"

    def cis_pattern(self, kind: str, dotted: str) -> str:
        node = self.crds[kind]
        for part in dotted.split("."):
            node = node["items"] if part == "[]" else node["properties"][part]
        return str(node["pattern"])

    def cis_accepts(self, kind: str, dotted: str, value: str) -> bool:
        # CRD patterns are unanchored, as the API server's Go regexp.MatchString applies them.
        return re.search(self.cis_pattern(kind, dotted), value) is not None

    @property
    def adc_keys(self) -> set[str]:
        return set(self.as3["definitions"]["ADC"]["properties"])

    def as3_tenant(self, value: str) -> bool:
        rule = self.as3["definitions"]["ADC"]["propertyNames"]["oneOf"][0]
        fits = re.search(rule["pattern"], value) is not None and len(value) <= rule["maxLength"]
        return fits and value not in self.adc_keys

    def as3_object(self, value: str) -> bool:
        """A name inside an Application (GSLB servers, data centers, pools...)."""
        rule = self.as3["definitions"]["Application"]["propertyNames"]
        return re.search(rule["pattern"], value) is not None and len(value) <= rule["maxLength"]


@pytest.fixture(scope="session")
def upstream(schema_dir: Path) -> Upstream:
    crds: dict[str, dict[str, Any]] = {}
    for doc in yaml.safe_load_all((schema_dir / "cis" / "crds.yaml").read_text()):
        if doc and doc.get("kind") == "CustomResourceDefinition":
            version = next(v for v in doc["spec"]["versions"] if v["name"] == "v1")
            crds[doc["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    as3 = json.loads((schema_dir / "f5" / "as3-schema.json").read_text())  # JSON; YAML reads it 300x slower
    return Upstream(Validator(schema_dir), crds, as3)


# ---------------------------------------------------------------------------------------------
# Every name a stack gives the systems it reaches
# ---------------------------------------------------------------------------------------------


@dataclass
class Refusals:
    upstream: Upstream
    lines: list[str] = field(default_factory=list)

    def check(self, ok: bool, system: str, value: str) -> None:
        if not ok:
            self.lines.append(f"{system} refuses {value!r}")


def refusals(stack: config.StackConfig, upstream: Upstream) -> list[str]:
    """What the receiving systems would refuse of the names `stack` makes (empty: nothing)."""
    out = Refusals(upstream)
    for unit in stack.units:
        _unit_names(out, unit)
        _app_names(out, unit)
        if unit.bigip is not None:
            _bigip_names(out, unit, unit.bigip)
    if stack.pki is not None:
        _certificate_names(out, stack.pki, stack.units)
    if stack.gslb is not None:
        partition = stack.gslb.dns_device.partition
        out.check(upstream.as3_tenant(partition), "AS3 (tenant)", partition)
        refs = [gslb.UnitRef.of(u) for u in stack.units if u.bigip is not None]
        for violation in upstream.validator.as3(gslb.declaration(stack.gslb, refs), "gslb"):
            out.lines.append(f"AS3 schema: {violation}")
    return out.lines


def _unit_names(out: Refusals, unit: config.Unit) -> None:
    if isinstance(unit.cluster, config.K3dCluster):
        out.check(k3d_cluster_name(cluster.k3d_config(unit)["metadata"]["name"]), "k3d", unit.name)
        out.check(docker_tagged_reference(unit.cluster.image), "Docker reference", unit.cluster.image)
    td = unit.mesh.trust_domain
    out.check(
        istio_trust_domain(mesh.istiod_values(unit.mesh, unit.name)["meshConfig"]["trustDomain"]), "Istio", td
    )
    out.check(spiffe_id(f"spiffe://{td}"), "SPIFFE", td)
    out.check(spiffe_id(pki.egress_spiffe_id(td)), "SPIFFE", pki.egress_spiffe_id(td))
    out.check(istio_fqdn(unit.mesh.tracing.service), "Istio (extension provider)", unit.mesh.tracing.service)
    out.check(istio_fqdn(egress.egress_host(unit)), "Istio (ServiceEntry host)", egress.egress_host(unit))
    namespaces = {*unit.mesh.injected_namespaces, *unit.nginx.namespaces, *(a.namespace for a in unit.apps)}
    for ns in sorted(namespaces):
        out.check(NAME_RULE["Namespace"](ns), "Kubernetes (Namespace)", ns)
    out.check(
        dns1123_subdomain(unit.nginx.ingress_class), "Kubernetes (IngressClass)", unit.nginx.ingress_class
    )
    for entry in unit.egress.allow if unit.egress else ():
        for account in entry.service_accounts:
            out.check(dns1123_subdomain(account), "Kubernetes (ServiceAccount)", account)
            # The egress iRule admits exactly these identities.
            wanted = f"spiffe://{td}/ns/{entry.namespace}/sa/{account}"
            out.check(spiffe_id(wanted), "SPIFFE", wanted)


def _app_names(out: Refusals, unit: config.Unit) -> None:
    up = out.upstream
    for app in unit.apps:
        # CisIngress names every custom resource and Ingress after the app, labelled app=<name>.
        out.check(dns1123_subdomain(app.name), "Kubernetes (custom resource, Ingress)", app.name)
        out.check(label_value(app.name), "Kubernetes (label value)", app.name)
        out.check(NAME_RULE["Service"](app.service), "Kubernetes (Service)", app.service)
        if app.kind in ("tcp", "udp"):
            spec = ingress.transport_server(app)
            out.check(
                up.cis_accepts("TransportServer", "spec.pool.service", spec["pool"]["service"]),
                "CIS",
                app.service,
            )
            continue
        assert app.fqdn is not None
        out.check(
            dns1123_subdomain(ingress.tls_secret_name(app)),
            "Kubernetes (Secret)",
            ingress.tls_secret_name(app),
        )
        gateway = ingress.istio_gateway(app)
        for host in gateway["servers"][0]["hosts"] + ingress.istio_virtual_service(app)["hosts"]:
            out.check(istio_fqdn(host), "Istio (host)", host)
        out.check(dns1123_label(app.name), "Istio (gateway name)", app.name)
        if app.kind == "http-mesh":
            vs, profile = (
                ingress.mesh_virtual_server(unit.name, app),
                ingress.mesh_tls_profile(unit.name, app),
            )
            out.check(
                up.cis_accepts("TLSProfile", "spec.tls.serverSSL", profile["tls"]["serverSSL"]),
                "CIS",
                profile["tls"]["serverSSL"],
            )
        else:
            vs, profile = ingress.nginx_virtual_server(unit.name, app), ingress.edge_tls_profile(app)
            rule = ingress.nginx_ingress(app, unit.nginx.ingress_class)["rules"][0]
            out.check(ingress_host(rule["host"]), "Kubernetes (Ingress host)", rule["host"])
            backend = rule["http"]["paths"][0]["backend"]["service"]["name"]
            out.check(ingress_backend_service(backend), "Kubernetes (Ingress backend)", backend)
        for key in ("host", "tlsProfileName", *(("waf",) if "waf" in vs else ())):
            out.check(
                up.cis_accepts("VirtualServer", f"spec.{key}", vs[key]), f"CIS (VirtualServer {key})", vs[key]
            )
        out.check(
            up.cis_accepts("VirtualServer", "spec.pools.[].service", vs["pools"][0]["service"]),
            "CIS",
            vs["pools"][0]["service"],
        )
        for host in profile["hosts"]:
            out.check(up.cis_accepts("TLSProfile", "spec.hosts.[]", host), "CIS (TLSProfile host)", host)
        out.check(
            up.cis_accepts("TLSProfile", "spec.tls.clientSSL", profile["tls"]["clientSSL"]),
            "CIS",
            profile["tls"]["clientSSL"],
        )


def _bigip_names(out: Refusals, unit: config.Unit, bigip: config.Bigip) -> None:
    up = out.upstream
    for partition in (bigip.cis_partition, bigip.pulumi_partition):
        out.check(f5_partition(partition), "f5bigip provider (partition)", partition)
    # CIS declares its partition as an AS3 tenant; its CRDs write partitions as below.
    out.check(up.as3_tenant(bigip.cis_partition), "AS3 (tenant)", bigip.cis_partition)
    out.check(
        up.cis_accepts("VirtualServer", "spec.partition", bigip.cis_partition),
        "CIS (partition)",
        bigip.cis_partition,
    )
    names = egress.Names(bigip.pulumi_partition)
    paths = [names.profile, names.pool, names.snat_pool, names.data_group, names.irule, names.virtual_server]
    paths += [
        routing.bgp_name(unit),
        f"/Common/{bigip.vlan}",
        f"/Common/{reencrypt.root_cert_name(unit.name)}",
    ]
    paths += [reencrypt.profile_path(unit.name, a) for a in unit.apps if a.kind == "http-mesh"]
    for path in paths:
        out.check(f5_full_path(path), "f5bigip provider (name)", path)
    for app in waf.templated_apps(unit):
        name = waf.policy_inputs(unit.name, app)["name"]
        out.check(waf_policy_name(name), "f5bigip provider (WAF policy name)", name)
    if isinstance(unit.network.cni, config.CalicoBgp):
        for violation in up.validator.do(routing.do_declaration(unit), "do"):
            out.lines.append(f"DO schema: {violation}")
    for ref_name in (gslb.data_center_name(unit.name), gslb.server_name(unit.name)):
        out.check(up.as3_object(ref_name), "AS3 (object name)", ref_name)
    for app in unit.apps:
        out.check(
            up.as3_object(gslb.application_name(app.name)),
            "AS3 (application)",
            gslb.application_name(app.name),
        )


RDN = {NameOID.COMMON_NAME: "CN", NameOID.ORGANIZATION_NAME: "O", NameOID.ORGANIZATIONAL_UNIT_NAME: "OU"}


def _certificate_names(out: Refusals, pki_config: config.Pki, units: tuple[config.Unit, ...]) -> None:
    trusts = [
        pki.UnitTrust(
            u.name,
            u.mesh.trust_domain,
            egress=u.egress is not None,
            apps=tuple((a.name, a.fqdn) for a in u.apps if a.kind.startswith("http") and a.fqdn),
        )
        for u in units
    ]
    for spec in pki.plan(pki_config, trusts):
        for oid, value in (
            (NameOID.COMMON_NAME, spec.common_name),
            (NameOID.ORGANIZATION_NAME, spec.organization),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, spec.organizational_unit),
        ):
            out.check(x509_name_value(oid, value), f"X.509 ({spec.role} {RDN[oid]})", value)
        for uri in spec.uris:
            out.check(spiffe_id(uri), "SPIFFE", uri)


# ---------------------------------------------------------------------------------------------
# Stacks with one name changed
# ---------------------------------------------------------------------------------------------

PROD = raw_stack("prod")
DEV = raw_stack("dev")


def _accepted(raw: dict[str, Any]) -> config.StackConfig:
    """The stack, if the config accepts it; else the example is not one the property is about."""
    try:
        return config.parse_stack(raw)
    except config.ConfigError:
        reject()


def _with(base: dict[str, Any], value: Any, *path: str | int) -> dict[str, Any]:
    """A deep copy of `base` with `value` at `path`."""
    raw = copy.deepcopy(base)
    node: Any = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return raw


def _rename_unit(raw: dict[str, Any], index: int, new: str) -> dict[str, Any]:
    old = raw["units"][index]["name"]
    raw["units"][index]["name"] = new
    for wide in (raw.get("gslb") or {}).get("wideIps", ()):
        wide["units"] = [new if u == old else u for u in wide.get("units", ())]
        wide["ratios"] = {new if u == old else u: r for u, r in wide.get("ratios", {}).items()}
    return raw


def _rename_app(raw: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    for unit in raw["units"]:
        for app in unit["apps"]:
            if app["name"] == old:
                app["name"] = new
    for wide in (raw.get("gslb") or {}).get("wideIps", ()):
        if wide["app"] == old:
            wide["app"] = new
    return raw


def _set_app_field(raw: dict[str, Any], app: str, key: str, value: str) -> dict[str, Any]:
    for unit in raw["units"]:
        for entry in unit["apps"]:
            if entry["name"] == app:
                entry[key] = value
    return raw


def _rename_namespace(raw: dict[str, Any], index: int, old: str, new: str) -> dict[str, Any]:
    unit = raw["units"][index]
    for app in unit["apps"]:
        app["namespace"] = new if app["namespace"] == old else app["namespace"]
    for section, key in (("mesh", "injectedNamespaces"), ("nginx", "namespaces")):
        unit[section][key] = [new if ns == old else ns for ns in unit[section].get(key, ())]
    for entry in (unit.get("egress") or {}).get("allow", ()):
        entry["namespace"] = new if entry["namespace"] == old else entry["namespace"]
    return raw


# Candidates: what the name types accepted before issue 13 (a superset of what they accept now),
# plus words that mean something to a receiving system.
labels = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
long_labels = st.from_regex(r"\A[a-z0-9][-a-z0-9]{40,61}[a-z0-9]\Z")
fqdns = (
    st.lists(st.one_of(labels, long_labels), min_size=2, max_size=4)
    .filter(lambda ls: not ls[-1].isdigit())
    .map(".".join)
    .filter(lambda f: len(f) <= 253)
)
trust_domains = (
    st.lists(st.from_regex(r"\A[a-z0-9_-]{1,70}\Z"), min_size=1, max_size=5)
    .map(".".join)
    .filter(lambda t: len(t) <= 255)
)
AS3_WORDS = [
    "label",
    "remark",
    "id",
    "class",
    "constants",
    "controls",
    "scratch",
    "target",
    "updateMode",
    "Shared",
]
partitions = st.one_of(st.from_regex(r"\A[A-Za-z][A-Za-z0-9._-]{0,63}\Z"), st.sampled_from(AS3_WORDS))
images = st.from_regex(r"\A[a-z0-9][a-z0-9./_-]{0,40}:[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")
policy_paths = st.from_regex(r"\A/[A-Za-z][A-Za-z0-9_.-]{0,10}/[A-Za-z][A-Za-z0-9_.-]{0,20}\Z")
APPS = ["bookinfo", "httpbin", "mqtt"]  # http-mesh, http-nginx, tcp in every prod unit


# ---------------------------------------------------------------------------------------------
# 1. Values the config accepts name valid objects everywhere they go
# ---------------------------------------------------------------------------------------------


def test_the_stack_files_make_only_names_their_receiving_systems_accept(upstream: Upstream) -> None:
    for name in ("dev", "prod"):
        assert refusals(config.parse_stack(raw_stack(name)), upstream) == [], name


def test_every_rule_here_refuses_what_its_system_refuses() -> None:
    # The oracles are not vacuous: each refuses a value its upstream refuses.
    assert not dns1123_label("a.b") and not dns1123_label("-a") and dns1123_label("1a")
    assert not dns1123_subdomain("A.b") and dns1123_subdomain("a.b")
    assert not dns1035_label("1a") and dns1035_label("a1")
    assert not label_value("-a") and label_value("") and label_value("A_b.c")
    assert not ingress_host("10.0.0.1") and ingress_host("a.example.com")
    assert (
        not istio_trust_domain("a_b.com")
        and not istio_trust_domain("-a.com")
        and istio_trust_domain("a.com.")
    )
    assert not istio_fqdn("a.b.123") and istio_fqdn("a.b")
    assert not spiffe_id("spiffe://a/./b") and not spiffe_id("spiffe://A/b") and spiffe_id("spiffe://a_b/c")
    assert not k3d_cluster_name("cpaas-" + "a" * 27) and k3d_cluster_name("cpaas-dev")
    assert not docker_tagged_reference("a//b:1") and not docker_tagged_reference("a-:1")
    assert not docker_tagged_reference("rancher/k3s") and docker_tagged_reference("rancher/k3s:v1.34.6-k3s1")
    assert not f5_full_path("/Common/a b") and f5_full_path("/Common/a:b")
    assert not f5_partition("p") and not f5_partition("/Common") and f5_partition("pp")
    assert not x509_name_value(NameOID.COMMON_NAME, "a" * 65) and x509_name_value(
        NameOID.COMMON_NAME, "a" * 64
    )
    assert not helm_release_name("a" * 54) and helm_release_name("istiod")


@PROPERTY
@given(st.sampled_from(APPS), st.one_of(labels, st.sampled_from(["mq", "a", "1app"])))
def test_every_app_name_the_config_accepts_is_a_name_kubernetes_istio_cis_as3_and_the_bigip_accept(
    upstream: Upstream, app: str, name: str
) -> None:
    stack = _accepted(_rename_app(copy.deepcopy(PROD), app, name))
    assert refusals(stack, upstream) == []


@PROPERTY
@given(st.sampled_from(APPS), labels)
@example("bookinfo", "9to5")
def test_every_app_service_the_config_accepts_is_a_kubernetes_service_name(
    upstream: Upstream, app: str, service: str
) -> None:
    stack = _accepted(_set_app_field(copy.deepcopy(PROD), app, "service", service))
    assert refusals(stack, upstream) == []


@PROPERTY
@given(st.sampled_from(["bookinfo", "httpbin", "mqtt"]), labels)
def test_every_namespace_the_config_accepts_is_a_kubernetes_namespace_and_a_spiffe_path_segment(
    upstream: Upstream, old: str, new: str
) -> None:
    raw = _rename_namespace(copy.deepcopy(PROD), 0, old, new)
    raw["units"][0]["egress"]["allow"][0]["serviceAccounts"] = ["default"]
    assert refusals(_accepted(raw), upstream) == []


@PROPERTY
@given(st.sampled_from(APPS), fqdns)
@example("bookinfo", "a" * 60 + ".example.com")
def test_every_app_fqdn_the_config_accepts_is_a_host_everywhere_and_a_certificate_common_name(
    upstream: Upstream, app: str, fqdn: str
) -> None:
    stack = _accepted(_set_app_field(copy.deepcopy(PROD), app, "fqdn", fqdn))
    assert refusals(stack, upstream) == []


@PROPERTY
@given(trust_domains)
@example("prod_mesh.example.com")
def test_every_trust_domain_the_config_accepts_is_one_istio_and_spiffe_accept(
    upstream: Upstream, domain: str
) -> None:
    raw = copy.deepcopy(PROD)
    raw["units"][0]["mesh"]["trustDomain"] = domain
    raw["units"][0]["egress"]["allow"][0]["serviceAccounts"] = ["bookinfo-productpage"]
    assert refusals(_accepted(raw), upstream) == []


@PROPERTY
@given(st.sampled_from(["cisPartition", "pulumiPartition", "gslb"]), partitions)
@example("gslb", "label")
@example("pulumiPartition", "p")
def test_every_partition_the_config_accepts_is_an_as3_tenant_and_a_partition_the_provider_and_cis_accept(
    upstream: Upstream, where: str, partition: str
) -> None:
    raw = copy.deepcopy(PROD)
    if where == "gslb":
        raw["gslb"]["dnsDevice"]["partition"] = partition
    else:
        raw["units"][0]["bigip"][where] = partition
    assert refusals(_accepted(raw), upstream) == []


@PROPERTY
@given(st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?\Z"))
def test_every_unit_name_the_config_accepts_names_a_k3d_cluster_bigip_objects_and_certificates(
    upstream: Upstream, name: str
) -> None:
    for raw in (_rename_unit(copy.deepcopy(PROD), 0, name), _rename_unit(copy.deepcopy(DEV), 0, name)):
        assert refusals(_accepted(raw), upstream) == []


@PROPERTY
@given(images)
@example("rancher//k3s:v1")
@example("rancher/k3s-:v1")
def test_every_k3d_image_the_config_accepts_is_a_docker_reference(upstream: Upstream, image: str) -> None:
    raw = _with(DEV, image, "units", 0, "cluster", "image")
    assert refusals(_accepted(raw), upstream) == []


@PROPERTY
@given(policy_paths)
@example("/C/policy")
@example("/My.Part/policy")
def test_every_waf_policy_path_the_config_accepts_is_one_cis_accepts(upstream: Upstream, path: str) -> None:
    raw = _with(PROD, {"policy": path}, "units", 1, "apps", 0, "waf")
    assert refusals(_accepted(raw), upstream) == []


@PROPERTY
@given(st.sampled_from(["region", "ingressClass", "serviceAccount", "vlan"]), labels)
def test_every_other_name_the_config_accepts_is_accepted_where_it_goes(
    upstream: Upstream, where: str, name: str
) -> None:
    raw = copy.deepcopy(PROD)
    unit = raw["units"][0]
    if where == "region":
        unit["region"] = name
    elif where == "ingressClass":
        unit["nginx"]["ingressClass"] = name
    elif where == "vlan":
        unit["bigip"]["vlan"] = name
    else:
        unit["egress"]["allow"][0]["serviceAccounts"] = [name]
    assert refusals(_accepted(raw), upstream) == []


# ---------------------------------------------------------------------------------------------
# 2. Values a receiving system refuses are refused by the config, with one line
# ---------------------------------------------------------------------------------------------


errors = support.config_errors


SERVICE_MSG = (
    "is not a Kubernetes Service name (a DNS-1035 label); use 1-63 lowercase letters, digits and '-', "
    "starting with a letter and ending with a letter or digit, e.g. productpage"
)


@pytest.mark.parametrize("service", ["9to5", "1productpage", "0"])
def test_fails_when_an_app_service_starts_with_a_digit_which_kubernetes_refuses_as_a_service_name(
    service: str,
) -> None:
    assert dns1123_label(service) and not dns1035_label(service)
    raw = _with(PROD, service, "units", 0, "apps", 2, "service")
    assert errors(raw) == [f"cpaas:units[0].apps[2].service: {service!r} {SERVICE_MSG}"]


APP_NAME_MSG = (
    "is not a usable app name; use 3-63 lowercase letters, digits and '-', starting with a letter "
    "and ending with a letter or digit (CIS names the app's TLSProfile after it), e.g. mqtt"
)


@pytest.mark.parametrize("name", ["mq", "a", "1app", "9-lives"])
def test_fails_when_an_app_name_is_shorter_than_3_or_starts_with_a_digit_as_no_cis_tls_profile_may(
    upstream: Upstream, name: str
) -> None:
    assert dns1123_label(name)
    assert not upstream.cis_accepts("VirtualServer", "spec.tlsProfileName", name)
    raw = _rename_app(copy.deepcopy(PROD), "mqtt", name)
    lines = errors(raw)
    assert f"cpaas:units[0].apps[2].name: {name!r} {APP_NAME_MSG}" in lines
    assert all(APP_NAME_MSG in line for line in lines)


def test_fails_when_an_app_fqdn_is_longer_than_a_certificate_common_name_may_be() -> None:
    fqdn = "a" * 53 + ".example.com"  # 65 characters
    assert len(fqdn) == 65 and not x509_name_value(NameOID.COMMON_NAME, fqdn)
    raw = _set_app_field(copy.deepcopy(PROD), "bookinfo", "fqdn", fqdn)
    lines = errors(raw)
    assert lines[0] == (
        f"cpaas:units[0].apps[0].fqdn: {fqdn!r} is 65 characters; an app's FQDN is its certificate's "
        "common name, which X.509 caps at 64 (RFC 5280 ub-common-name), use a shorter name"
    )
    assert len(lines) == 3  # once per unit


TRUST_DOMAIN_MSG = (
    "is not a SPIFFE trust domain Istio accepts; use lowercase DNS labels (1-63 letters, digits and '-', "
    "starting and ending with a letter or digit) joined by '.', at most 255 characters, with no scheme, "
    "port or path, e.g. prod.cpaas.example.com"
)


@pytest.mark.parametrize(
    "domain", ["prod_mesh.example.com", "-prod.example.com", "prod-.example.com", "a" * 64 + ".example.com"]
)
def test_fails_when_a_trust_domain_has_a_label_istio_refuses(domain: str) -> None:
    assert spiffe_id(f"spiffe://{domain}") and not istio_trust_domain(domain)
    raw = _with(PROD, domain, "units", 1, "mesh", "trustDomain")
    assert errors(raw) == [f"cpaas:units[1].mesh.trustDomain: {domain!r} {TRUST_DOMAIN_MSG}"]


PARTITION_MSG = (
    "is not a usable BIG-IP partition; use 2-64 letters, digits, '.', '-' and '_', starting with a "
    "letter, and not Common or an AS3 declaration key (class, constants, controls, id, label, remark, "
    "schemaVersion, scratch, target, updateMode), e.g. cpaas-aws-syd"
)


@pytest.mark.parametrize("partition", ["label", "remark", "id", "constants", "p"])
def test_fails_when_a_partition_is_an_as3_declaration_key_or_one_character(
    upstream: Upstream, partition: str
) -> None:
    assert not (upstream.as3_tenant(partition) and f5_partition(partition))
    raw = _with(PROD, partition, "gslb", "dnsDevice", "partition")
    assert errors(raw) == [f"cpaas:gslb.dnsDevice.partition: {partition!r} {PARTITION_MSG}"]


def test_the_partition_message_names_every_as3_declaration_key_a_tenant_could_collide_with(
    upstream: Upstream,
) -> None:
    tenant_like = sorted(
        k for k in upstream.adc_keys if re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", k) and k != "Common"
    )
    assert ", ".join(tenant_like) in PARTITION_MSG
    for key in tenant_like:
        raw = _with(PROD, key, "units", 0, "bigip", "cisPartition")
        assert errors(raw) == [f"cpaas:units[0].bigip.cisPartition: {key!r} {PARTITION_MSG}"], key


WAF_POLICY_MSG = (
    "is not a WAF policy path CIS accepts; use /<partition>/<name>: a partition of 2 or more letters, "
    "digits, '-' or '_' starting with a letter, and a name of letters, digits, '.', '-' or '_' starting "
    "with a letter, e.g. /Common/bookinfo-waf"
)


@pytest.mark.parametrize("path", ["/C/policy", "/My.Part/policy"])
def test_fails_when_a_waf_policy_path_has_a_partition_cis_refuses(upstream: Upstream, path: str) -> None:
    assert not upstream.cis_accepts("VirtualServer", "spec.waf", path)
    raw = _with(PROD, {"policy": path}, "units", 1, "apps", 0, "waf")
    assert errors(raw) == [f"cpaas:units[1].apps[0].waf.policy: {path!r} {WAF_POLICY_MSG}"]


IMAGE_MSG = (
    "is not a pinned image reference; use repository:tag with a fixed tag (never 'latest'), the "
    "repository as lowercase components of letters and digits joined by '.', '_', '__' or '-' and "
    "separated by '/', e.g. rancher/k3s:v1.34.6-k3s1"
)


@pytest.mark.parametrize(
    "image", ["rancher//k3s:v1", "rancher/k3s-:v1", "rancher/-k3s:v1", "a..b/k3s:v1", "a/:v1"]
)
def test_fails_when_a_k3d_image_is_not_a_docker_reference(image: str) -> None:
    assert not docker_tagged_reference(image)
    raw = _with(DEV, image, "units", 0, "cluster", "image")
    assert errors(raw) == [f"cpaas:units[0].cluster.image: {image!r} {IMAGE_MSG}"]


# ---------------------------------------------------------------------------------------------
# 3. A render with names at the edges of what the config accepts
# ---------------------------------------------------------------------------------------------


def _edge_prod() -> dict[str, Any]:
    raw = _rename_unit(copy.deepcopy(PROD), 0, "aws-sydney-zone-0001")  # 20
    raw = _rename_app(raw, "bookinfo", "b" + "-x" * 31)  # 63
    raw = _set_app_field(raw, "b" + "-x" * 31, "fqdn", "b" * 52 + ".example.com")  # 64
    unit = raw["units"][0]
    unit["apps"][1]["service"] = "s" * 63
    raw = _rename_namespace(raw, 0, "mqtt", "n" * 63)
    raw = _rename_namespace(raw, 0, "httpbin", "h" * 62 + "1")
    unit["mesh"]["trustDomain"] = ".".join(["t" * 63] * 4)  # 255
    unit["bigip"]["cisPartition"] = "C" + "i" * 63
    unit["bigip"]["pulumiPartition"] = "P" + "u" * 63
    unit["bigip"]["vlan"] = "v" * 64
    unit["nginx"]["ingressClass"] = "c" * 63
    unit["egress"]["allow"][0]["serviceAccounts"] = ["a" * 63]
    raw["gslb"]["dnsDevice"]["partition"] = "G" + "s" * 63
    return raw


def _edge_dev() -> dict[str, Any]:
    raw = _rename_unit(copy.deepcopy(DEV), 0, "dev-laptop-zone-0001")
    raw["units"][0]["cluster"]["image"] = "registry.example.com/mirror/rancher__k3s:v1.34.6-k3s1"
    raw["units"][0]["apps"][1]["service"] = "p" * 63  # the demo makes this Service
    return raw


def _k8s_names(obj: dict[str, Any]) -> Iterator[tuple[str, bool, str]]:
    meta = obj.get("metadata") or {}
    kind, name = obj["kind"], str(meta.get("name", ""))
    yield f"Kubernetes ({kind} name)", NAME_RULE.get(kind, dns1123_subdomain)(name), name
    if "namespace" in meta:
        yield "Kubernetes (namespace)", dns1123_label(meta["namespace"]), meta["namespace"]
    for value in (meta.get("labels") or {}).values():
        yield "Kubernetes (label value)", label_value(str(value)), str(value)
    spec = obj.get("spec") or {}
    if kind == "Ingress":
        yield (
            "Kubernetes (ingressClassName)",
            dns1123_subdomain(spec["ingressClassName"]),
            spec["ingressClassName"],
        )
        for rule in spec.get("rules", ()):
            yield "Kubernetes (Ingress host)", ingress_host(rule["host"]), rule["host"]
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]["name"]
                yield "Kubernetes (Ingress backend)", ingress_backend_service(backend), backend
    if obj["apiVersion"].startswith("networking.istio.io/"):
        hosts = list(spec.get("hosts", ())) + ([spec["host"]] if "host" in spec else [])
        hosts += [h for server in spec.get("servers", ()) for h in server.get("hosts", ())]
        hosts += [r["destination"]["host"] for http in spec.get("http", ()) for r in http.get("route", ())]
        for host in hosts:
            yield "Istio (host)", istio_fqdn(host), host


def _bigip_names_of(reg: Any) -> Iterator[tuple[str, bool, str]]:
    kind = reg.type.rsplit(":", 1)[-1]
    for key, value in reg.inputs.items():
        if key == "partition":
            yield f"f5bigip provider ({kind} partition)", f5_partition(value), value
        # Every object the provider is given by full path: /<partition>/<name>.
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and re.fullmatch(r"/[^/\s]+/[^/\s]+", item):
                yield f"f5bigip provider ({kind} {key})", f5_full_path(item), item
    if kind == "WafPolicy":
        yield "f5bigip provider (WAF policy name)", waf_policy_name(reg.inputs["name"]), reg.inputs["name"]


# Per edge stack: names of its own that must reach the render (so the checks below saw them).
EDGE_NAMES = {
    "prod": {"s" * 63, "n" * 63, "c" * 63, "P" + "u" * 63, "b" * 52 + ".example.com"},
    "dev": {"p" * 63, "cpaas-dev-laptop-zone-0001"},
}


@pytest.mark.parametrize("edge", [_edge_prod, _edge_dev], ids=["prod", "dev"])
def test_a_render_with_names_at_the_edges_of_the_config_gives_every_system_names_it_accepts(
    upstream: Upstream, schema_dir: Path, edge: Callable[[], dict[str, Any]]
) -> None:
    stack = config.parse_stack(edge())
    assert refusals(stack, upstream) == []
    run = run_build(stack)
    rendered = render.render_files(run, stack, [])
    checks: list[tuple[str, bool, str]] = []
    for _path, _unit, obj in rendered.k8s:
        checks += _k8s_names(obj)
    for reg in run.registrations:
        if reg.type.startswith("f5bigip:"):
            checks += _bigip_names_of(reg)
        if reg.type == "kubernetes:helm.sh/v3:Release":
            checks.append(
                ("Helm (release name)", helm_release_name(str(reg.inputs["name"])), str(reg.inputs["name"]))
            )
        if reg.type == "command:local:Command" and "CPAAS_K3D_NAME" in (reg.inputs.get("environment") or {}):
            name = reg.inputs["environment"]["CPAAS_K3D_NAME"]
            checks.append(("k3d (cluster name)", k3d_cluster_name(name), name))
    assert [f"{system} refuses {value!r}" for system, ok, value in checks if not ok] == []
    assert EDGE_NAMES[edge.__name__.removeprefix("_edge_")] <= {value for _, _, value in checks}
    violations, _skipped, checked = render.validate(rendered, stack, schema_dir)
    assert violations == []
    assert checked["kubernetes"] > 0
