"""Istio (base, istiod, ingress gateway) on the unit's intermediate CA, with STRICT mTLS.

Order a real cluster needs: the `cacerts` Secret exists before istiod starts (otherwise istiod
self-signs and never picks the plugged CA up), CRDs (base) before any Istio resource, istiod
(the injection webhook) before the gateway and before workloads in injected namespaces.
Ref: https://istio.io/latest/docs/setup/install/helm/
Ref: https://istio.io/latest/docs/tasks/security/cert-management/plugin-ca-cert/
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import config, helm, versions
from components.pki import IssuedCa, cacerts_digest

NAMESPACE = "istio-system"
GATEWAY_NAMESPACE = "istio-ingress"
GATEWAY_RELEASE = "istio-ingressgateway"
TRACING_PROVIDER = "cpaas-tracing"
# On istiod's pod template: a changed CA certificate or root rolls istiod, which reloads a new
# intermediate by itself but keeps the old bundle when root-cert.pem changes (1.30.3
# pilot/pkg/bootstrap/istio_ca.go, handleEvent). README "Renewal and rotation".
CACERTS_DIGEST_ANNOTATION = "cpaas.io/cacerts-sha256"
# istiod reads the extra JWKS roots once, when it starts: a changed CA file rolls it.
# Ref: istio/istio@1.30.3 pilot/pkg/model/jwks_resolver.go (newJwksResolverWithCABundlePaths)
JWKS_CA_DIGEST_ANNOTATION = "cpaas.io/jwks-ca-sha256"
# What istiod always reaches directly: the Kubernetes API and the cluster's services (its
# Kubernetes client honours HTTPS_PROXY too).
_CLUSTER_DIRECT = (".svc", ".cluster.local", "localhost", "127.0.0.1")


def jwks_env(jwks: config.JwksFetch, network: config.Network | None) -> dict[str, str]:
    """istiod's proxy environment for fetching token issuers' keys; empty without a proxy.
    Ref: istio/istio@1.30.3 pilot/pkg/model/jwks_resolver.go (Transport Proxy:
         http.ProxyFromEnvironment); istio-discovery chart values.yaml (env)"""
    if jwks.proxy is None:
        return {}
    cidrs = (
        (str(network.pod_cidr), str(network.service_cidr), str(network.node_cidr))
        if network is not None
        else ()
    )
    direct = dict.fromkeys((*_CLUSTER_DIRECT, *cidrs, *jwks.no_proxy))
    return {"HTTPS_PROXY": jwks.proxy.url, "NO_PROXY": ",".join(direct)}


def istiod_values(
    mesh: config.Mesh, cluster_name: str, network: config.Network | None = None
) -> dict[str, Any]:
    """istiod chart values (without the JWKS CA, which is a deploy-time file). Pure: test it directly."""
    mesh_config: dict[str, Any] = {
        "trustDomain": mesh.trust_domain,
        "enablePrometheusMerge": True,
        # Workloads reach only what the registry knows; egress goes through the BIG-IP.
        "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
        "defaultConfig": {
            "holdApplicationUntilProxyStarts": True,
            # Sidecars answer DNS for ServiceEntry hosts (e.g. the BIG-IP egress host).
            # Ref: https://istio.io/latest/docs/ops/configuration/traffic-management/dns-proxy/
            "proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"},
        },
    }
    if mesh.tracing.enabled:
        t = mesh.tracing
        mesh_config["extensionProviders"] = [
            {"name": TRACING_PROVIDER, t.provider: {"service": t.service, "port": t.port}}
        ]
    env = jwks_env(mesh.jwks, network)
    return {
        **({"env": env} if env else {}),
        "global": {
            "hub": versions.ISTIO_HUB,
            "tag": mesh.istio_version,
            "meshID": cluster_name,
            "multiCluster": {"clusterName": cluster_name},
        },
        "meshConfig": mesh_config,
        "traceSampling": mesh.tracing.sampling_percent if mesh.tracing.enabled else 1.0,
    }


def _jwks_ca_values(args: MeshArgs) -> dict[str, Any]:
    """The JWKS CA (chart value jwksResolverExtraRootCA: the ConfigMap istiod mounts at
    /cacerts/extra.pem) and the pod annotations that roll istiod when a CA changes.
    Ref: istio/istio@1.30.3 manifests/charts/istio-control/istio-discovery/templates/configmap-jwks.yaml"""
    annotations: dict[str, Any] = {CACERTS_DIGEST_ANNOTATION: cacerts_digest(args.ca)}
    if args.jwks_ca is None:
        return {"podAnnotations": annotations}
    annotations[JWKS_CA_DIGEST_ANNOTATION] = pulumi.Output.from_input(args.jwks_ca).apply(
        lambda pem: hashlib.sha256(pem.encode()).hexdigest()
    )
    return {"jwksResolverExtraRootCA": args.jwks_ca, "podAnnotations": annotations}


def gateway_values(mesh: config.Mesh) -> dict[str, Any]:
    """Ingress gateway values: ClusterIP, since the BIG-IP sends to the gateway's pod IPs."""
    return {
        "name": GATEWAY_RELEASE,
        # The chart ignores replicaCount while its HPA is on (the default); keep the HPA and make
        # the configured count its floor, which also turns on the chart's PodDisruptionBudget.
        "autoscaling": {
            "enabled": True,
            "minReplicas": mesh.ingress_gateway_replicas,
            "maxReplicas": max(mesh.ingress_gateway_replicas, 5),
        },
        "service": {
            "type": "ClusterIP",
            "ports": [
                {"name": "status-port", "port": 15021, "protocol": "TCP", "targetPort": 15021},
                {"name": "http2", "port": 80, "protocol": "TCP", "targetPort": 80},
                {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443},
            ],
        },
        "podDisruptionBudget": {"minAvailable": 1} if mesh.ingress_gateway_replicas > 1 else {},
    }


def peer_authentication() -> dict[str, Any]:
    """Mesh-wide STRICT mTLS: no selector, in the root namespace."""
    return {"mtls": {"mode": "STRICT"}}


def telemetry(tracing: config.Tracing) -> dict[str, Any]:
    return {
        "tracing": [
            {
                "providers": [{"name": TRACING_PROVIDER}],
                "randomSamplingPercentage": tracing.sampling_percent,
            }
        ]
    }


@dataclass(frozen=True)
class MeshArgs:
    mesh: config.Mesh
    ca: IssuedCa
    cluster_name: str
    # Children wait for these: a component's depends_on does not reach its children.
    after: tuple[pulumi.Resource, ...] = ()
    network: config.Network | None = None
    # The content of mesh.jwks.trustedCaFile: istiod's extra roots for the issuers' JWKS.
    jwks_ca: pulumi.Input[str] | None = None


class Mesh(pulumi.ComponentResource):
    gateway_service: str
    namespaces: list[pulumi.Resource]  # the gateway's and the injected app namespaces
    base: pulumi.Resource  # the Istio CRDs
    istiod: pulumi.Resource

    def __init__(self, name: str, args: MeshArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:mesh:Mesh", name, None, opts)
        mesh = args.mesh
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        base_chart, istiod_chart, gateway_chart = versions.istio_charts(mesh.istio_version)

        system = k8s.core.v1.Namespace(f"{name}-namespace", metadata={"name": NAMESPACE}, opts=child)
        in_system = pulumi.ResourceOptions(parent=self, depends_on=[system])
        cacerts = k8s.core.v1.Secret(
            f"{name}-cacerts",
            metadata={"name": "cacerts", "namespace": NAMESPACE},
            type="Opaque",
            string_data={
                "ca-cert.pem": args.ca.cert_pem,
                "ca-key.pem": args.ca.key_pem,
                "root-cert.pem": args.ca.root_pem,
                "cert-chain.pem": args.ca.chain_pem,
            },
            opts=in_system,
        )
        self.base = base = helm.release(
            f"{name}-base",
            base_chart,
            release_name="istio-base",
            namespace=NAMESPACE,
            values={"defaultRevision": "default"},
            opts=in_system,
        )
        self.istiod = helm.release(
            f"{name}-istiod",
            istiod_chart,
            release_name="istiod",
            namespace=NAMESPACE,
            values={
                **istiod_values(mesh, args.cluster_name, args.network),
                **_jwks_ca_values(args),
            },
            timeout=600,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[base, cacerts]),
        )
        after_istiod = pulumi.ResourceOptions(parent=self, depends_on=[self.istiod])
        gateway_ns = k8s.core.v1.Namespace(
            f"{name}-gateway-namespace", metadata={"name": GATEWAY_NAMESPACE}, opts=child
        )
        helm.release(
            f"{name}-gateway",
            gateway_chart,
            release_name=GATEWAY_RELEASE,
            namespace=GATEWAY_NAMESPACE,
            values=gateway_values(mesh),
            timeout=600,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.istiod, gateway_ns]),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-strict-mtls",
            api_version="security.istio.io/v1",
            kind="PeerAuthentication",
            metadata={"name": "default", "namespace": NAMESPACE},
            spec=peer_authentication(),
            opts=after_istiod,
        )
        if mesh.tracing.enabled:
            k8s.apiextensions.CustomResource(
                f"{name}-tracing",
                api_version="telemetry.istio.io/v1",
                kind="Telemetry",
                metadata={"name": "mesh-default", "namespace": NAMESPACE},
                spec=telemetry(mesh.tracing),
                opts=after_istiod,
            )
        self.namespaces = [gateway_ns]
        for ns in mesh.injected_namespaces:
            self.namespaces.append(
                k8s.core.v1.Namespace(
                    f"{name}-ns-{ns}",
                    metadata={"name": ns, "labels": {"istio-injection": "enabled"}},
                    opts=after_istiod,
                )
            )
        self.gateway_service = f"{GATEWAY_NAMESPACE}/{GATEWAY_RELEASE}"
        self.register_outputs({"gatewayService": self.gateway_service})
