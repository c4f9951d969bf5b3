"""Ingress through the BIG-IP, declared as CIS custom resources (CIS writes the BIG-IP).

- http-mesh apps: CIS VirtualServer + TLSProfile (re-encrypt) to the Istio ingress gateway,
  which routes into the mesh (Gateway + VirtualService); the app's server certificate comes
  from the org PKI and is stored once as a TLS Secret next to the gateway.
- http-nginx apps: CIS VirtualServer (edge TLS) to the NGINX controller, plus an Ingress.
- tcp/udp apps: CIS TransportServer straight to the pods.
All objects carry `f5cr: "true"`, the label CIS selects by default.
Ref: https://clouddocs.f5.com/containers/latest/userguide/crd/
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components import config, mesh, multicluster, nginx
from components.bigip import access, reencrypt
from components.children import waiting
from components.pki import IssuedLeaf

CIS_LABELS = {"f5cr": "true"}
ISTIO_NETWORKING = "networking.istio.io/v1"
GATEWAY_SELECTOR = {"istio": "ingressgateway"}


def template_slug(template: str) -> str:
    """POLICY_TEMPLATE_RAPID_DEPLOYMENT -> rapid-deployment: what names the policy made from it."""
    return template.removeprefix("POLICY_TEMPLATE_").lower().replace("_", "-")


def http_host(app: config.App) -> str:
    """The Host an HTTP app is reached by: config gives every http-mesh and http-nginx app one."""
    if app.fqdn is None:
        raise ValueError(
            f"app {app.name} (kind {app.kind}) has no fqdn, the Host an HTTP route matches; pass an "
            "HTTP app (config gives every http-mesh and http-nginx app an fqdn)"
        )
    return app.fqdn


def waf_template(where: str, app: config.App) -> tuple[config.Waf, str]:
    """The app's WAF settings and the F5 template its policy is created from (`waf.template`);
    `where` names the unit or component asking, for the error."""
    if app.waf is None or app.waf.template is None:
        has = "no waf" if app.waf is None else "waf.policy (an existing policy)"
        raise ValueError(
            f"{where}: app {app.name} has {has}, not waf.template: Pulumi creates a WAF policy only "
            "from a template; pick the apps with waf.templated_apps"
        )
    return app.waf, app.waf.template


def waf_policy_path(unit: str, app: config.App) -> str:
    """The policy a CIS VirtualServer references: the configured one, or the one Pulumi creates
    in /Common (shared, so CIS's partition never points into Pulumi's), named after its template
    so another template is another policy (waf.py)."""
    if app.waf is None:
        raise ValueError(
            f"unit {unit}: app {app.name} has no waf, so it names no WAF policy; set apps[].waf "
            "or build its VirtualServer without one"
        )
    if app.waf.policy is not None:
        return app.waf.policy
    return f"/Common/cpaas-{unit}-{app.name}-waf-{template_slug(waf_template(f'unit {unit}', app)[1])}"


def tls_secret_name(app: config.App) -> str:
    return f"{app.name}-tls"


def _monitor_http(host: str, path: str, port: int | None = None) -> dict[str, Any]:
    monitor: dict[str, Any] = {
        "type": "http",
        "send": f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        "recv": "200",
        "interval": 10,
        "timeout": 31,
    }
    if port is not None:
        monitor["targetPort"] = port
    return monitor


def _virtual_server(
    unit: str, app: config.App, service: str, port: int, monitor: dict[str, Any]
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "host": http_host(app),
        "virtualServerAddress": str(app.vip),
        "virtualServerHTTPSPort": app.port,
        "tlsProfileName": app.name,
        "httpTraffic": "none",
        "pools": [{"path": "/", "service": service, "servicePort": port, "monitor": monitor}],
    }
    if app.waf is not None:
        spec["waf"] = waf_policy_path(unit, app)
    if app.access is not None:
        spec["profileAccess"] = access.profile_path(unit, app)
        policy = access.per_request_policy_path(unit, app)
        if policy is not None:
            spec["policyPerRequestAccess"] = policy
    return spec


def mesh_virtual_server(unit: str, app: config.App) -> dict[str, Any]:
    """CIS VirtualServer for an http-mesh app: BIG-IP terminates TLS, re-encrypts to the gateway."""
    # The gateway's readiness endpoint, on its status port.
    return _virtual_server(
        unit, app, mesh.GATEWAY_RELEASE, 443, _monitor_http(http_host(app), "/healthz/ready", 15021)
    )


def mesh_tls_profile(unit: str, app: config.App) -> dict[str, Any]:
    return {
        "hosts": [http_host(app)],
        "tls": {
            "termination": "reencrypt",
            "clientSSL": tls_secret_name(app),
            # Sends the FQDN as SNI and verifies the gateway against the org root.
            "serverSSL": reencrypt.profile_path(unit, app),
            "reference": "hybrid",
            "clientSSLParams": {"profileReference": "secret"},
            "serverSSLParams": {"profileReference": "bigip"},
        },
    }


def istio_gateway(app: config.App) -> dict[str, Any]:
    host = http_host(app)
    return {
        "selector": GATEWAY_SELECTOR,
        "servers": [
            {
                "port": {"number": 443, "name": f"https-{app.name}", "protocol": "HTTPS"},
                "tls": {"mode": "SIMPLE", "credentialName": tls_secret_name(app)},
                "hosts": [host],
            }
        ],
    }


def istio_virtual_service(app: config.App) -> dict[str, Any]:
    return {
        "hosts": [http_host(app)],
        "gateways": [f"{mesh.GATEWAY_NAMESPACE}/{app.name}"],
        "http": [
            {
                "route": [
                    {
                        "destination": {
                            "host": f"{app.service}.{app.namespace}.svc.cluster.local",
                            "port": {"number": app.service_port},
                        }
                    }
                ]
            }
        ],
    }


def nginx_virtual_server(unit: str, app: config.App) -> dict[str, Any]:
    """CIS VirtualServer for an http-nginx app: edge TLS on the BIG-IP, HTTP to NGINX."""
    return _virtual_server(unit, app, nginx.SERVICE, 80, _monitor_http(http_host(app), "/"))


def edge_tls_profile(app: config.App) -> dict[str, Any]:
    return {
        "hosts": [http_host(app)],
        "tls": {"termination": "edge", "clientSSL": tls_secret_name(app), "reference": "secret"},
    }


def nginx_ingress(app: config.App, ingress_class: str) -> dict[str, Any]:
    return {
        "ingressClassName": ingress_class,
        "rules": [
            {
                "host": http_host(app),
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {
                                "service": {"name": app.service, "port": {"number": app.service_port}}
                            },
                        }
                    ]
                },
            }
        ],
    }


def transport_server(app: config.App) -> dict[str, Any]:
    """CIS TransportServer: L4 straight to the pods (BIG-IP routes to pod IPs)."""
    pool: dict[str, Any] = {"service": app.service, "servicePort": app.service_port}
    if app.kind == "tcp":
        pool["monitor"] = {"type": "tcp", "interval": 10, "timeout": 31}
    return {
        "virtualServerAddress": str(app.vip),
        "virtualServerPort": app.port,
        "mode": "standard",
        "type": app.kind,
        "snat": "auto",
        "pool": pool,
    }


def app_ingress(
    name: str, app: config.App, ingress_class: str, opts: pulumi.ResourceOptions
) -> k8s.networking.v1.Ingress:
    """The Ingress that routes an http-nginx app on NGINX, behind the BIG-IP or in the cluster
    alone (routes.py)."""
    return k8s.networking.v1.Ingress(
        f"{name}-{app.name}-ingress",
        metadata={"name": app.name, "namespace": app.namespace, "annotations": nginx.INGRESS_ANNOTATIONS},
        spec=cast("k8s.networking.v1.IngressSpecArgsDict", nginx_ingress(app, ingress_class)),
        opts=opts,
    )


def app_resource(
    name: str,
    app: config.App,
    kind: str,
    namespace: str,
    spec: dict[str, Any],
    *,
    opts: pulumi.ResourceOptions,
    group: str = "cis.f5.com/v1",
) -> k8s.apiextensions.CustomResource:
    """A custom resource of an app, named after it; CIS's carry the label CIS selects."""
    labels = CIS_LABELS if group.startswith("cis.f5.com") else {}
    role = f"istio-{kind.lower()}" if group == ISTIO_NETWORKING else kind.lower()
    return k8s.apiextensions.CustomResource(
        f"{name}-{app.name}-{role}",
        api_version=group,
        kind=kind,
        metadata={"name": app.name, "namespace": namespace, "labels": {"app": app.name, **labels}},
        spec=spec,
        opts=opts,
    )


@dataclass(frozen=True)
class IngressArgs:
    unit: config.Unit
    certs: dict[str, IssuedLeaf]  # by app name, for the HTTP apps
    # Children wait for these: a component's depends_on does not reach its children.
    after: tuple[pulumi.Resource, ...] = ()


class CisIngress(pulumi.ComponentResource):
    def __init__(self, name: str, args: IngressArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:bigip:CisIngress", name, None, opts)
        self._opts = waiting(self, args.after)
        unit = args.unit
        self._unit, self._config = unit.name, unit
        for app in unit.apps:
            if app.kind == "http-mesh":
                self._mesh_app(name, app, args.certs[app.name])
            elif app.kind == "http-nginx":
                self._nginx_app(name, app, args.certs[app.name], unit.nginx.ingress_class)
            else:
                self._cr(name, app, "TransportServer", app.namespace, transport_server(app))
        self.register_outputs({"apps": [a.name for a in unit.apps]})

    def _tls_secret(self, name: str, app: config.App, namespace: str, cert: IssuedLeaf) -> k8s.core.v1.Secret:
        key: pulumi.Output[str] = pulumi.Output.secret(cert.key_pem)
        return k8s.core.v1.Secret(
            f"{name}-{app.name}-tls",
            metadata={"name": tls_secret_name(app), "namespace": namespace},
            type="kubernetes.io/tls",
            string_data={"tls.crt": cert.chain_pem, "tls.key": key},
            opts=self._opts(),
        )

    def _cr(
        self,
        name: str,
        app: config.App,
        kind: str,
        namespace: str,
        spec: dict[str, Any],
        *deps: pulumi.Resource,
    ) -> k8s.apiextensions.CustomResource:
        if kind in ("VirtualServer", "TransportServer"):
            spec = multicluster.with_services(self._config, app, spec, namespace)
        return app_resource(name, app, kind, namespace, spec, opts=self._opts(*deps))

    def _mesh_app(self, name: str, app: config.App, cert: IssuedLeaf) -> None:
        ns = mesh.GATEWAY_NAMESPACE
        secret = self._tls_secret(name, app, ns, cert)
        istio, service = ISTIO_NETWORKING, istio_virtual_service(app)
        gateway = app_resource(
            name, app, "Gateway", ns, istio_gateway(app), opts=self._opts(secret), group=istio
        )
        app_resource(
            name, app, "VirtualService", app.namespace, service, opts=self._opts(gateway), group=istio
        )
        profile = self._cr(name, app, "TLSProfile", ns, mesh_tls_profile(self._unit, app), secret)
        self._cr(name, app, "VirtualServer", ns, mesh_virtual_server(self._unit, app), profile, gateway)

    def _nginx_app(self, name: str, app: config.App, cert: IssuedLeaf, ingress_class: str) -> None:
        ns = nginx.NAMESPACE
        secret = self._tls_secret(name, app, ns, cert)
        app_ingress(name, app, ingress_class, self._opts())
        profile = self._cr(name, app, "TLSProfile", ns, edge_tls_profile(app), secret)
        self._cr(name, app, "VirtualServer", ns, nginx_virtual_server(self._unit, app), profile)
