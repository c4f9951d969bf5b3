"""In-cluster routes for a unit without a BIG-IP (dev), so its HTTP apps are reachable there too.

- http-nginx apps: the same Ingress as behind the BIG-IP, on the unit's NGINX class.
- http-mesh apps: a Gateway on the Istio ingress gateway's plain HTTP port (no BIG-IP terminates
  TLS in front of it, and dev issues no app certificates) and the same VirtualService.
A developer reaches them through `kubectl port-forward` to the NGINX or gateway Service (README,
"Reaching the dev apps"). With a BIG-IP, CisIngress makes these objects instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components import config, mesh, nginx
from components.bigip.ingress import GATEWAY_SELECTOR, istio_virtual_service, nginx_ingress

HTTP_PORT = 80  # the gateway Service's "http2" port (components/mesh.py gateway_values)


def http_gateway(app: config.App) -> dict[str, Any]:
    assert app.fqdn
    return {
        "selector": GATEWAY_SELECTOR,
        "servers": [
            {
                "port": {"number": HTTP_PORT, "name": f"http-{app.name}", "protocol": "HTTP"},
                "hosts": [app.fqdn],
            }
        ],
    }


@dataclass(frozen=True)
class RoutesArgs:
    unit: config.Unit
    # Children wait for these (NGINX, istiod, the namespaces): a component's depends_on does not
    # reach its children.
    after: tuple[pulumi.Resource, ...] = ()


class InClusterRoutes(pulumi.ComponentResource):
    def __init__(self, name: str, args: RoutesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:routes:InClusterRoutes", name, None, opts)
        self._after = list(args.after)
        unit = args.unit
        for app in unit.apps:
            if app.kind == "http-nginx":
                k8s.networking.v1.Ingress(
                    f"{name}-{app.name}-ingress",
                    metadata={
                        "name": app.name,
                        "namespace": app.namespace,
                        "annotations": nginx.INGRESS_ANNOTATIONS,
                    },
                    spec=cast(
                        "k8s.networking.v1.IngressSpecArgsDict", nginx_ingress(app, unit.nginx.ingress_class)
                    ),
                    opts=self._opts(),
                )
            elif app.kind == "http-mesh":
                gateway = self._istio(name, app, "Gateway", mesh.GATEWAY_NAMESPACE, http_gateway(app))
                self._istio(name, app, "VirtualService", app.namespace, istio_virtual_service(app), gateway)
        self.register_outputs({"apps": [a.name for a in unit.apps if a.kind.startswith("http")]})

    def _opts(self, *deps: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=[*self._after, *deps])

    def _istio(
        self,
        name: str,
        app: config.App,
        kind: str,
        namespace: str,
        spec: dict[str, Any],
        *deps: pulumi.Resource,
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            f"{name}-{app.name}-istio-{kind.lower()}",
            api_version="networking.istio.io/v1",
            kind=kind,
            metadata={"name": app.name, "namespace": namespace, "labels": {"app": app.name}},
            spec=spec,
            opts=self._opts(*deps),
        )
