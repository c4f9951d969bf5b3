"""Every pinned chart and image in one place (the upstream versions of ../shared/schemas).

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


CALICO_VERSION = "v3.32.1"
CALICO_REPO = "https://docs.tigera.io/calico/charts"
# Ref: https://docs.tigera.io/calico/latest/getting-started/kubernetes/helm
TIGERA_OPERATOR = Chart("tigera-operator", CALICO_VERSION, CALICO_REPO)
CALICO_CRDS_V1 = Chart("crd.projectcalico.org.v1", CALICO_VERSION, CALICO_REPO)

ISTIO_VERSION = "1.30.3"
ISTIO_REPO = "https://istio-release.storage.googleapis.com/charts"
# Ref: https://istio.io/latest/docs/setup/install/helm/
ISTIO_BASE = Chart("base", ISTIO_VERSION, ISTIO_REPO)
ISTIOD = Chart("istiod", ISTIO_VERSION, ISTIO_REPO)
ISTIO_GATEWAY = Chart("gateway", ISTIO_VERSION, ISTIO_REPO)

# NGINX Inc's controller, not the retired community ingress-nginx.
# Ref: https://docs.nginx.com/nginx-ingress-controller/installation/installing-nic/installation-with-helm/
NGINX_INGRESS = Chart("oci://ghcr.io/nginx/charts/nginx-ingress", "2.6.4", "")
NGINX_IMAGE_TAG = "5.5.4"

# Ref: https://clouddocs.f5.com/containers/latest/userguide/kubernetes/#cis-installation
CIS = Chart("f5-bigip-ctlr", "0.0.35", "https://f5networks.github.io/charts/stable")
CIS_IMAGE = "f5networks/k8s-bigip-ctlr"
CIS_VERSION = "2.20.4"

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


def istio_charts(version: str) -> tuple[Chart, Chart, Chart]:
    """Istio's three charts at the unit's pinned version (the config may pin another patch)."""
    return (
        Chart(ISTIO_BASE.name, version, ISTIO_REPO),
        Chart(ISTIOD.name, version, ISTIO_REPO),
        Chart(ISTIO_GATEWAY.name, version, ISTIO_REPO),
    )
