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

from components import config, mesh
from components.bigip.ingress import (
    GATEWAY_SELECTOR,
    ISTIO_NETWORKING,
    app_ingress,
    app_resource,
    http_host,
    istio_virtual_service,
)
from components.children import waiting

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
        children = waiting(self, args.after)
        apps = args.unit.apps
        for app in apps:
            if app.kind == "http-nginx":
                app_ingress(name, app, args.unit.nginx.ingress_class, children())
            elif app.kind == "http-mesh":
                istio, ns, service = ISTIO_NETWORKING, mesh.GATEWAY_NAMESPACE, istio_virtual_service(app)
                gw = app_resource(name, app, "Gateway", ns, http_gateway(app), opts=children(), group=istio)
                app_resource(
                    name, app, "VirtualService", app.namespace, service, opts=children(gw), group=istio
                )
        self.register_outputs({"apps": [a.name for a in apps if a.kind.startswith("http")]})
