"""The stack file as strict, typed models; every validation rule of the stack lives here.

A stack file's `cpaas:<key>` entries map onto `StackConfig` fields (camelCase in YAML,
snake_case in Python). `parse_stack` turns the raw mapping into a `StackConfig` or raises
`ConfigError` whose lines name the config path, the value, what is allowed and the fix.
Secrets never sit in these models: the models only name the secret config keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from ipaddress import IPv4Address, IPv4Network
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

CONFIG_NAMESPACE = "cpaas"

# Ref: kubernetes/apimachinery@v0.34.10 pkg/util/validation/validation.go (IsDNS1123Label,
# IsDNS1035Label: 63 at most; Services are named by the latter, namespaces by the former)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_FQDN_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# BIG-IP object names: letters, digits, '.', '-', '_'; must start with a letter.
_BIGIP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
_CONFIG_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
# Docker's reference grammar, lowercase and without a registry port: path components joined by
# '.', '_', '__' or dashes, a repository of at most 255, a tag of at most 128.
# Ref: distribution/reference@v0.6.0 regexp.go (ReferenceRegexp), reference.go
_IMAGE_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REF = re.compile(
    rf"^(?P<repository>{_IMAGE_COMPONENT}(?:/{_IMAGE_COMPONENT})*):[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}$"
)


# ---------------------------------------------------------------------------------------------
# Domain types
# ---------------------------------------------------------------------------------------------


def _non_empty(what: str, fix: str) -> Any:
    def check(value: tuple[Any, ...]) -> tuple[Any, ...]:
        # An AfterValidator runs only once every item is valid, so a bad item never also
        # reports "empty" (as min_length would).
        if not value:
            raise ValueError(f"no {what}; {fix}")
        return value

    return AfterValidator(check)


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label; use 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def _unit_name(value: str) -> str:
    _dns_label(value)
    if len(value) > 20:
        raise ValueError(
            f"{value!r} is {len(value)} characters; unit names are at most 20 "
            "(they prefix cluster, partition and resource names)"
        )
    return value


def _app_name(value: str) -> str:
    # Also the app's CIS TLSProfile name: letters first, 3 at least.
    # Ref: F5Networks/k8s-bigip-ctlr@v2.20.4 docs/config_examples/customResourceDefinitions/
    #      customresourcedefinitions.yml (VirtualServer spec.tlsProfileName)
    if len(value) < 3 or len(value) > 63 or not _DNS_1035_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a usable app name; use 3-63 lowercase letters, digits and '-', "
            "starting with a letter and ending with a letter or digit (CIS names the app's "
            "TLSProfile after it), e.g. mqtt"
        )
    return value


def _service_name(value: str) -> str:
    # Ref: kubernetes/kubernetes pkg/apis/core/validation/validation.go (ValidateServiceName =
    # NameIsDNS1035Label); pkg/apis/networking/validation/validation.go holds an Ingress backend's
    # service.name to it too unless the alpha RelaxedServiceNameValidation gate is on.
    if len(value) > 63 or not _DNS_1035_LABEL.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Kubernetes Service name (a DNS-1035 label); use 1-63 lowercase "
            "letters, digits and '-', starting with a letter and ending with a letter or digit, "
            "e.g. productpage"
        )
    return value


def _fqdn(value: str) -> str:
    labels = value.split(".")
    if (
        len(value) > 253
        or len(labels) < 2
        or not all(len(lb) <= 63 and _FQDN_LABEL.fullmatch(lb) for lb in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError(
            f"{value!r} is not a fully qualified domain name; use lowercase labels of letters, "
            "digits and '-' joined by '.', e.g. bookinfo.apps.example.com"
        )
    return value


def _app_fqdn(value: str) -> str:
    _fqdn(value)
    # The app's server certificate names it as its CN. Ref: RFC 5280 appendix A (ub-common-name)
    if len(value) > 64:
        raise ValueError(
            f"{value!r} is {len(value)} characters; an app's FQDN is its certificate's common name, "
            "which X.509 caps at 64 (RFC 5280 ub-common-name), use a shorter name"
        )
    return value


def _trust_domain(value: str) -> str:
    # SPIFFE allows [a-z0-9._-] up to 255; Istio's mesh config wants DNS labels (no '_').
    # Ref: spiffe/spiffe@665a28f3 standards/SPIFFE-ID.md (2.1, 2.3)
    # Ref: istio/istio@1.30.3 pkg/config/validation/agent/validation.go (ValidateTrustDomain)
    if len(value) > 255 or not all(len(lb) <= 63 and _DNS_LABEL.fullmatch(lb) for lb in value.split(".")):
        raise ValueError(
            f"{value!r} is not a SPIFFE trust domain Istio accepts; use lowercase DNS labels (1-63 "
            "letters, digits and '-', starting and ending with a letter or digit) joined by '.', at "
            "most 255 characters, with no scheme, port or path, e.g. prod.cpaas.example.com"
        )
    return value


def _bigip_name(value: str) -> str:
    if not _BIGIP_NAME.fullmatch(value) or value.lower() == "common":
        raise ValueError(
            f"{value!r} is not a usable BIG-IP partition or object name; start with a letter, "
            "use letters, digits, '.', '-', '_' (at most 64), and not 'Common'"
        )
    return value


# ADC properties: a tenant named like one would be read as that property.
# Ref: F5Networks/f5-appsvcs-extension@v3.56.0 schema/3.56.0/as3-schema.json (definitions.ADC)
_AS3_DECLARATION_KEYS = (
    "class", "constants", "controls", "id", "label",
    "remark", "schemaVersion", "scratch", "target", "updateMode",
)  # fmt: skip


def _partition(value: str) -> str:
    # Two characters at least: the f5bigip provider's partition rule and CIS's CRDs.
    # Ref: F5Networks/terraform-provider-bigip@v1.26.0 bigip/validators.go (validatePartitionName)
    # Ref: F5Networks/k8s-bigip-ctlr@v2.20.4 (VirtualServer spec.partition, as for tlsProfileName)
    if (
        not _BIGIP_NAME.fullmatch(value)
        or len(value) < 2
        or value.lower() == "common"
        or value in _AS3_DECLARATION_KEYS
    ):
        raise ValueError(
            f"{value!r} is not a usable BIG-IP partition; use 2-64 letters, digits, '.', '-' and '_', "
            "starting with a letter, and not Common or an AS3 declaration key "
            f"({', '.join(_AS3_DECLARATION_KEYS)}), e.g. cpaas-aws-syd"
        )
    return value


def _config_key(value: str) -> str:
    if not _CONFIG_KEY.fullmatch(value) or ":" in value:
        raise ValueError(
            f"{value!r} is not a config key name; give the bare key (no 'cpaas:' prefix) "
            "made of letters, digits, '_', '-', '.'"
        )
    return value


def _image_ref(value: str) -> str:
    match = _IMAGE_REF.fullmatch(value)
    if match is None or len(match["repository"]) > 255 or value.endswith(":latest"):
        raise ValueError(
            f"{value!r} is not a pinned image reference; use repository:tag with a fixed tag "
            "(never 'latest'), the repository as lowercase components of letters and digits joined "
            "by '.', '_', '__' or '-' and separated by '/', e.g. rancher/k3s:v1.34.6-k3s1"
        )
    return value


def _matching(pattern: str, problem: str) -> AfterValidator:
    """A validator that accepts text matching `pattern` whole, else says `problem` about it."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} {problem}")
        return value

    return AfterValidator(check)


# Printable ASCII without the characters that DN printers quote or escape (RFC 4514 and
# OpenSSL's), '/' (old slash form), '=', Tcl's list and substitution characters, and no outer
# spaces: the egress iRule compares its CA's issuer name as plain "attr=value" text.
_DN_VALUE = _matching(
    r"[A-Za-z0-9](?:[A-Za-z0-9 .&'()_:@!?*%-]*[A-Za-z0-9.)])?",
    "cannot go into a certificate name as plain text; use letters, digits, spaces and "
    ". & ' ( ) _ : @ ! ? * % - (no , + \" \\ < > ; # = / [ ] { } $), starting with a letter or "
    "digit, e.g. Example Bank Ltd",
)
_LOCATION = _matching(
    r"[A-Za-z0-9][A-Za-z0-9 ._/-]{0,63}",
    "is not a data center location; use up to 64 letters, digits, spaces and . _ / -, "
    "starting with a letter or digit, e.g. onprem/syd-dns",
)
_SEMVER = _matching(r"\d+\.\d+\.\d+", "is not an exact version; pin MAJOR.MINOR.PATCH, e.g. 1.30.3")
_K8S_MINOR = _matching(r"1\.\d{2}", "is not a Kubernetes minor version; use e.g. '1.33'")
# The partition as CIS's `waf` field has it: no '.', 2 characters at least.
# Ref: F5Networks/k8s-bigip-ctlr@v2.20.4 (VirtualServer spec.waf)
_WAF_POLICY = _matching(
    r"/[A-Za-z][A-Za-z0-9_-]+/[A-Za-z][A-Za-z0-9_.-]*",
    "is not a WAF policy path CIS accepts; use /<partition>/<name>: a partition of 2 or more "
    "letters, digits, '-' or '_' starting with a letter, and a name of letters, digits, '.', '-' "
    "or '_' starting with a letter, e.g. /Common/bookinfo-waf",
)
_STACK_REF = _matching(
    r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}",
    "is not a stack reference; use org/project/stack, project/stack or stack",
)


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
Location = Annotated[str, _LOCATION]
DnValue = Annotated[str, _DN_VALUE]
UnitName = Annotated[str, AfterValidator(_unit_name)]
AppName = Annotated[str, AfterValidator(_app_name)]
ServiceName = Annotated[str, AfterValidator(_service_name)]
Fqdn = Annotated[str, AfterValidator(_fqdn)]
AppFqdn = Annotated[str, AfterValidator(_app_fqdn)]
TrustDomain = Annotated[str, AfterValidator(_trust_domain)]
BigipName = Annotated[str, AfterValidator(_bigip_name)]
PartitionName = Annotated[str, AfterValidator(_partition)]
WafPolicyPath = Annotated[str, _WAF_POLICY]
ConfigKey = Annotated[str, AfterValidator(_config_key)]
ImageRef = Annotated[str, AfterValidator(_image_ref)]
SemVer = Annotated[str, _SEMVER]
K8sMinor = Annotated[str, _K8S_MINOR]
StackRefName = Annotated[str, _STACK_REF]
# Strict: YAML's `true` must not read as port 1, nor 10 as a bool.
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
Asn = Annotated[int, Strict(), Field(ge=1, le=4294967295)]


def _text_only(value: Any) -> Any:
    # ipaddress would read an int (or True) as an address; the stack file writes addresses as text.
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an address; write it as text, e.g. 10.0.0.1 or 10.0.0.0/16")
    return value


IPv4Addr = Annotated[IPv4Address, BeforeValidator(_text_only)]
IPv4Net = Annotated[IPv4Network, BeforeValidator(_text_only)]


class Model(BaseModel):
    """Base of every config model: camelCase keys, unknown keys refused, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        strict=False,
    )


# ---------------------------------------------------------------------------------------------
# PKI
# ---------------------------------------------------------------------------------------------

KeyAlgorithm = Literal["ECDSA-P256", "ECDSA-P384", "RSA-2048", "RSA-3072", "RSA-4096"]


class GeneratedRoot(Model):
    """The org root is generated and kept (encrypted) in the stack state; dev and labs."""

    source: Literal["generated"]
    common_name: str = Field(min_length=1, max_length=64)
    validity_days: StrictInt = Field(default=3650, ge=30, le=7300)


class ImportedRoot(Model):
    """The org root's certificate and key come from secret config keys (the bank's offline CA)."""

    source: Literal["imported"]
    cert_key: ConfigKey
    private_key_secret: ConfigKey


class Pki(Model):
    organization: DnValue = Field(min_length=1, max_length=64)
    key_algorithm: KeyAlgorithm = "ECDSA-P256"
    root: Annotated[GeneratedRoot | ImportedRoot, Field(discriminator="source")]
    intermediate_validity_days: StrictInt = Field(default=1095, ge=7, le=3650)
    leaf_validity_days: StrictInt = Field(default=365, ge=1, le=825)

    @model_validator(mode="after")
    def _leaf_inside_intermediate(self) -> Pki:
        if self.leaf_validity_days > self.intermediate_validity_days:
            raise ValueError(
                f"leafValidityDays {self.leaf_validity_days} exceeds intermediateValidityDays "
                f"{self.intermediate_validity_days}; a leaf must not outlive its issuer"
            )
        if isinstance(self.root, GeneratedRoot) and (
            self.intermediate_validity_days > self.root.validity_days
        ):
            raise ValueError(
                f"intermediateValidityDays {self.intermediate_validity_days} exceeds "
                f"root.validityDays {self.root.validity_days}; shorten the intermediate"
            )
        return self


# ---------------------------------------------------------------------------------------------
# Cluster sources
# ---------------------------------------------------------------------------------------------


class K3dCluster(Model):
    """A local k3d cluster made and removed by pulumi-command (dev)."""

    source: Literal["k3d"]
    image: ImageRef = "rancher/k3s:v1.34.6-k3s1"
    kubernetes_version: K8sMinor = "1.34"
    servers: StrictInt = Field(default=1, ge=1, le=5)
    agents: StrictInt = Field(default=3, ge=0, le=10)
    api_port: Port = 6550
    tls_sans: tuple[str, ...] = ("127.0.0.1", "localhost")
    docker_network: DnsLabel | None = None


class KubeconfigCluster(Model):
    """An existing cluster whose kubeconfig sits in a secret config key (EKS, AKS, GKE, any)."""

    source: Literal["kubeconfig"]
    kubeconfig_secret: ConfigKey
    kubernetes_version: K8sMinor
    context: str | None = None


class StackReferenceCluster(Model):
    """An existing cluster whose kubeconfig is an output of another stack (made by a cluster team)."""

    source: Literal["stackReference"]
    stack: StackRefName
    output: str = Field(default="kubeconfig", min_length=1, max_length=100)
    kubernetes_version: K8sMinor


ClusterSource = Annotated[
    K3dCluster | KubeconfigCluster | StackReferenceCluster, Field(discriminator="source")
]


# ---------------------------------------------------------------------------------------------
# Network and CNI
# ---------------------------------------------------------------------------------------------


class CalicoBgp(Model):
    """Calico as the CNI, peering BGP with the unit's BIG-IP so it routes to pod IPs."""

    type: Literal["calico-bgp"]
    asn: Asn
    encapsulation: Literal["None", "IPIP", "IPIPCrossSubnet", "VXLAN", "VXLANCrossSubnet"] = "None"
    block_size: StrictInt = Field(default=26, ge=20, le=32)
    node_to_node_mesh: StrictBool = True
    nat_outgoing: StrictBool = True


class CloudNativeCni(Model):
    """The cloud's VPC-native CNI (EKS VPC CNI, Azure CNI, GKE VPC-native): pods are routable."""

    type: Literal["cloud-native"]


Cni = Annotated[CalicoBgp | CloudNativeCni, Field(discriminator="type")]


class Network(Model):
    pod_cidr: IPv4Net
    service_cidr: IPv4Net
    node_cidr: IPv4Net
    cni: Cni


# ---------------------------------------------------------------------------------------------
# Mesh, NGINX
# ---------------------------------------------------------------------------------------------


class Tracing(Model):
    enabled: StrictBool = False
    provider: Literal["zipkin", "opentelemetry"] = "zipkin"
    service: Fqdn = "jaeger-collector.observability.svc.cluster.local"
    port: Port = 9411
    sampling_percent: float = Field(default=1.0, ge=0.0, le=100.0)


class Mesh(Model):
    istio_version: SemVer = "1.30.3"
    trust_domain: TrustDomain
    injected_namespaces: tuple[DnsLabel, ...] = ()
    tracing: Tracing = Tracing()
    ingress_gateway_replicas: StrictInt = Field(default=2, ge=1, le=20)

    @model_validator(mode="after")
    def _v1_apis(self) -> Mesh:
        # We render networking/security/telemetry.istio.io/v1, which Istio serves from 1.22;
        # Aspen Mesh's last public builds are based on Istio 1.21.
        major, minor, _ = (int(p) for p in self.istio_version.split("."))
        if (major, minor) < (1, 22):
            raise ValueError(
                f"@istioVersion: {self.istio_version} predates Istio 1.22, which first serves the "
                "v1 APIs cpaas renders (e.g. an Aspen Mesh 1.21 build); use 1.22 or later"
            )
        return self


_QUANTITY = r"^[1-9][0-9]*(Mi|Gi|Ti)$"
_DURATION = r"^[1-9][0-9]*(h|d|w)$"


class Observability(Model):
    """Metrics (Prometheus, Grafana with dashboards as code) and tracing (Jaeger) per unit."""

    # None: on in prod, off elsewhere.
    enabled: StrictBool | None = None
    prometheus_retention: str = Field(default="15d", pattern=_DURATION)
    prometheus_storage: str = Field(default="50Gi", pattern=_QUANTITY)
    grafana_storage: str = Field(default="10Gi", pattern=_QUANTITY)
    tracing_storage: str = Field(default="20Gi", pattern=_QUANTITY)
    tracing_retention: str = Field(default="72h", pattern=_DURATION)


class Nginx(Model):
    enabled: StrictBool = True
    ingress_class: DnsLabel = "nginx"
    replicas: StrictInt = Field(default=2, ge=1, le=20)
    namespaces: tuple[DnsLabel, ...] = ()


# ---------------------------------------------------------------------------------------------
# BIG-IP and egress
# ---------------------------------------------------------------------------------------------


_NO_TRUST = (
    "@trustedCertFile: neither trustedCertFile nor insecureSkipVerify is set; commit the BIG-IP's "
    "management certificate (PEM) and name its path here, e.g. trust/prod/bigip-aws-syd.pem (or, "
    "in dev only, insecureSkipVerify: true)"
)
_TRUST_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*\.(pem|crt)")


def _trust_file(value: str) -> str:
    # The f5bigip provider reads this path when the engine configures it, also for a refresh or
    # destroy that does not run the program; providers start in the project folder, so a path
    # relative to it names the committed file on every checkout (README "The refresh model").
    if len(value) > 200 or not _TRUST_FILE.fullmatch(value) or ".." in value.split("/"):
        raise ValueError(
            f"{value!r} is not a certificate file in the project; give the path of a committed "
            "PEM file relative to the project folder (letters, digits, '.', '_', '-' and '/', "
            "ending in .pem or .crt), e.g. trust/prod/bigip-aws-syd.pem"
        )
    return value


TrustFile = Annotated[str, AfterValidator(_trust_file)]


class BigipAccess(Model):
    """How Pulumi (and CIS) reach a BIG-IP's management API, TLS verified."""

    management_address: IPv4Addr
    management_port: Port = 443
    username: str = Field(default="admin", min_length=1, max_length=64)
    password_secret: ConfigKey
    # The BIG-IP's management certificate that CIS and Pulumi trust: a committed PEM file.
    trusted_cert_file: TrustFile | None = None
    # Explicit opt-out of TLS verification; refused outside dev (see StackConfig checks).
    insecure_skip_verify: StrictBool = False

    @model_validator(mode="before")
    @classmethod
    def _moved_trust(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "trustedCertKey" in data:
            raise ValueError(
                "@trustedCertKey: replaced by trustedCertFile; commit the certificate (the value "
                "of that config key) as a PEM file and name its path in trustedCertFile, e.g. "
                'trust/prod/bigip-aws-syd.pem (README "The refresh model")'
            )
        return data

    @model_validator(mode="after")
    def _tls_trust(self) -> BigipAccess:
        if self.trusted_cert_file is None and not self.insecure_skip_verify:
            raise ValueError(_NO_TRUST)
        return self


class Bigip(BigipAccess):
    cis_partition: PartitionName
    pulumi_partition: PartitionName
    vlan: BigipName
    self_ips: Annotated[
        tuple[IPv4Addr, ...], _non_empty("self IPs", "list the BIG-IP self IPs the cluster peers with")
    ]
    asn: Asn
    # The cluster nodes the BIG-IP peers with (calico-bgp units); each inside network.nodeCidr.
    bgp_neighbors: tuple[IPv4Addr, ...] = ()
    cis_version: SemVer = "2.20.4"

    @model_validator(mode="after")
    def _partitions(self) -> Bigip:
        if self.cis_partition == self.pulumi_partition:
            raise ValueError(
                f"@pulumiPartition: {self.pulumi_partition} is also cisPartition; CIS owns its "
                "partition alone, so give Pulumi's objects another one"
            )
        return self


class ForwardProxy(Model):
    address: IPv4Addr
    port: Port


class EgressAllow(Model):
    namespace: DnsLabel
    service_accounts: tuple[DnsLabel, ...] = ()
    # A SNAT address of its own, so the firewall can tell this app apart: no other namespace
    # leaves with it, so it is in no other entry and not in the shared snatAddresses.
    snat_address: IPv4Addr | None = None


class Egress(Model):
    vip: IPv4Addr
    port: Port = 443
    forward_proxy: ForwardProxy
    # The virtual server's SNAT pool, shared by the namespaces without a snatAddress of their own.
    snat_addresses: Annotated[
        tuple[IPv4Addr, ...], _non_empty("SNAT addresses", "list at least one egress address")
    ]
    allow: Annotated[
        tuple[EgressAllow, ...],
        _non_empty("allowed callers", "list the namespaces that may use the egress gateway"),
    ]

    @model_validator(mode="after")
    def _allow_entries(self) -> Egress:
        seen: set[str] = set()
        owners: dict[object, int] = {}
        for i, entry in enumerate(self.allow):
            if entry.namespace in seen:
                raise ValueError(
                    f"@allow[{i}].namespace: {entry.namespace} is listed twice; merge the entries"
                )
            seen.add(entry.namespace)
            address = entry.snat_address
            if address is None:
                continue
            if address in self.snat_addresses:
                raise ValueError(
                    f"@allow[{i}].snatAddress: {address} is also in snatAddresses, the pool every "
                    "namespace without its own address shares; remove it from snatAddresses so only "
                    f"{entry.namespace} leaves with it"
                )
            if address in owners:
                j = owners[address]
                raise ValueError(
                    f"@allow[{i}].snatAddress: {address} is already {self.allow[j].namespace}'s "
                    f"(allow[{j}]); give each namespace an address of its own, or drop snatAddress "
                    "to share snatAddresses"
                )
            owners[address] = i
        return self


# ---------------------------------------------------------------------------------------------
# Apps (ingress)
# ---------------------------------------------------------------------------------------------

AppKind = Literal["http-mesh", "http-nginx", "tcp", "udp"]
_POLICY_PATH = r"^/[A-Za-z][A-Za-z0-9_.-]*/[A-Za-z][A-Za-z0-9_.-]*$"
_WAF_TEMPLATE = r"^POLICY_TEMPLATE_[A-Z0-9_]+$"


class Waf(Model):
    """Either reference an existing policy (`policy`, a full path) or have one created from an
    F5 template in /Common (`template`), attached to the app's CIS VirtualServer."""

    policy: WafPolicyPath | None = None
    template: str | None = Field(default=None, pattern=_WAF_TEMPLATE)
    enforcement_mode: Literal["blocking", "transparent"] = "blocking"

    @model_validator(mode="after")
    def _one_source(self) -> Waf:
        if (self.policy is None) == (self.template is None):
            raise ValueError(
                "set exactly one of policy (an existing policy, e.g. /Common/bookinfo-waf) or "
                "template (create one, e.g. POLICY_TEMPLATE_RAPID_DEPLOYMENT)"
            )
        return self


class App(Model):
    name: AppName
    kind: AppKind
    fqdn: AppFqdn | None = None
    vip: IPv4Addr
    port: Port
    namespace: DnsLabel
    service: ServiceName
    service_port: Port
    # BIG-IP Advanced WAF in front of the app (HTTP apps only); off unless set.
    waf: Waf | None = None

    @model_validator(mode="after")
    def _http_needs_fqdn(self) -> App:
        if self.kind.startswith("http") and self.fqdn is None:
            raise ValueError(f"@fqdn: kind {self.kind} needs an fqdn (the Host the BIG-IP matches)")
        if self.waf is not None and not self.kind.startswith("http"):
            raise ValueError(f"@waf: a WAF policy protects HTTP; kind {self.kind} cannot have one")
        return self


# ---------------------------------------------------------------------------------------------
# Unit
# ---------------------------------------------------------------------------------------------

Cloud = Literal["local", "aws", "azure", "gcp", "onprem"]


class Unit(Model):
    name: UnitName
    cloud: Cloud
    region: DnsLabel
    cluster: ClusterSource
    network: Network
    mesh: Mesh
    nginx: Nginx = Nginx()
    bigip: Bigip | None = None
    egress: Egress | None = None
    apps: tuple[App, ...] = ()
    demo_workloads: StrictBool = False
    observability: Observability = Observability()

    @property
    def uses_calico(self) -> bool:
        return isinstance(self.network.cni, CalicoBgp)

    @property
    def is_local(self) -> bool:
        return isinstance(self.cluster, K3dCluster)


# ---------------------------------------------------------------------------------------------
# GSLB
# ---------------------------------------------------------------------------------------------


class DnsDevice(BigipAccess):
    partition: PartitionName = "cpaas-gslb"
    # The device's own self IP (iQuery, probing). F5 DNS needs a server object for itself in a
    # data center before it probes or talks iQuery; without selfIp that object must exist already.
    self_ip: IPv4Addr | None = None
    location: Location = "dns"
    # Where resolvers send queries for the wide IPs: a UDP and a TCP listener on port 53 per
    # address. Empty: the device's existing listeners answer.
    listeners: tuple[IPv4Addr, ...] = ()

    @model_validator(mode="after")
    def _distinct_listeners(self) -> DnsDevice:
        seen: set[str] = set()
        for i, address in enumerate(self.listeners):
            if str(address) in seen:
                raise ValueError(f"@listeners[{i}]: {address} is listed twice; list each address once")
            seen.add(str(address))
        return self


class Monitor(Model):
    type: Literal["https", "http", "tcp"]
    interval: StrictInt = Field(default=30, ge=1, le=3600)
    timeout: StrictInt = Field(default=91, ge=1, le=86400)
    send: str | None = None
    receive: str | None = None


class TopologyRecord(Model):
    """Answer requests from `ldnsSubnet` with `unit` first (GSLB topology load balancing)."""

    ldns_subnet: IPv4Net
    unit: UnitName
    weight: StrictInt = Field(default=100, ge=1, le=4294967295)


class WideIp(Model):
    app: AppName
    lb_mode: Literal["global-availability", "round-robin", "ratio", "topology"] = "global-availability"
    # Units serving this app, in failover order; empty means every unit that has the app.
    units: tuple[UnitName, ...] = ()
    ratios: Annotated[
        Mapping[UnitName, Annotated[StrictInt, Field(ge=1, le=100)]],
        AfterValidator(MappingProxyType),
        PlainSerializer(dict),
    ] = Field(default_factory=lambda: MappingProxyType({}))
    monitor: Monitor
    last_resort_unit: UnitName | None = None
    topology: tuple[TopologyRecord, ...] = ()


class Gslb(Model):
    dns_device: DnsDevice
    wide_ips: Annotated[
        tuple[WideIp, ...], _non_empty("wide IPs", "add one per app under gslb.wideIps or remove gslb")
    ]
    # Units deployed by their own stacks (one stack per unit): name -> stack whose `gslb` output
    # describes the unit. Their apps are checked when the stack reference resolves.
    unit_stacks: Mapping[UnitName, StackRefName] = Field(default_factory=dict)


class AddressPlan(Model):
    """Where new units get their addresses (tools.replicate): each unit takes one site block
    (nodes, pods, VIPs, BIG-IP addresses) and one service block, and a BIG-IP ASN."""

    site_blocks: IPv4Net
    site_prefix: StrictInt = Field(default=16, ge=8, le=28)
    service_blocks: IPv4Net
    service_prefix: StrictInt = Field(default=16, ge=8, le=28)
    bigip_asns: tuple[Asn, Asn]
    trust_domain_suffix: TrustDomain

    @model_validator(mode="after")
    def _ranges(self) -> AddressPlan:
        if self.site_prefix < self.site_blocks.prefixlen:
            raise ValueError(f"@sitePrefix: /{self.site_prefix} is wider than siteBlocks {self.site_blocks}")
        if self.service_prefix < self.service_blocks.prefixlen:
            raise ValueError(
                f"@servicePrefix: /{self.service_prefix} is wider than serviceBlocks {self.service_blocks}"
            )
        if self.site_blocks.overlaps(self.service_blocks):
            raise ValueError(
                f"@serviceBlocks: {self.service_blocks} overlaps siteBlocks {self.site_blocks}; "
                "service CIDRs need their own range"
            )
        if self.bigip_asns[0] > self.bigip_asns[1]:
            raise ValueError(f"@bigipAsns: {list(self.bigip_asns)} is not a [first, last] range")
        return self


# ---------------------------------------------------------------------------------------------
# Stack
# ---------------------------------------------------------------------------------------------

Environment = Literal["dev", "test", "prod"]


class StackConfig(Model):
    environment: Environment
    # Optional only for a GSLB-only stack (no units of its own).
    pki: Pki | None = None
    units: tuple[Unit, ...] = ()
    gslb: Gslb | None = None
    address_plan: AddressPlan | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> StackConfig:
        problems = list(_check_stack(self))
        if problems:
            raise ValueError("\n".join(f"{path}: {message}" for path, message in problems))
        return self

    def unit(self, name: str) -> Unit:
        for unit in self.units:
            if unit.name == name:
                return unit
        raise KeyError(name)

    def secret_keys(self) -> list[str]:
        """Every config key whose value is a secret, in a stable order."""
        keys: list[str] = []
        if self.pki is not None and isinstance(self.pki.root, ImportedRoot):
            keys.append(self.pki.root.private_key_secret)
        for unit in self.units:
            if isinstance(unit.cluster, KubeconfigCluster):
                keys.append(unit.cluster.kubeconfig_secret)
            if unit.bigip is not None:
                keys.append(unit.bigip.password_secret)
        if self.gslb is not None:
            keys.append(self.gslb.dns_device.password_secret)
        return sorted(set(keys))

    def plain_keys(self) -> list[str]:
        """Config keys holding non-secret deploy-time values (certificates)."""
        keys: list[str] = []
        if self.pki is not None and isinstance(self.pki.root, ImportedRoot):
            keys.append(self.pki.root.cert_key)
        return sorted(set(keys))

    def trust_files(self) -> dict[str, str]:
        """The committed certificate files the stack names: path -> the config path naming it."""
        named: list[tuple[str, BigipAccess]] = [
            (_p("units", i, "bigip", "trustedCertFile"), u.bigip) for i, u in enumerate(self.units) if u.bigip
        ]
        if self.gslb is not None:
            named.append(("gslb.dnsDevice.trustedCertFile", self.gslb.dns_device))
        files: dict[str, str] = {}
        for where, access in named:
            if access.trusted_cert_file is not None and not access.insecure_skip_verify:
                files.setdefault(access.trusted_cert_file, where)
        return files

    def kubeconfig_keys(self) -> list[str]:
        """The secret keys that hold kubeconfigs (set from a file, not typed)."""
        return sorted(
            {u.cluster.kubeconfig_secret for u in self.units if isinstance(u.cluster, KubeconfigCluster)}
        )


# The fields that name config keys, as secret_keys, plain_keys and kubeconfig_keys read them.
_SECRET_FIELDS = ("passwordSecret", "kubeconfigSecret", "privateKeySecret")
_CERT_FIELDS = ("certKey",)


def named_keys(raw: Any) -> tuple[set[str], set[str], set[str]]:
    """(secret, certificate, kubeconfig) keys a raw stack names, read without the models: what
    a stack refers to while parts of it do not validate yet."""
    secrets: set[str] = set()
    certificates: set[str] = set()
    kubeconfigs: set[str] = set()
    pending = [raw]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending += node
        if not isinstance(node, Mapping):
            continue
        for key, value in node.items():
            if isinstance(value, str):
                for fields, names in ((_SECRET_FIELDS, secrets), (_CERT_FIELDS, certificates)):
                    if key in fields:
                        names.add(value)
                if key == "kubeconfigSecret":
                    kubeconfigs.add(value)
            else:
                pending.append(value)
    return secrets, certificates, kubeconfigs


# ---------------------------------------------------------------------------------------------
# Cross-field checks: each yields (config path, message)
# ---------------------------------------------------------------------------------------------

Problem = tuple[str, str]


def _p(*parts: str | int) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _check_stack(stack: StackConfig) -> Iterator[Problem]:
    yield from _check_shape(stack)
    yield from _check_renewal(stack)
    yield from _check_unique_units(stack)
    yield from _check_cidrs(stack)
    yield from _check_partitions(stack)
    yield from _check_vips(stack)
    yield from _check_bgp_devices(stack)
    yield from _check_nodes(stack)
    yield from _check_unit_rules(stack)
    yield from _check_gslb(stack)


def renewal_window_hours(validity_hours: int) -> int:
    """The last third of a certificate's life, in which an update renews it (pki.renewal_hours)."""
    return validity_hours // 3


_WEEK_HOURS = 7 * 24


def _check_renewal(stack: StackConfig) -> Iterator[Problem]:
    # Outside dev, the deploy workflow's weekly run must land inside every renewal window.
    if stack.pki is None or stack.environment == "dev":
        return
    for field in ("intermediateValidityDays", "leafValidityDays"):
        days: int = getattr(stack.pki, _snake(field))
        window = renewal_window_hours(days * 24)
        if window < _WEEK_HOURS:
            yield (
                _p("pki", field),
                f"{days} days leaves a renewal window of {window // 24} days (the last third of "
                "the life), shorter than the week between scheduled deploys; use 21 or more",
            )


def _check_shape(stack: StackConfig) -> Iterator[Problem]:
    remote = stack.gslb.unit_stacks if stack.gslb else {}
    if not stack.units and not remote:
        yield ("units", "no units; a stack needs at least one unit under cpaas:units")
    if stack.units and stack.pki is None:
        yield ("pki", "required key is missing; a stack with units needs the org PKI")
    for name in remote:
        if any(u.name == name for u in stack.units):
            yield (
                _p("gslb", "unitStacks", name),
                f"{name} is also a unit of this stack; a unit is deployed by one stack only",
            )
    if stack.address_plan is not None:
        yield from _check_address_plan(stack, stack.address_plan)


def _check_address_plan(stack: StackConfig, plan: AddressPlan) -> Iterator[Problem]:
    for i, unit in enumerate(stack.units):
        for field in ("podCidr", "nodeCidr"):
            net: IPv4Network = getattr(unit.network, _snake(field))
            if not net.subnet_of(plan.site_blocks):
                yield (
                    _p("units", i, "network", field),
                    f"{net} is outside addressPlan.siteBlocks {plan.site_blocks}; move it inside "
                    "or widen the plan",
                )
        if not unit.network.service_cidr.subnet_of(plan.service_blocks):
            yield (
                _p("units", i, "network", "serviceCidr"),
                f"{unit.network.service_cidr} is outside addressPlan.serviceBlocks "
                f"{plan.service_blocks}; move it inside or widen the plan",
            )


def _check_unique_units(stack: StackConfig) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for i, unit in enumerate(stack.units):
        if unit.name in first:
            yield (
                _p("units", i, "name"),
                f"{unit.name} duplicates units[{first[unit.name]}]; unit names must be unique "
                "(they key every resource), rename one",
            )
        else:
            first[unit.name] = i


def _check_cidrs(stack: StackConfig) -> Iterator[Problem]:
    # Across units only; _check_unit_network reports overlaps inside one unit.
    seen: list[tuple[IPv4Network, str, str]] = []
    for i, unit in enumerate(stack.units):
        mine: list[tuple[IPv4Network, str, str]] = []
        for field in ("podCidr", "serviceCidr", "nodeCidr"):
            net: IPv4Network = getattr(unit.network, _snake(field))
            where = _p("units", i, "network", field)
            for other, other_where, owner in seen:
                if net.overlaps(other):
                    yield (
                        where,
                        f"{net} overlaps {other_where} ({owner}: {other}); use a disjoint range",
                    )
                    break
            mine.append((net, where, unit.name))
        seen.extend(mine)


def _check_partitions(stack: StackConfig) -> Iterator[Problem]:
    owners: dict[str, str] = {}
    if stack.gslb is not None:
        owners[stack.gslb.dns_device.partition.lower()] = "gslb.dnsDevice.partition"
    for i, unit in enumerate(stack.units):
        if unit.bigip is None:
            continue
        for field in ("cisPartition", "pulumiPartition"):
            name = getattr(unit.bigip, _snake(field))
            where = _p("units", i, "bigip", field)
            if name.lower() in owners:
                yield (
                    where,
                    f"{name} is already used by {owners[name.lower()]}; BIG-IP partitions must be "
                    "unique across the stack, e.g. prefix them with the unit name",
                )
            else:
                owners[name.lower()] = where


# A listener on a BIG-IP: (device, owning partition, config path, address, port, protocol).
Listener = tuple[str, str, str, IPv4Address, int, str]


def _listeners(stack: StackConfig) -> Iterator[Listener]:
    for i, unit in enumerate(stack.units):
        if unit.bigip is None:
            continue
        device = str(unit.bigip.management_address)
        for j, app in enumerate(unit.apps):
            proto = "udp" if app.kind == "udp" else "tcp"
            yield device, unit.bigip.cis_partition, _p("units", i, "apps", j, "vip"), app.vip, app.port, proto
        if unit.egress is not None:
            where = _p("units", i, "egress", "vip")
            yield device, unit.bigip.pulumi_partition, where, unit.egress.vip, unit.egress.port, "tcp"
    if stack.gslb is not None:
        dns = stack.gslb.dns_device
        for k, address in enumerate(dns.listeners):
            for proto in ("udp", "tcp"):
                where = _p("gslb", "dnsDevice", "listeners", k)
                yield str(dns.management_address), dns.partition, where, address, 53, proto


def _check_vips(stack: StackConfig) -> Iterator[Problem]:
    # Per BIG-IP (management address): a virtual address belongs to one partition, so CIS's and
    # Pulumi's virtual servers (and other units' on a shared device) never share one, on any
    # port; within a partition each address:port/protocol is used once.
    owners: dict[tuple[str, str], tuple[str, str]] = {}
    taken: dict[tuple[str, str, int, str], str] = {}
    refused: set[str] = set()  # a DNS listener is two listeners (UDP, TCP) at one path
    for device, partition, where, vip, port, proto in _listeners(stack):
        owner, first = owners.setdefault((device, str(vip)), (partition, where))
        if owner != partition:
            if where in refused:
                continue
            refused.add(where)
            yield (
                where,
                f"{vip} is already a virtual address of partition {owner} ({first}) on BIG-IP "
                f"{device}; a virtual address belongs to one partition, give this virtual server "
                "another address",
            )
            continue
        key = (device, str(vip), port, proto)
        if key in taken:
            yield (
                where,
                f"{vip}:{port}/{proto} is already used by {taken[key]} on BIG-IP {device}; "
                "give each virtual server its own address or port",
            )
        else:
            taken[key] = where


def _check_bgp_devices(stack: StackConfig) -> Iterator[Problem]:
    # Each calico-bgp unit creates its own BGP instance in route domain 0 of its BIG-IP.
    first: dict[str, tuple[int, str]] = {}
    for i, unit in enumerate(stack.units):
        if unit.bigip is None or not unit.uses_calico:
            continue
        device = str(unit.bigip.management_address)
        if device in first:
            k, name = first[device]
            yield (
                _p("units", i, "bigip", "managementAddress"),
                f"{device} is also the BIG-IP of units[{k}] ({name}), and both units peer BGP with "
                "Calico; a BIG-IP runs one BGP instance per route domain and cpaas does not "
                "support shared BIG-IPs yet, give each calico-bgp unit its own BIG-IP",
            )
        else:
            first[device] = (i, unit.name)


def _check_nodes(stack: StackConfig) -> Iterator[Problem]:
    # A node address belongs to one partition: CIS makes nodes of pod IPs (pool members) in its
    # partition, Pulumi one of the forward proxy in its own.
    proxies: dict[tuple[str, str], tuple[str, str]] = {}
    for i, unit in enumerate(stack.units):
        if unit.bigip is None or unit.egress is None:
            continue
        device, address = str(unit.bigip.management_address), unit.egress.forward_proxy.address
        where = _p("units", i, "egress", "forwardProxy", "address")
        in_pods = _pod_owner(stack, device, address)
        partition, first = proxies.setdefault((device, str(address)), (unit.bigip.pulumi_partition, where))
        if in_pods is not None:
            pod_where, net, cis = in_pods
            yield (
                where,
                f"{address} is inside {pod_where} {net}, whose pod IPs CIS makes nodes of in "
                f"partition {cis} on BIG-IP {device}; a node address belongs to one partition, so "
                "the forward proxy needs an address outside the pod CIDRs",
            )
        elif first != where:
            yield (
                where,
                f"{address} is already a node of partition {partition} ({first}) on BIG-IP "
                f"{device}; a node address belongs to one partition, use another forward proxy "
                "address or another BIG-IP",
            )


def _pod_owner(stack: StackConfig, device: str, address: IPv4Address) -> tuple[str, IPv4Network, str] | None:
    """(config path, pod CIDR, CIS partition) of the unit on `device` whose pods hold `address`."""
    for i, unit in enumerate(stack.units):
        bigip = unit.bigip
        if bigip is not None and str(bigip.management_address) == device and address in unit.network.pod_cidr:
            return _p("units", i, "network", "podCidr"), unit.network.pod_cidr, bigip.cis_partition
    return None


def _check_unit_rules(stack: StackConfig) -> Iterator[Problem]:
    for i, unit in enumerate(stack.units):
        yield from _check_one_unit(stack, i, unit)


def _check_one_unit(stack: StackConfig, i: int, unit: Unit) -> Iterator[Problem]:
    yield from _check_unit_network(i, unit)
    if unit.is_local and unit.cloud != "local":
        yield (
            _p("units", i, "cloud"),
            f"{unit.cloud} with a k3d cluster; k3d clusters are local, set cloud: local",
        )
    if unit.bigip is not None and unit.bigip.insecure_skip_verify and stack.environment != "dev":
        yield (
            _p("units", i, "bigip", "insecureSkipVerify"),
            f"true in a {stack.environment} stack; TLS verification may only be skipped in dev, "
            "set trustedCertFile instead",
        )
    if unit.egress is not None and unit.bigip is None:
        yield (
            _p("units", i, "egress"),
            "an egress gateway needs a bigip; add units[].bigip or remove egress",
        )
    if unit.egress is not None and unit.bigip is not None and unit.egress.vip in unit.bigip.self_ips:
        yield (
            _p("units", i, "egress", "vip"),
            f"{unit.egress.vip} is a BIG-IP self IP; virtual servers need their own address",
        )
    yield from _check_apps(i, unit)
    yield from _check_egress_allow(i, unit)


def _check_unit_network(i: int, unit: Unit) -> Iterator[Problem]:
    net = unit.network
    pairs = (("podCidr", net.pod_cidr), ("serviceCidr", net.service_cidr), ("nodeCidr", net.node_cidr))
    for a in range(len(pairs)):
        for b in range(a + 1, len(pairs)):
            if pairs[a][1].overlaps(pairs[b][1]):
                yield (
                    _p("units", i, "network", pairs[b][0]),
                    f"{pairs[b][1]} overlaps {pairs[a][0]} {pairs[a][1]} of the same unit; "
                    "use a disjoint range",
                )
    if not isinstance(net.cni, CalicoBgp):
        return
    if net.pod_cidr.prefixlen > net.cni.block_size:
        yield (
            _p("units", i, "network", "cni", "blockSize"),
            f"blocks of /{net.cni.block_size} are bigger than the pod CIDR {net.pod_cidr}; "
            f"use blockSize {net.pod_cidr.prefixlen} or more, or widen podCidr",
        )
    if unit.bigip is None and not unit.is_local:
        yield (
            _p("units", i, "network", "cni"),
            "calico-bgp needs a bigip to peer with; add units[].bigip or use cloud-native",
        )
    yield from _check_bgp_neighbors(i, unit)
    if unit.bigip is not None and unit.bigip.asn == net.cni.asn:
        yield (
            _p("units", i, "bigip", "asn"),
            f"{unit.bigip.asn} equals the cluster's ASN; the Calico peering is eBGP, "
            "so give the BIG-IP its own private ASN (64512-65534)",
        )


def _check_bgp_neighbors(i: int, unit: Unit) -> Iterator[Problem]:
    if unit.bigip is not None and not unit.bigip.bgp_neighbors:
        yield (
            _p("units", i, "bigip", "bgpNeighbors"),
            "empty for a calico-bgp unit; list the node IPs the BIG-IP peers with",
        )
    for k, ip in enumerate(unit.bigip.bgp_neighbors if unit.bigip else ()):
        if ip not in unit.network.node_cidr:
            yield (
                _p("units", i, "bigip", "bgpNeighbors", k),
                f"{ip} is outside nodeCidr {unit.network.node_cidr}; BGP neighbours are cluster nodes",
            )


def _check_apps(i: int, unit: Unit) -> Iterator[Problem]:
    names: dict[str, int] = {}
    self_ips = unit.bigip.self_ips if unit.bigip else ()
    for j, app in enumerate(unit.apps):
        if app.name in names:
            yield (
                _p("units", i, "apps", j, "name"),
                f"{app.name} duplicates apps[{names[app.name]}]; app names are unique per unit",
            )
        names.setdefault(app.name, j)
        yield from _check_app_kind(i, j, unit, app)
        if app.vip in self_ips:
            yield (
                _p("units", i, "apps", j, "vip"),
                f"{app.vip} is a BIG-IP self IP; virtual servers need their own address",
            )


def _check_app_kind(i: int, j: int, unit: Unit, app: App) -> Iterator[Problem]:
    injected = set(unit.mesh.injected_namespaces)
    if app.kind == "http-mesh" and app.namespace not in injected:
        yield (
            _p("units", i, "apps", j, "namespace"),
            f"{app.namespace} is not in mesh.injectedNamespaces; an http-mesh app must run "
            "in the mesh, add the namespace there or use kind http-nginx",
        )
    if app.kind in ("tcp", "udp") and app.namespace in injected:
        yield (
            _p("units", i, "apps", j, "namespace"),
            f"{app.namespace} is a mesh namespace with STRICT mTLS; the BIG-IP sends {app.kind} "
            "straight to the pods without it, so put L4 apps in a non-mesh namespace",
        )
    if app.kind != "http-nginx":
        return
    if not unit.nginx.enabled:
        yield (
            _p("units", i, "apps", j, "kind"),
            "http-nginx while nginx.enabled is false; enable NGINX or change the kind",
        )
    if app.namespace in injected:
        yield (
            _p("units", i, "apps", j, "namespace"),
            f"{app.namespace} is a mesh namespace; http-nginx apps serve non-mesh "
            "namespaces, use kind http-mesh",
        )
    elif unit.nginx.namespaces and app.namespace not in unit.nginx.namespaces:
        yield (
            _p("units", i, "apps", j, "namespace"),
            f"{app.namespace} is not in nginx.namespaces, the namespaces NGINX watches; add it there",
        )


def _check_egress_allow(i: int, unit: Unit) -> Iterator[Problem]:
    if unit.egress is None:
        return
    injected = set(unit.mesh.injected_namespaces)
    for k, entry in enumerate(unit.egress.allow):
        if entry.namespace not in injected:
            yield (
                _p("units", i, "egress", "allow", k, "namespace"),
                f"{entry.namespace} is not in mesh.injectedNamespaces; only mesh workloads "
                "carry a SPIFFE identity, add the namespace there",
            )


def _check_gslb(stack: StackConfig) -> Iterator[Problem]:
    if stack.gslb is None:
        return
    if stack.gslb.dns_device.insecure_skip_verify and stack.environment != "dev":
        yield (
            _p("gslb", "dnsDevice", "insecureSkipVerify"),
            f"true in a {stack.environment} stack; TLS verification may only be skipped in dev, "
            "set trustedCertFile instead",
        )
    seen_apps: dict[str, int] = {}
    for w, wide in enumerate(stack.gslb.wide_ips):
        if wide.app in seen_apps:
            yield (
                _p("gslb", "wideIps", w, "app"),
                f"{wide.app} already has wideIps[{seen_apps[wide.app]}]; one wide IP per app",
            )
        seen_apps.setdefault(wide.app, w)
        yield from _check_wide_ip_units(stack, w, wide)
        yield from _check_wide_ip_app(stack, w, wide)


def _check_wide_ip_units(stack: StackConfig, w: int, wide: WideIp) -> Iterator[Problem]:
    by_name: set[str] = {u.name for u in stack.units} | set(stack.gslb.unit_stacks if stack.gslb else {})
    known = ", ".join(sorted(by_name))
    base = ("gslb", "wideIps", w)
    named = [(_p(*base, "units", k), name) for k, name in enumerate(wide.units)]
    named += [(_p(*base, "ratios", name), name) for name in wide.ratios]
    if wide.last_resort_unit is not None:
        named.append((_p(*base, "lastResortUnit"), wide.last_resort_unit))
    named += [(_p(*base, "topology", k, "unit"), r.unit) for k, r in enumerate(wide.topology)]
    for path, name in named:
        if name not in by_name:
            yield (path, f"{name} is not a unit of this stack; known units: {known}")
    if wide.lb_mode == "ratio" and not wide.ratios:
        yield (
            _p(*base, "ratios"),
            "lbMode ratio needs ratios per unit, e.g. {aws-syd: 2, azure-mel: 1}",
        )
    if wide.lb_mode == "topology" and not wide.topology:
        yield (
            _p(*base, "topology"),
            "lbMode topology needs topology records, e.g. [{ldnsSubnet: 10.0.0.0/8, unit: onprem-syd}]",
        )


def _check_wide_ip_app(stack: StackConfig, w: int, wide: WideIp) -> Iterator[Problem]:
    where = _p("gslb", "wideIps", w, "app")
    serving = [u for u in stack.units if any(a.name == wide.app for a in u.apps)]
    if stack.gslb is not None and stack.gslb.unit_stacks:
        return  # units of other stacks: their apps are checked when their outputs resolve
    if not serving:
        yield (where, f"{wide.app} is not an app of any unit; add it to units[].apps or remove the wide IP")
        return
    serving_names = {u.name for u in serving}
    all_names = {u.name for u in stack.units}
    named = [(_p("gslb", "wideIps", w, "units", k), n) for k, n in enumerate(wide.units)]
    named += [(_p("gslb", "wideIps", w, "ratios", n), n) for n in wide.ratios]
    if wide.last_resort_unit is not None:
        named.append((_p("gslb", "wideIps", w, "lastResortUnit"), wide.last_resort_unit))
    named += [(_p("gslb", "wideIps", w, "topology", k, "unit"), r.unit) for k, r in enumerate(wide.topology)]
    for where_unit, name in named:
        if name in all_names and name not in serving_names:
            yield (
                where_unit,
                f"{name} does not serve {wide.app}; add the app to that unit or drop it here",
            )
    apps = [(u, a) for u in serving for a in u.apps if a.name == wide.app]
    missing = [u.name for u, a in apps if a.fqdn is None]
    fqdns = sorted({str(a.fqdn) for _, a in apps if a.fqdn})
    if missing:
        yield (
            where,
            f"{wide.app} has no fqdn in unit(s) {', '.join(missing)}; a wide IP answers for "
            "the app's FQDN, set apps[].fqdn there",
        )
    elif len(fqdns) > 1:
        yield (
            where,
            f"{wide.app} has different FQDNs across units ({', '.join(fqdns)}); a wide IP "
            "needs one, give the app the same fqdn in every unit",
        )
    for u in serving:
        if u.bigip is None:
            yield (
                where,
                f"{wide.app} is served by unit {u.name}, which has no bigip; GSLB needs a BIG-IP "
                "virtual server per unit",
            )


def _snake(camel: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)


# ---------------------------------------------------------------------------------------------
# Parsing and error formatting
# ---------------------------------------------------------------------------------------------


class ConfigError(Exception):
    """A stack config that cannot be used; `lines` are 'cpaas:<path>: <value and message>'."""

    def __init__(self, lines: list[str], partial: bool = False):
        super().__init__("\n".join(lines))
        self.lines = lines
        # The stack-wide cross-field rules did not run: they need every field to parse.
        self.partial = partial


# Discriminated unions put the tag in the error location; drop it where it follows the union field.
_UNION_FIELDS = {
    "root": "generated, imported",
    "cluster": "k3d, kubeconfig, stackReference",
    "cni": "calico-bgp, cloud-native",
}


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _loc_path(loc: Iterable[Any]) -> str:
    parts: list[str | int] = []
    previous: Any = None
    for part in loc:
        tagged = isinstance(part, str) and previous in _UNION_FIELDS and part != previous
        internal = isinstance(part, str) and (part.startswith("function-") or part == "[key]")
        if not tagged and not internal:
            # A key the user wrote oddly (spaces, newlines) is quoted so the line stays one line.
            odd = isinstance(part, str) and not _PLAIN_KEY.fullmatch(part)
            long = isinstance(part, str) and len(part) > 60
            parts.append(json.dumps(part[:60] + "..." if long else part) if odd or long else part)
        previous = part
    return _p(*parts) if parts else ""


def shown(value: Any) -> str:
    """A config value for a message, as the stack file writes it; long text cut to 60
    characters with its size (a pasted 5 MB value is not echoed back)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    if len(text) <= 100:
        return text
    size = len(value) if isinstance(value, str) else len(text)
    return f"{text[:60]}... ({f'{size / 1e6:.1f} MB' if size >= 1_000_000 else f'{size} characters'})"


_RANGES = {
    "asn": "an ASN is 1-4294967295 (private: 64512-65534 or 4200000000-4294967294)",
    "port": "ports are 1-65535",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "below the minimum {}; use {} or more"),
    "greater_than": ("gt", "not above {}; use more than {}"),
    "less_than_equal": ("le", "above the maximum {}; use {} or less"),
    "less_than": ("lt", "not below {}; use less than {}"),
}
_LIST = "is not a list; write a YAML list, e.g. [a, b] or one '- item' per line"
_MAPPING = "is not a mapping; write its keys below it (see the README's config reference)"
_WHOLE = "is not a whole number; write digits without quotes, e.g. 443"
_NUMBER = "is not a number; write digits without quotes, e.g. 1.5"
# Pydantic's error types, in words: what is allowed and the fix ({v}: the value, then ctx keys).
_PHRASES = {
    "string_type": "is not text; write it as a string (in quotes if YAML reads it otherwise)",
    "string_unicode": "is not valid text; write it as a string",
    "int_type": _WHOLE,
    "int_parsing": _WHOLE,
    "int_from_float": _WHOLE,
    "bool_type": "is not true or false; write true or false without quotes",
    "bool_parsing": "is not true or false; write true or false without quotes",
    "float_type": _NUMBER,
    "float_parsing": _NUMBER,
    "finite_number": "is not a finite number; write digits, e.g. 1.5",
    "tuple_type": _LIST,
    "list_type": _LIST,
    "set_type": _LIST,
    "frozen_set_type": _LIST,
    "iterable_type": _LIST,
    "model_type": _MAPPING,
    "model_attributes_type": _MAPPING,
    "dict_type": _MAPPING,
    "mapping_type": _MAPPING,
    "literal_error": "is not allowed; use {expected}",
    "string_too_short": "is too short; write at least {min_length} character(s)",
    "string_too_long": "is too long; write at most {max_length} characters",
    "too_short": "has too few items; give at least {min_length}",
    "too_long": "has too many items; give at most {max_length}",
    "ip_v4_address": "is not an IPv4 address; write four numbers 0-255 joined by '.', e.g. 10.0.0.1",
}
_PATTERN_HINTS = {
    _DURATION: "a whole number of hours, days or weeks, e.g. 72h or 15d",
    _QUANTITY: "a whole number of Mi, Gi or Ti, e.g. 50Gi",
    _POLICY_PATH: "a full policy path /Partition/name, e.g. /Common/bookinfo-waf",
    _WAF_TEMPLATE: "an F5 policy template name, e.g. POLICY_TEMPLATE_RAPID_DEPLOYMENT",
}


def _describe_tag(err: Mapping[str, Any], field: str) -> str:
    ctx = err.get("ctx", {})
    kinds = _UNION_FIELDS.get(field, "the documented kinds")
    if err["type"] == "union_tag_invalid":
        return f"{shown(ctx.get('tag'))} is not a known kind; use one of {kinds}"
    key = str(ctx.get("discriminator", "")).strip("'")
    return f"required key {key} is missing; use one of {kinds}"


def _describe_bound(err: Mapping[str, Any], field: str) -> str:
    value = shown(err.get("input"))
    for key, text in _RANGES.items():
        if field.endswith(key):
            return f"{value} is out of range; {text}"
    name, phrase = _BOUNDS[err["type"]]
    bound = err.get("ctx", {}).get(name)
    return f"{value} is {phrase.format(bound, bound)}"


def explain(err: Mapping[str, Any], path: str = "") -> str:
    """One pydantic error as what is wrong, what is allowed and the fix (never pydantic's words)."""
    kind = err["type"]
    value = err.get("input")
    field = path.rsplit(".", 1)[-1].lower()
    if kind == "extra_forbidden":
        return "unknown key; remove it or check its spelling against the README's config reference"
    if kind == "missing":
        return "required key is missing; add it"
    if kind.startswith("union_tag_"):
        return _describe_tag(err, field)
    if kind in ("value_error", "assertion_error"):
        return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "ip_v4_network" and isinstance(value, str):
        try:
            fixed = IPv4Network(value, strict=False)
        except ValueError:
            return f"{shown(value)} is not an IPv4 CIDR; use e.g. 10.42.0.0/16 (prefix 0-32)"
        return f"{value} has host bits set; use {fixed}"
    if kind == "ip_v4_network":
        return f"{shown(value)} is not an IPv4 CIDR; use e.g. 10.42.0.0/16 (prefix 0-32)"
    if kind in _BOUNDS:
        return _describe_bound(err, field)
    if kind == "string_pattern_mismatch":
        pattern = str(err.get("ctx", {}).get("pattern", ""))
        hint = _PATTERN_HINTS.get(pattern, f"text matching {pattern}")
        return f"{shown(value)} is not allowed here; write {hint}"
    phrase = _PHRASES.get(kind, "is not allowed here; see the README's config reference for this key")
    return f"{shown(value)} {phrase.format_map(dict(err.get('ctx') or {}))}"


def format_validation_error(exc: ValidationError) -> list[str]:
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        path = _loc_path(err["loc"])
        message = explain(err, path)
        value = err.get("input")
        if isinstance(value, str) and len(value) > 100:
            # Rules quote the value they refuse; a pasted blob is cut to its start and size.
            message = message.replace(repr(value), shown(value)).replace(value, shown(value))
        if message.startswith("@"):
            # A model-level rule that names the field it is about, relative to the model.
            relative, _, message = message[1:].partition(": ")
            path = (
                f"{path}{relative}" if relative.startswith("[") else _p(path, relative) if path else relative
            )
        if path:
            lines.append(f"{CONFIG_NAMESPACE}:{path}: {message}")
        else:
            # Stack-level cross-checks already start each line with their own path.
            lines.extend(f"{CONFIG_NAMESPACE}:{line}" for line in message.splitlines())
    return lines


def config_keys() -> list[str]:
    """The structured `cpaas:` keys a stack file may hold, in camelCase."""
    return [field.alias or name for name, field in StackConfig.model_fields.items()]


def parse_stack(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the stack's `cpaas:` keys (without the prefix). Raises ConfigError."""
    try:
        return StackConfig.model_validate(dict(raw))
    except ValidationError as exc:
        # The stack-wide rules report with an empty location; without them, they did not run.
        partial = all(err["loc"] for err in exc.errors(include_url=False))
        raise ConfigError(format_validation_error(exc), partial) from None
