"""NGINX Inc's Ingress Controller (not the retired community ingress-nginx) for non-mesh apps.

Its Service is ClusterIP: CIS in cluster mode sends BIG-IP traffic straight to the controller's
pod IPs, so no NodePort or cloud load balancer sits in the path.
Ref: https://docs.nginx.com/nginx-ingress-controller/installation/installing-nic/installation-with-helm/
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components import config, helm, versions

NAMESPACE = "nginx-ingress"
RELEASE = "nginx-ingress"
# fullname = release name, so the controller Service is "<release>-controller".
SERVICE = f"{RELEASE}-controller"
# pulumi-kubernetes waits for an Ingress (on create, update and refresh) until an address sits in
# its .status.loadBalancer, and nothing writes one: NGINX could report one address per controller
# (reportIngressStatus), while each app has its own BIG-IP virtual address, and dev has none.
# Ref: https://github.com/pulumi/pulumi-kubernetes/blob/v4.32.0/provider/pkg/await/ingress.go
# Ref: https://github.com/nginx/kubernetes-ingress/blob/v5.5.4/charts/nginx-ingress/values.yaml
#   (controller.reportIngressStatus)
INGRESS_ANNOTATIONS = {
    "pulumi.com/skipAwait": "true",
    "cpaas.io/skip-await-why": (
        "nothing reports an address for this Ingress: NGINX's reportIngressStatus is off, as it would "
        "report one address for the whole controller while each app has its own BIG-IP virtual "
        "address (and dev has no BIG-IP)"
    ),
}


def values(nginx: config.Nginx) -> dict[str, Any]:
    """Chart values for the unit's controller. Pure: test it directly."""
    return {
        "fullnameOverride": RELEASE,
        "controller": {
            "kind": "deployment",
            "replicaCount": nginx.replicas,
            "image": {"repository": versions.NGINX_IMAGE, "tag": versions.NGINX_IMAGE_TAG},
            "ingressClass": {
                "name": nginx.ingress_class,
                "create": True,
                "setAsDefaultIngress": False,
            },
            "service": {"create": True, "type": "ClusterIP"},
            "enableCustomResources": True,
            "enableSnippets": False,
            "watchNamespace": ",".join(nginx.namespaces),
            # With a ClusterIP Service there is no address to report; BIG-IP owns the VIP.
            "reportIngressStatus": {"enable": False},
            "podDisruptionBudget": {"enabled": nginx.replicas > 1, "minAvailable": 1},
        },
        "prometheus": {"create": True},
    }


@dataclass(frozen=True)
class NginxIngressArgs:
    nginx: config.Nginx
    # Children wait for these: a component's depends_on does not reach its children.
    after: tuple[pulumi.Resource, ...] = ()


class NginxIngress(pulumi.ComponentResource):
    service_name: str
    namespace: str

    def __init__(self, name: str, args: NginxIngressArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:nginx:NginxIngress", name, None, opts)
        home = helm.home(name, self, NAMESPACE, enforce="baseline", after=args.after)
        chart = versions.NGINX_INGRESS
        self.release = home.release(f"{name}-release", chart, RELEASE, values(args.nginx), timeout=600)
        self.service_name = SERVICE
        self.namespace = NAMESPACE
        self.register_outputs({"service": f"{NAMESPACE}/{SERVICE}"})
