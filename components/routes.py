"""In-cluster routes for a unit without a BIG-IP (dev), so its HTTP apps are reachable there too.

- http-nginx apps: the same Ingress as behind the BIG-IP, on the unit's NGINX class.
- http-mesh apps: a Gateway on the Istio ingress gateway's plain HTTP port (no BIG-IP terminates
  TLS in front of it, and dev issues no app certificates) and the same VirtualService.
A developer reaches them through `kubectl port-forward` to the NGINX or gateway Service (README,
"Reaching the dev apps"). With a BIG-IP, CisIngress makes these objects instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import config, mesh
from components.bigip.ingress import (
    GATEWAY_SELECTOR,
    app_ingress,
    app_resource,
    http_host,
    istio_virtual_service,
)

HTTP_PORT = 80  # the gateway Service's "http2" port (components/mesh.py gateway_values)


def http_gateway(app: config.App) -> dict[str, Any]:
    host = http_host(app)
    return {
        "selector": GATEWAY_SELECTOR,
        "servers": [
            {
                "port": {"number": HTTP_PORT, "name": f"http-{app.name}", "protocol": "HTTP"},
                "hosts": [host],
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
                app_ingress(name, app, unit.nginx.ingress_class, self._opts())
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
        group, role = "networking.istio.io/v1", f"istio-{kind.lower()}"
        return app_resource(name, app, kind, namespace, spec, opts=self._opts(*deps), group=group, role=role)
