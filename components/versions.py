"""Every pinned chart, image, commit and schema version in one place (the upstream versions of
../shared/schemas); components and tests name them from here.

Bumping a version here is the whole change; the schemas in shared/schemas must follow.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    repo: str  # a Helm repository URL, or "" when `name` is an oci:// reference

    @property
    def key(self) -> str:
        """The chart's identity in the schema folder and in validate.helm_values."""
        return self.name.rsplit("/", 1)[-1]


# --- local clusters: the k3d cluster's default node image (config) ---------------------------------
K3S_IMAGE = "rancher/k3s:v1.34.6-k3s1"
K3S_KUBERNETES_VERSION = "1.34"  # the Kubernetes minor version K3S_IMAGE runs

CALICO_VERSION = "v3.32.1"
CALICO_COMMIT = "0ca9d1b93644778cafdf1812f3dda02ac0c361e8"  # tag v3.32.1: the CRDs (calico.py)
CALICO_REPO = "https://docs.tigera.io/calico/charts"
# Ref: https://docs.tigera.io/calico/latest/getting-started/kubernetes/helm
TIGERA_OPERATOR = Chart("tigera-operator", CALICO_VERSION, CALICO_REPO)
CALICO_CRDS_V1 = Chart("crd.projectcalico.org.v1", CALICO_VERSION, CALICO_REPO)
# The operator image the chart defaults to, set in its values all the same.
# Ref: projectcalico/calico@v3.32.1 charts/tigera-operator/values.yaml (tigeraOperator)
TIGERA_OPERATOR_REGISTRY = "quay.io"
TIGERA_OPERATOR_IMAGE = "tigera/operator"
TIGERA_OPERATOR_VERSION = "v1.42.3"

ISTIO_VERSION = "1.30.3"
# Istio leaves GCP: its charts leave istio-release.storage.googleapis.com in December 2026, and
# every version's charts are already here (OCI copies: oci://ghcr.io/istio/release/charts).
# Confirmed: the istio.io post "An update on our move to AWS" (2026-08-21) says all versions'
# charts are there now:
#   https://github.com/istio/istio.io/blob/0305f3f657119380cc2f31b35e76f6793e5a1458/content/en/blog/2026/retirement-of-gcp/index.md
# Istio's publish job pushes OCI charts to ghcr.io/istio/release/charts (HELM_HUB_RELEASE):
#   https://github.com/istio/release-builder/blob/f7799ccf7c839c69f419af4c26c690d4909a19a3/release/publish.sh
# Not confirmed offline: that index.yaml there lists 1.30.3 (check on the first deploy).
ISTIO_REPO = "https://blob.istio.io/istio-release/charts"
# Ref: https://istio.io/latest/docs/setup/install/helm/
# Images: Istio 1.30's charts default to registry.istio.io/release, which Istio retires in late
# 2026; istiod's global.hub moves istiod, the sidecars and the gateway (injected) to Docker Hub.
# Confirmed: https://github.com/istio/istio.io/blob/35ddf9a6bcd630e40cc61da02efb6d681bb5ab43/content/en/blog/2026/retirement-of-gcr.io-follow-up/index.md
#   https://github.com/istio/istio/blob/1.30.3/manifests/charts/istio-control/istio-discovery/values.yaml
#   (hub, global.hub)
ISTIO_HUB = "docker.io/istio"
ISTIO_BASE = Chart("base", ISTIO_VERSION, ISTIO_REPO)
ISTIOD = Chart("istiod", ISTIO_VERSION, ISTIO_REPO)
ISTIO_GATEWAY = Chart("gateway", ISTIO_VERSION, ISTIO_REPO)

# --- demo workloads (components/demo.py) ---------------------------------------------------------
# bookinfo 1.20.3, the tag Istio 1.30.3's samples pin. Istio 1.30's samples pull them from
# registry.istio.io/release, which Istio retires in late 2026 and tells users to replace with
# docker.io/istio, where Istio 1.29's samples pull the same tags from.
# Confirmed: the tag in https://github.com/istio/istio/blob/1.30.3/samples/bookinfo/platform/kube/bookinfo.yaml,
#   docker.io/istio with that tag in
#   https://github.com/istio/istio/blob/1.29.6/samples/bookinfo/platform/kube/bookinfo.yaml,
#   https://github.com/istio/istio.io/blob/35ddf9a6bcd630e40cc61da02efb6d681bb5ab43/content/en/blog/2026/retirement-of-gcr.io-follow-up/index.md
# Not confirmed offline: a pull of each image from Docker Hub.
BOOKINFO_HUB = ISTIO_HUB
BOOKINFO_TAG = "1.20.3"
# The images Istio 1.30.3's httpbin and curl samples pin.
# Confirmed: https://github.com/istio/istio/blob/1.30.3/samples/httpbin/httpbin.yaml
#   https://github.com/istio/istio/blob/1.30.3/samples/curl/curl.yaml
HTTPBIN_IMAGE = "docker.io/mccutchen/go-httpbin:v2.15.0"
CURL_IMAGE = "docker.io/curlimages/curl:8.16.0"
# Confirmed: https://github.com/eclipse-mosquitto/mosquitto/blob/v2.0.22/docker/2.0-openssl/Dockerfile
MOSQUITTO_IMAGE = "docker.io/library/eclipse-mosquitto:2.0.22"

# NGINX Inc's controller, not the retired community ingress-nginx.
# Ref: https://docs.nginx.com/nginx-ingress-controller/installation/installing-nic/installation-with-helm/
NGINX_INGRESS = Chart("oci://ghcr.io/nginx/charts/nginx-ingress", "2.6.4", "")
NGINX_IMAGE = "nginx/nginx-ingress"
NGINX_IMAGE_TAG = "5.5.4"

# Ref: https://clouddocs.f5.com/containers/latest/userguide/kubernetes/#cis-installation
# Chart 0.0.33, not 0.0.35 (the version in the v2.20.4 source tree): F5's published index, the
# repository's gh-pages branch (F5Networks/charts@33a5c27:stable/index.yaml, generated
# 2024-10-24), lists f5-bigip-ctlr up to 0.0.33, with digest
# 5f209a88887a4c22631b82bdf4c3105ae45e6a7e79039b138db46e9e645a0889; 0.0.35 is not in it.
# Its values.yaml is byte-identical to v2.20.4's (../shared/schemas/cis/chart/values.yaml); its
# templates differ only in probe periods (15 s/30 s; 0.0.35 has 120 s, k8s-bigip-ctlr #3895) and
# in a ClusterRole that grants the same for what cpaas runs, plus reads of `policies` and
# OpenShift's network config. Its bundled CRDs are older: cis.py skips them (skip_crds).
CIS = Chart("f5-bigip-ctlr", "0.0.33", "https://f5networks.github.io/charts/stable")
CIS_IMAGE = "f5networks/k8s-bigip-ctlr"
CIS_VERSION = "2.20.4"
CIS_COMMIT = "5274779dbfd5184b5389bc535f2d64b24164e6da"  # tag v2.20.4: the CRDs (cis.py)

# --- F5 declarations -----------------------------------------------------------------------------
# The schemaVersion of cpaas's AS3 declarations (GSLB, gslb.py): AS3 3.56.0, the release CIS
# 2.20.4 is pinned with. Ref: ../shared/schemas/MANIFEST.md (F5Networks/f5-appsvcs-extension v3.56.0)
AS3_SCHEMA_VERSION = "3.56.0"
# The schemaVersion of the DO form of the BGP peering (bigip/routing.py do_declaration).
# Ref: ../shared/schemas/MANIFEST.md (F5Networks/f5-declarative-onboarding v1.45.0)
DO_SCHEMA_VERSION = "1.45.0"

# --- observability (components/observability.py) ---------------------------------------------
# kube-prometheus-stack 88.5.3 (prometheus-community/helm-charts tag kube-prometheus-stack-88.5.3):
# Prometheus Operator v0.93.1, Prometheus v3.14.0, Grafana chart 12.11.1 (Grafana 13.2.0).
# Upstream ships no values.schema.json for it; tools/validate.py checks our top-level keys.
# Ref: https://github.com/prometheus-community/helm-charts/tree/main/charts/kube-prometheus-stack
KUBE_PROMETHEUS_STACK = Chart("oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack", "88.5.3", "")
# Jaeger v2 chart 4.11.1 (jaegertracing/helm-charts tag jaeger-4.11.1), app 2.19.0; no values schema.
# Ref: https://github.com/jaegertracing/helm-charts/tree/main/charts/jaeger
JAEGER = Chart("jaeger", "4.11.1", "https://jaegertracing.github.io/helm-charts")
JAEGER_IMAGE = "jaegertracing/jaeger"
JAEGER_VERSION = "2.19.0"
# The classic dashboard JSON model's schemaVersion the cpaas dashboards are written in; Grafana
# migrates a dashboard of an older schemaVersion one version at a time up to its latest.
# Ref: grafana/grafana@2a93349e3bfb6016dea9ef3f97a30e761a99f6e7
#      apps/dashboard/pkg/migration/schemaversion/README.md
GRAFANA_DASHBOARD_SCHEMA_VERSION = 39


def istio_charts(version: str) -> tuple[Chart, Chart, Chart]:
    """Istio's three charts at the unit's pinned version (the config may pin another patch)."""
    return (
        Chart(ISTIO_BASE.name, version, ISTIO_REPO),
        Chart(ISTIOD.name, version, ISTIO_REPO),
        Chart(ISTIO_GATEWAY.name, version, ISTIO_REPO),
    )
