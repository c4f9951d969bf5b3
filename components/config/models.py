"""The stack file as strict, frozen models: one `cpaas:<key>` of the stack file per StackConfig field.

Keys are camelCase in YAML and snake_case in Python; unknown keys are refused and values are typed
strictly (`true` is not a port, an address is text). Each model lists its cross-field rules in
`checked_by` (components.config.rules). Every field's description and default is what
docs/config.md shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components import versions
from components.config import rules
from components.config.types import (
    DURATION,
    QUANTITY,
    WAF_TEMPLATE,
    AccessPath,
    AppFqdn,
    AppName,
    Asn,
    BigipName,
    ClaimName,
    ConfigKey,
    DnsLabel,
    DnValue,
    Fqdn,
    HttpsUrl,
    ImageRef,
    IPv4Addr,
    IPv4Net,
    K8sMinor,
    LabelKey,
    LabelValue,
    Location,
    NoProxyEntry,
    PartitionName,
    Port,
    ProxyHost,
    SemVer,
    ServiceName,
    StackRefName,
    TrustDomain,
    TrustFile,
    UnitName,
    WafPolicyPath,
    non_empty,
)


class Model(BaseModel):
    """Base of every config model: camelCase keys, unknown keys refused, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        strict=False,
    )
    # Rules over the parsed model, in order; a model reports the first problem, the stack all.
    checked_by: ClassVar[tuple[rules.Rule, ...]] = ()
    reports_every_problem: ClassVar[bool] = False

    @model_validator(mode="after")
    def _rules(self) -> Self:
        return rules.enforce(self, self.checked_by, every=self.reports_every_problem)


# ---------------------------------------------------------------------------------------------
# PKI
# ---------------------------------------------------------------------------------------------

KeyAlgorithm = Literal["ECDSA-P256", "ECDSA-P384", "RSA-2048", "RSA-3072", "RSA-4096"]


class GeneratedRoot(Model):
    """The org root is generated and kept (encrypted) in the stack state; dev and labs."""

    source: Literal["generated"] = Field(description="Selects this kind of root.")
    common_name: str = Field(min_length=1, max_length=64, description="The root certificate's common name.")
    validity_days: StrictInt = Field(
        default=3650, ge=30, le=7300, description="The root certificate's lifetime in days."
    )


class ImportedRoot(Model):
    """The org root's certificate and key come from config keys (the bank's offline CA)."""

    source: Literal["imported"] = Field(description="Selects this kind of root.")
    cert_key: ConfigKey = Field(
        description="The config key holding the root certificate (PEM): a plain deploy-time value."
    )
    private_key_secret: ConfigKey = Field(
        description="The secret config key holding the root's private key (PEM)."
    )


class Pki(Model):
    """The org PKI: a root, one intermediate per unit (Istio's cacerts) and leaves for what a
    BIG-IP presents."""

    organization: DnValue = Field(
        min_length=1, max_length=64, description="The subject organisation of every certificate."
    )
    key_algorithm: KeyAlgorithm = Field(
        default="ECDSA-P256", description="The algorithm of every key the PKI generates."
    )
    root: Annotated[GeneratedRoot | ImportedRoot, Field(discriminator="source")] = Field(
        description="The org root: generated in the state, or imported from config keys."
    )
    intermediate_validity_days: StrictInt = Field(
        default=1095, ge=7, le=3650, description="Each unit intermediate's lifetime in days."
    )
    leaf_validity_days: StrictInt = Field(
        default=365, ge=1, le=825, description="Each leaf certificate's lifetime in days."
    )

    checked_by = (rules.pki_lifetimes,)


# ---------------------------------------------------------------------------------------------
# Cluster sources
# ---------------------------------------------------------------------------------------------

_KUBERNETES_VERSION = "The cluster's Kubernetes minor version, MAJOR.MINOR."


class K3dCluster(Model):
    """A local k3d cluster made and removed by pulumi-command (dev). k3d makes its own Docker
    network on `network.nodeCidr` and removes it with the cluster."""

    source: Literal["k3d"] = Field(description="Selects this kind of cluster.")
    image: ImageRef = Field(default=versions.K3S_IMAGE, description="The k3s node image.")
    kubernetes_version: K8sMinor = Field(
        default=versions.K3S_KUBERNETES_VERSION, description=_KUBERNETES_VERSION
    )
    servers: StrictInt = Field(default=1, ge=1, le=5, description="Control-plane nodes.")
    agents: StrictInt = Field(default=3, ge=0, le=10, description="Worker nodes.")
    api_port: Port = Field(default=6550, description="The host port of the Kubernetes API.")
    tls_sans: tuple[str, ...] = Field(
        default=("127.0.0.1", "localhost"), description="Extra names in the API server's certificate."
    )
    docker_network: DnsLabel | None = Field(
        default=None,
        description="An existing Docker network to join instead of making one; k3d leaves its "
        "subnet as it is.",
    )


class KubeconfigCluster(Model):
    """An existing cluster whose kubeconfig sits in a secret config key (EKS, AKS, GKE, any)."""

    source: Literal["kubeconfig"] = Field(description="Selects this kind of cluster.")
    kubeconfig_secret: ConfigKey = Field(
        description="The secret config key holding the kubeconfig (set it from the file)."
    )
    kubernetes_version: K8sMinor = Field(description=_KUBERNETES_VERSION)
    context: str | None = Field(default=None, description="The kubeconfig context; unset: its current one.")
    cis_kubeconfig_secret: ConfigKey | None = Field(
        default=None,
        description="When another unit's CIS reads this cluster (multi-cluster apps): the secret config "
        "key holding a kubeconfig of a read-only ServiceAccount of this cluster, with a token, for CIS "
        "(docs/bigip.md). Never the deployer's own kubeconfig.",
    )


class StackReferenceCluster(Model):
    """An existing cluster whose kubeconfig is an output of another stack (made by a cluster team)."""

    source: Literal["stackReference"] = Field(description="Selects this kind of cluster.")
    stack: StackRefName = Field(description="The stack whose output holds the kubeconfig.")
    output: str = Field(
        default="kubeconfig", min_length=1, max_length=100, description="The name of that output."
    )
    kubernetes_version: K8sMinor = Field(description=_KUBERNETES_VERSION)


ClusterSource = Annotated[
    K3dCluster | KubeconfigCluster | StackReferenceCluster, Field(discriminator="source")
]


# ---------------------------------------------------------------------------------------------
# Network and CNI
# ---------------------------------------------------------------------------------------------


class CalicoBgp(Model):
    """Calico as the CNI, peering BGP with the unit's BIG-IP so it routes to pod IPs."""

    type: Literal["calico-bgp"] = Field(description="Selects this CNI.")
    asn: Asn = Field(description="The cluster's ASN; the BIG-IP peers with it over eBGP.")
    encapsulation: Literal["None", "IPIP", "IPIPCrossSubnet", "VXLAN", "VXLANCrossSubnet"] = Field(
        default="None", description="The IP pool's encapsulation between nodes."
    )
    block_size: StrictInt = Field(
        default=26, ge=20, le=32, description="The prefix length of the blocks Calico hands to nodes."
    )
    node_to_node_mesh: StrictBool = Field(default=True, description="Full-mesh BGP between the nodes.")
    nat_outgoing: StrictBool = Field(default=True, description="SNAT pod traffic that leaves the pod CIDR.")


class CloudNativeCni(Model):
    """The cloud's VPC-native CNI (EKS VPC CNI, Azure CNI, GKE VPC-native): pods are routable."""

    type: Literal["cloud-native"] = Field(description="Selects this CNI.")


Cni = Annotated[CalicoBgp | CloudNativeCni, Field(discriminator="type")]


class Network(Model):
    """The unit's address ranges, disjoint within the unit and across all units, and its CNI."""

    pod_cidr: IPv4Net = Field(description="The pods' addresses.")
    service_cidr: IPv4Net = Field(description="The Services' cluster IPs.")
    node_cidr: IPv4Net = Field(description="The nodes' addresses (the BGP neighbours live here).")
    cni: Cni = Field(description="The CNI: Calico peering BGP with the BIG-IP, or the cloud's own.")


# ---------------------------------------------------------------------------------------------
# Mesh, NGINX
# ---------------------------------------------------------------------------------------------


class Tracing(Model):
    """Where Istio's proxies send spans."""

    enabled: StrictBool = Field(
        default=False,
        description="Send spans; unset, it follows units[].observability.enabled (an explicit value wins).",
    )
    provider: Literal["zipkin", "opentelemetry"] = Field(default="zipkin", description="The span protocol.")
    service: Fqdn = Field(
        default="jaeger-collector.observability.svc.cluster.local", description="The collector's host."
    )
    port: Port = Field(default=9411, description="The collector's port.")
    sampling_percent: float = Field(
        default=1.0, ge=0.0, le=100.0, description="The share of requests traced, in percent."
    )


class JwksProxy(Model):
    """A forward proxy istiod sends its HTTPS requests through (HTTP CONNECT)."""

    address: ProxyHost = Field(description="Its address or host name.")
    port: Port = Field(description="Its port.")

    @property
    def url(self) -> str:
        """As Go's HTTPS_PROXY takes it."""
        return f"http://{self.address}:{self.port}"


class JwksFetch(Model):
    """How istiod fetches the signing keys (jwksUri) of the apps' token issuers. istiod fetches
    them itself, from istio-system without a sidecar (so not through the BIG-IP egress), and a
    failed fetch refuses every token of that issuer (README "Access: authentication and
    authorisation")."""

    proxy: JwksProxy | None = Field(
        default=None,
        description="The forward proxy istiod reaches the issuers through (its HTTPS_PROXY), e.g. "
        "{address: 10.10.18.10, port: 3128}; unset: istiod connects directly.",
    )
    no_proxy: tuple[NoProxyEntry, ...] = Field(
        default=(),
        description="Hosts reached directly besides the cluster's own (its CIDRs, .svc, "
        ".cluster.local and localhost are always direct).",
    )
    trusted_ca_file: TrustFile | None = Field(
        default=None,
        description="A committed PEM file with the CA(s) that sign an internal issuer's "
        "certificate, trusted by istiod on top of the system roots (jwksResolverExtraRootCA); its "
        "path relative to the project.",
    )


class Mesh(Model):
    """Istio on the org intermediate CA, STRICT mTLS in the injected namespaces."""

    istio_version: SemVer = Field(default=versions.ISTIO_VERSION, description="The pinned Istio version.")
    trust_domain: TrustDomain = Field(description="The mesh's SPIFFE trust domain.")
    injected_namespaces: tuple[DnsLabel, ...] = Field(
        default=(), description="The namespaces that get sidecars (the mesh)."
    )
    tracing: Tracing = Field(default=Tracing(), description="Tracing from the proxies.")
    ingress_gateway_replicas: StrictInt = Field(
        default=2, ge=1, le=20, description="Replicas of the Istio ingress gateway."
    )
    jwks: JwksFetch = Field(
        default=JwksFetch(), description="How istiod reaches the token issuers' keys (apps[].access.token)."
    )

    checked_by = (rules.istio_serves_v1_apis,)


class Observability(Model):
    """Metrics (Prometheus, Grafana with dashboards as code) and tracing (Jaeger) per unit."""

    enabled: StrictBool | None = Field(
        default=None, description="Deploy it; unset: on in prod, off elsewhere."
    )
    prometheus_retention: str = Field(
        default="15d", pattern=DURATION, description="How long metrics are kept."
    )
    prometheus_storage: str = Field(default="50Gi", pattern=QUANTITY, description="Prometheus's volume size.")
    grafana_storage: str = Field(default="10Gi", pattern=QUANTITY, description="Grafana's volume size.")
    tracing_storage: str = Field(default="20Gi", pattern=QUANTITY, description="Jaeger's volume size.")
    tracing_retention: str = Field(default="72h", pattern=DURATION, description="How long spans are kept.")


class Nginx(Model):
    """NGINX Inc's ingress controller, for the http-nginx apps."""

    enabled: StrictBool = Field(default=True, description="Deploy it.")
    ingress_class: DnsLabel = Field(default="nginx", description="Its IngressClass.")
    replicas: StrictInt = Field(default=2, ge=1, le=20, description="Controller replicas.")
    # Ref: nginx/kubernetes-ingress chart 2.6.4 values.yaml (controller.watchNamespace: "" watches all)
    namespaces: tuple[DnsLabel, ...] = Field(
        default=(), description="The namespaces it watches (watchNamespace); empty: every namespace."
    )


# ---------------------------------------------------------------------------------------------
# BIG-IP and egress
# ---------------------------------------------------------------------------------------------


class BigipAccess(Model):
    """How Pulumi (and CIS) reach a BIG-IP's management API, TLS verified."""

    management_address: IPv4Addr = Field(description="The management API's address.")
    management_port: Port = Field(default=443, description="The management API's port.")
    username: str = Field(default="admin", min_length=1, max_length=64, description="The API user.")
    password_secret: ConfigKey = Field(description="The secret config key holding the user's password.")
    trusted_cert_file: TrustFile | None = Field(
        default=None,
        description="The BIG-IP's management certificate that CIS and Pulumi trust: a committed PEM "
        "file, its path relative to the project (see [the refresh model](operations.md#the-refresh-model)).",
    )
    insecure_skip_verify: StrictBool = Field(
        default=False, description="Skip TLS verification instead; allowed only in dev."
    )

    # Rules over the raw mapping, before the fields parse: a key that moved.
    checked_before: ClassVar[tuple[rules.Rule, ...]] = (rules.trusted_cert_key_moved,)
    checked_by: ClassVar[tuple[rules.Rule, ...]] = (rules.tls_is_verified,)

    @model_validator(mode="before")
    @classmethod
    def _raw_rules(cls, data: Any) -> Any:
        return rules.enforce(data, cls.checked_before, every=False)


class Bigip(BigipAccess):
    """The unit's BIG-IP: CIS's partition for the ingress virtual servers, Pulumi's for egress,
    BGP with the cluster."""

    cis_partition: PartitionName = Field(description="The partition CIS owns.")
    pulumi_partition: PartitionName = Field(description="The partition of Pulumi's egress objects.")
    vlan: BigipName = Field(description="The VLAN facing the cluster.")
    self_ips: Annotated[
        tuple[IPv4Addr, ...], non_empty("self IPs", "list the BIG-IP self IPs the cluster peers with")
    ] = Field(description="The BIG-IP self IPs the cluster peers with.")
    asn: Asn = Field(description="The BIG-IP's ASN; not the cluster's (the peering is eBGP).")
    bgp_neighbors: tuple[IPv4Addr, ...] = Field(
        default=(),
        description="The cluster nodes the BIG-IP peers with; required for calico-bgp units, each "
        "inside network.nodeCidr.",
    )
    cis_version: SemVer = Field(default=versions.CIS_VERSION, description="The pinned CIS version.")
    device: DnsLabel | None = Field(
        default=None,
        description="A BIG-IP of cpaas:bigipDevices that several units share: its access and ASN "
        "come from there, vlan defaults to its first VLAN and selfIps to all of its self IPs (set "
        "neither access nor asn here). Unset: the keys above declare a BIG-IP of this unit's own.",
    )

    checked_by = (*BigipAccess.checked_by, rules.partitions_differ)


# The keys of units[].bigip that a shared device declares once (SharedBigip) and that a unit naming
# that device takes from it.
DEVICE_KEYS = (
    "managementAddress",
    "managementPort",
    "username",
    "passwordSecret",
    "trustedCertFile",
    "insecureSkipVerify",
    "asn",
)


class SharedBigip(BigipAccess):
    """A BIG-IP in front of several units, declared once; each unit names it in bigip.device and
    keeps its own partitions. One provider, one BGP instance (a peer group per calico-bgp unit) and
    one configuration save serve all of its units."""

    name: DnsLabel = Field(description="Unique among the devices; units name it in bigip.device.")
    vlans: Annotated[tuple[BigipName, ...], non_empty("VLANs", "list the VLANs that face the clusters")] = (
        Field(
            description="The VLANs facing the clusters; a unit's bigip.vlan is one of them (default: "
            "the first)."
        )
    )
    self_ips: Annotated[
        tuple[IPv4Addr, ...], non_empty("self IPs", "list the BIG-IP self IPs the clusters peer with")
    ] = Field(description="The BIG-IP self IPs the clusters peer with; the first is its GSLB server address.")
    asn: Asn = Field(description="The BIG-IP's ASN; not any cluster's (the peerings are eBGP).")
    route_domain: StrictInt = Field(
        default=0, ge=0, le=65534, description="The route domain of its one BGP instance; 0 only, for now."
    )

    checked_by = (*BigipAccess.checked_by, rules.route_domain_zero)


class ForwardProxy(Model):
    """The forward proxy the egress gateway sends to (in front of the firewall)."""

    address: IPv4Addr = Field(description="Its address.")
    port: Port = Field(description="Its port.")


class EgressAllow(Model):
    """A namespace whose workloads may use the egress gateway, by SPIFFE identity."""

    namespace: DnsLabel = Field(description="A mesh namespace.")
    service_accounts: tuple[DnsLabel, ...] = Field(
        default=(), description="Only these service accounts of it; empty: all."
    )
    snat_address: IPv4Addr | None = Field(
        default=None,
        description="A SNAT address of its own, so the firewall can tell this app apart; in no other "
        "entry and not in the shared snatAddresses.",
    )


class Egress(Model):
    """The BIG-IP egress gateway: mTLS from mesh pods, an iRule that authorises SPIFFE IDs, SNAT,
    then the forward proxy."""

    vip: IPv4Addr = Field(description="The egress virtual server's address.")
    port: Port = Field(default=443, description="Its port.")
    forward_proxy: ForwardProxy = Field(description="Where it sends the traffic.")
    snat_addresses: Annotated[
        tuple[IPv4Addr, ...], non_empty("SNAT addresses", "list at least one egress address")
    ] = Field(description="The SNAT pool shared by the namespaces without a snatAddress of their own.")
    allow: Annotated[
        tuple[EgressAllow, ...],
        non_empty("allowed callers", "list the namespaces that may use the egress gateway"),
    ] = Field(description="Who may use it.")

    checked_by = (rules.egress_allow_entries,)


# ---------------------------------------------------------------------------------------------
# Apps (ingress)
# ---------------------------------------------------------------------------------------------

AppKind = Literal["http-mesh", "http-nginx", "tcp", "udp"]


class Waf(Model):
    """BIG-IP Advanced WAF for an HTTP app, attached to its CIS VirtualServer: either an existing
    policy (`policy`, a full path) or one Pulumi creates from an F5 template in /Common
    (`template`), named /Common/cpaas-<unit>-<app>-waf-<template>."""

    policy: WafPolicyPath | None = Field(default=None, description="An existing policy.")
    template: str | None = Field(
        default=None, pattern=WAF_TEMPLATE, description="The F5 template to create a policy from."
    )
    enforcement_mode: Literal["blocking", "transparent"] = Field(
        default="blocking", description="The created policy's enforcement mode."
    )

    checked_by = (rules.waf_has_one_source,)


class AccessImport(Model):
    """An access profile the identity team exported (an APM export the BIG-IP fetches from `url`),
    imported with AS3 (tenant Common) as /Common/cpaas-<unit>-<app>-access, and its per-request
    policy, if any, as /Common/cpaas-<unit>-<app>-prp: AS3 imports APM objects into the tenant root,
    never into an application folder."""

    url: HttpsUrl = Field(description="Where the BIG-IP fetches the exported access profile.")
    per_request_policy_url: HttpsUrl | None = Field(
        default=None, description="Where it fetches the exported per-request policy; unset: none."
    )
    refresh: StrictBool = Field(
        default=False,
        description="Fetch and import the exports again, in place, each time the unit's access "
        "declaration is posted (AS3 ignoreChanges false); set it with a new export's URL, then "
        "unset it. Unset: imported once and left alone; a changed URL alone imports nothing.",
    )


class AccessToken(Model):
    """The user's token (a JWT) the app receives as `Authorization: Bearer` and the mesh verifies:
    from the IdP (OIDC), or from APM acting as an OAuth authorization server (Windows AD users)."""

    issuer: HttpsUrl = Field(description="The token's `iss`.")
    jwks_uri: HttpsUrl = Field(description="Where the issuer publishes its signing keys (JWKS).")
    audiences: Annotated[
        tuple[str, ...],
        non_empty("audiences", "list the token audiences this app accepts, e.g. api://portal"),
    ] = Field(description="The `aud` values the app accepts; a token for another app is refused.")
    forward_original_token: StrictBool = Field(
        default=True,
        description="Pass the verified token on to the app (it reads the user from it and forwards "
        "it on its own calls); false: the sidecar removes it.",
    )

    checked_by = (rules.azure_v2_audiences,)


class ClaimRule(Model):
    """A claim the token must carry with one of `values` (e.g. a group)."""

    claim: ClaimName = Field(description="The claim, e.g. groups; '.' reaches a nested claim.")
    values: Annotated[
        tuple[str, ...], non_empty("values", "list the values that grant access, e.g. a group id")
    ] = Field(description="Any of these grants access.")


class Access(Model):
    """BIG-IP APM in front of an HTTP app (an access profile on its CIS VirtualServer) and, for
    http-mesh apps, the user's token verified by the mesh with claim rules."""

    profile: AccessPath | None = Field(
        default=None, description="An existing access profile in /Common, e.g. /Common/azuread-oidc."
    )
    per_request_policy: AccessPath | None = Field(
        default=None, description="An existing per-request policy in /Common, with `profile`."
    )
    import_: AccessImport | None = Field(
        default=None, alias="import", description="Import an exported profile instead of `profile`."
    )
    token: AccessToken | None = Field(
        default=None, description="The token the mesh verifies; http-mesh apps only."
    )
    require: tuple[ClaimRule, ...] = Field(
        default=(), description="Claims every request's token must carry (all rules, any value each)."
    )

    checked_by = (rules.access_sources,)


class Caller(Model):
    """A mesh workload that may call the app, by its SPIFFE identity."""

    namespace: DnsLabel = Field(description="An injected namespace of the unit.")
    service_account: DnsLabel = Field(description="The caller's service account.")


class ClusterPeer(Model):
    """Another unit behind the same shared BIG-IP whose cluster also serves the app."""

    unit: UnitName = Field(description="The unit; its cluster runs the app's Service too.")
    weight: StrictInt | None = Field(
        default=None, ge=0, le=100, description="Its share of the traffic; mode ratio only (0: none)."
    )


class MultiCluster(Model):
    """The app served through this unit's one virtual server by this unit's cluster and the
    clusters of other units on the same shared BIG-IP (CIS multi-cluster mode, standalone: this
    unit's CIS reads the other clusters through their kubeconfigs)."""

    mode: Literal["active-active", "ratio"] = Field(
        default="active-active",
        description="active-active: every cluster takes an equal share; ratio: the weights given.",
    )
    weight: StrictInt | None = Field(
        default=None, ge=0, le=100, description="This unit's share of the traffic; mode ratio only."
    )
    peers: Annotated[
        tuple[ClusterPeer, ...], non_empty("peers", "list the units whose clusters also serve the app")
    ] = Field(description="The other units whose clusters serve the app.")

    checked_by = (rules.multi_cluster_weights,)


class App(Model):
    """An app the BIG-IP serves: HTTP(S) through Istio's ingress gateway or NGINX, or TCP/UDP
    straight to the pods."""

    name: AppName = Field(description="Unique in the unit.")
    kind: AppKind = Field(
        description="http-mesh (Istio ingress gateway), http-nginx (NGINX), or tcp/udp (to the pods)."
    )
    fqdn: AppFqdn | None = Field(
        default=None, description="The Host the BIG-IP matches; required for HTTP apps."
    )
    vip: IPv4Addr = Field(description="The virtual server's address.")
    port: Port = Field(description="The virtual server's port.")
    namespace: DnsLabel = Field(description="The app's namespace.")
    service: ServiceName = Field(description="The app's Service.")
    service_port: Port = Field(description="The Service's port.")
    waf: Waf | None = Field(default=None, description="BIG-IP Advanced WAF; HTTP apps only, off unless set.")
    target_port: Port | None = Field(
        default=None,
        description="The port the app's pods listen on, where mesh policies match it; unset: servicePort.",
    )
    access: Access | None = Field(
        default=None, description="APM access and the user's token; HTTP apps only, off unless set."
    )
    callers: tuple[Caller, ...] = Field(
        default=(),
        description="Mesh workloads that may call an http-mesh app besides the ingress gateway.",
    )
    same_namespace_calls: StrictBool = Field(
        default=False,
        description="Open the app's namespace to its own workloads (every workload there may call "
        "every other); http-mesh apps only.",
    )
    multi_cluster: MultiCluster | None = Field(
        default=None,
        description="Also served by the clusters of other units on the same shared BIG-IP, through "
        "this virtual server.",
    )
    # cpaas deploys neither the app's pods nor (outside the dev demo) its Service: their labels are
    # the app team's, and a selector that matches nothing leaves only allow-nothing.
    workload_labels: (
        Annotated[
            Mapping[LabelKey, LabelValue],
            Field(min_length=1),
            AfterValidator(MappingProxyType),
            PlainSerializer(dict),
        ]
        | None
    ) = Field(
        default=None,
        description="The labels of the app's pods, which its mesh policies select (matchLabels); "
        "unset: {app: <service>}. Take them from the app team's pod template.",
    )

    checked_by = (rules.app_kind_fields,)

    @property
    def pod_labels(self) -> Mapping[str, str]:
        """The labels the app's mesh policies select its pods by."""
        return self.workload_labels if self.workload_labels is not None else {"app": self.service}

    @property
    def workload_port(self) -> int:
        """The port the pods listen on: where the mesh's policies match the app."""
        return self.target_port or self.service_port


# ---------------------------------------------------------------------------------------------
# Unit
# ---------------------------------------------------------------------------------------------

Cloud = Literal["local", "aws", "azure", "gcp", "onprem"]


class Unit(Model):
    """One atomic unit: a Kubernetes cluster and the BIG-IP in front of it."""

    name: UnitName = Field(description="Unique in the stack; it prefixes the unit's resource names.")
    cloud: Cloud = Field(description="Where the cluster runs; local for k3d.")
    region: DnsLabel = Field(description="The cloud region.")
    cluster: ClusterSource = Field(description="Where the cluster comes from.")
    network: Network = Field(description="Address ranges and CNI.")
    mesh: Mesh = Field(description="Istio.")
    nginx: Nginx = Field(default=Nginx(), description="NGINX Inc's ingress controller.")
    bigip: Bigip | None = Field(default=None, description="The BIG-IP in front of the cluster.")
    egress: Egress | None = Field(default=None, description="The BIG-IP egress gateway; needs bigip.")
    apps: tuple[App, ...] = Field(default=(), description="The apps the BIG-IP serves.")
    demo_workloads: StrictBool = Field(
        default=False,
        description="Deploy the demo workloads: bookinfo in the mesh, httpbin behind NGINX, a "
        "Mosquitto MQTT broker, and a traffic generator that calls productpage and, where there is "
        "an egress gateway, the egress path.",
    )
    observability: Observability = Field(default=Observability(), description="Metrics and tracing.")

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
    """The F5 DNS device that answers for the wide IPs."""

    partition: PartitionName = Field(default="cpaas-gslb", description="The partition of the GSLB objects.")
    self_ip: IPv4Addr | None = Field(
        default=None,
        description="The device's own self IP (iQuery, probing): F5 DNS needs a server object for "
        "itself in a data center before it probes; unset, that object must exist already.",
    )
    location: Location = Field(default="dns", description="The data center of the device's own server.")
    listeners: tuple[IPv4Addr, ...] = Field(
        default=(),
        description="Where resolvers send queries: a UDP and a TCP listener on port 53 per address; "
        "empty: the device's existing listeners answer.",
    )

    checked_by = (*BigipAccess.checked_by, rules.listeners_distinct)


class Monitor(Model):
    """The health monitor of a wide IP's pool members."""

    type: Literal["https", "http", "tcp"] = Field(description="The monitor type.")
    interval: StrictInt = Field(default=30, ge=1, le=3600, description="Seconds between probes.")
    timeout: StrictInt = Field(
        default=91, ge=1, le=86400, description="Seconds without an answer before a member is down."
    )
    send: str | None = Field(default=None, description="The request a probe sends; unset: AS3's default.")
    receive: str | None = Field(default=None, description="The text a healthy answer holds.")


class TopologyRecord(Model):
    """Answer requests from `ldnsSubnet` with `unit` first (GSLB topology load balancing)."""

    ldns_subnet: IPv4Net = Field(description="The resolvers' subnet.")
    unit: UnitName = Field(description="The unit that answers them first.")
    weight: StrictInt = Field(default=100, ge=1, le=4294967295, description="The record's weight.")


class WideIp(Model):
    """One app's wide IP: its FQDN answered with the units that serve it."""

    app: AppName = Field(description="The app; one wide IP per app.")
    lb_mode: Literal["global-availability", "round-robin", "ratio", "topology"] = Field(
        default="global-availability", description="How the units are picked."
    )
    units: tuple[UnitName, ...] = Field(
        default=(), description="Units serving this app, in failover order; empty: every unit that has it."
    )
    ratios: Annotated[
        Mapping[UnitName, Annotated[StrictInt, Field(ge=1, le=100)]],
        AfterValidator(MappingProxyType),
        PlainSerializer(dict),
    ] = Field(
        default_factory=lambda: MappingProxyType({}),
        description="Weight per unit for lbMode ratio, e.g. {aws-syd: 2, azure-mel: 1}.",
    )
    monitor: Monitor = Field(description="The health monitor.")
    last_resort_unit: UnitName | None = Field(
        default=None, description="The unit of the last-resort pool, answering when the others are down."
    )
    topology: tuple[TopologyRecord, ...] = Field(default=(), description="Records for lbMode topology.")


class Gslb(Model):
    """GSLB with F5 DNS across the units: a wide IP per app FQDN, a pool member per unit."""

    dns_device: DnsDevice = Field(description="The F5 DNS device.")
    wide_ips: Annotated[
        tuple[WideIp, ...], non_empty("wide IPs", "add one per app under gslb.wideIps or remove gslb")
    ] = Field(description="One per app.")
    unit_stacks: Mapping[UnitName, StackRefName] = Field(
        default_factory=dict,
        description="Units deployed by their own stacks: name -> org/project/stack whose gslbRefs "
        "output describes the unit; their apps are checked when the reference resolves.",
    )


class AddressPlan(Model):
    """Where new units get their addresses (tools.replicate): each unit takes one site block
    (nodes, pods, VIPs, BIG-IP addresses) and one service block, and a BIG-IP ASN."""

    site_blocks: IPv4Net = Field(description="The range the site blocks come from.")
    site_prefix: StrictInt = Field(default=16, ge=8, le=28, description="The prefix length of a site block.")
    service_blocks: IPv4Net = Field(description="The range the service blocks come from.")
    service_prefix: StrictInt = Field(
        default=16, ge=8, le=28, description="The prefix length of a service block."
    )
    bigip_asns: tuple[Asn, Asn] = Field(description="The BIG-IP ASNs to take from: [first, last].")
    trust_domain_suffix: TrustDomain = Field(description="A new unit's trust domain is <unit>.<this suffix>.")

    checked_by = (rules.address_plan_ranges,)


# ---------------------------------------------------------------------------------------------
# Stack
# ---------------------------------------------------------------------------------------------

Environment = Literal["dev", "test", "prod"]


class StackConfig(Model):
    """The stack: its environment, the org PKI, its units, and GSLB across them."""

    environment: Environment = Field(
        description="dev, test or prod; TLS verification may be skipped only in dev."
    )
    pki: Pki | None = Field(
        default=None, description="The org PKI; optional only for a GSLB-only stack (no units of its own)."
    )
    bigip_devices: tuple[SharedBigip, ...] = Field(
        default=(), description="BIG-IPs shared by several units, each declared once (units[].bigip.device)."
    )
    units: tuple[Unit, ...] = Field(default=(), description="The stack's units.")
    gslb: Gslb | None = Field(default=None, description="GSLB across the units.")
    address_plan: AddressPlan | None = Field(
        default=None, description="Where tools.replicate allocates new units' addresses."
    )

    checked_by = rules.STACK_RULES
    reports_every_problem = True

    @model_validator(mode="before")
    @classmethod
    def _units_on_devices(cls, data: Any) -> Any:
        return rules.enforce_merge(data, DEVICE_KEYS)

    def device(self, name: str) -> SharedBigip:
        for device in self.bigip_devices:
            if device.name == name:
                return device
        raise KeyError(name)

    def device_of(self, unit: Unit) -> SharedBigip | None:
        """The shared device in front of `unit`, or None (no bigip, or one of its own)."""
        if unit.bigip is None or unit.bigip.device is None:
            return None
        return self.device(unit.bigip.device)

    def units_on(self, device: str) -> tuple[Unit, ...]:
        """The units behind shared device `device`, in stack order."""
        return tuple(u for u in self.units if u.bigip is not None and u.bigip.device == device)

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
                if unit.cluster.cis_kubeconfig_secret is not None:
                    keys.append(unit.cluster.cis_kubeconfig_secret)
            if unit.bigip is not None:
                keys.append(unit.bigip.password_secret)
        keys += [device.password_secret for device in self.bigip_devices]
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
            (rules.path("units", i, "bigip", "trustedCertFile"), u.bigip)
            for i, u in enumerate(self.units)
            if u.bigip and u.bigip.device is None
        ]
        named += [
            (rules.path("bigipDevices", i, "trustedCertFile"), d) for i, d in enumerate(self.bigip_devices)
        ]
        if self.gslb is not None:
            named.append(("gslb.dnsDevice.trustedCertFile", self.gslb.dns_device))
        files: dict[str, str] = {}
        for where, access in named:
            if access.trusted_cert_file is not None and not access.insecure_skip_verify:
                files.setdefault(access.trusted_cert_file, where)
        for i, u in enumerate(self.units):
            if u.mesh.jwks.trusted_ca_file is not None:
                files.setdefault(
                    u.mesh.jwks.trusted_ca_file, rules.path("units", i, "mesh", "jwks", "trustedCaFile")
                )
        return files

    def kubeconfig_keys(self) -> list[str]:
        """The secret keys that hold kubeconfigs (set from a file, not typed)."""
        clusters = [u.cluster for u in self.units if isinstance(u.cluster, KubeconfigCluster)]
        keys = {c.kubeconfig_secret for c in clusters}
        return sorted(keys | {c.cis_kubeconfig_secret for c in clusters if c.cis_kubeconfig_secret})


# The fields that name config keys, as secret_keys, plain_keys and kubeconfig_keys read them.
_SECRET_FIELDS = ("passwordSecret", "kubeconfigSecret", "cisKubeconfigSecret", "privateKeySecret")
_KUBECONFIG_FIELDS = ("kubeconfigSecret", "cisKubeconfigSecret")
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
                if key in _KUBECONFIG_FIELDS:
                    kubeconfigs.add(value)
            else:
                pending.append(value)
    return secrets, certificates, kubeconfigs


def every_model() -> list[type[Model]]:
    """Every config model: the subclasses of Model at any depth."""
    found: list[type[Model]] = []
    todo = list(Model.__subclasses__())
    while todo:
        model = todo.pop()
        found.append(model)
        todo.extend(model.__subclasses__())
    return found
