"""A unit without a BIG-IP (dev) still routes its HTTP apps: http-nginx apps through an NGINX
Ingress, http-mesh apps through the Istio ingress gateway (Gateway + VirtualService), reached
from the developer's machine with `kubectl port-forward` (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components import mesh, nginx
from tests.support import stack
from tools import awaits, engine
from tools.validate import Validator

ROOT = Path(__file__).resolve().parent.parent
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
GATEWAY = "kubernetes:networking.istio.io/v1:Gateway"
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"


def _one(run: engine.Run, type_: str) -> engine.Registration:
    [reg] = run.by_type(type_)
    return reg


def test_dev_routes_httpbin_through_an_nginx_ingress(dev: engine.Run) -> None:
    ingress = _one(dev, INGRESS)
    assert ingress.name == "dev-routes-httpbin-ingress"
    assert ingress.inputs["metadata"] == {
        "name": "httpbin",
        "namespace": "httpbin",
        "annotations": nginx.INGRESS_ANNOTATIONS,
    }
    spec = ingress.inputs["spec"]
    assert spec["ingressClassName"] == "nginx"
    [rule] = spec["rules"]
    assert rule["host"] == "httpbin.dev.example.com"
    [path] = rule["http"]["paths"]
    assert path["backend"] == {"service": {"name": "httpbin", "port": {"number": 8000}}}


def test_dev_routes_bookinfo_through_the_istio_ingress_gateway_on_plain_http(dev: engine.Run) -> None:
    gateway, route = _one(dev, GATEWAY), _one(dev, VIRTUAL_SERVICE)
    assert gateway.inputs["metadata"]["namespace"] == mesh.GATEWAY_NAMESPACE
    assert gateway.inputs["spec"] == {
        "selector": {"istio": "ingressgateway"},
        "servers": [
            {
                "port": {"number": 80, "name": "http-bookinfo", "protocol": "HTTP"},
                "hosts": ["bookinfo.dev.example.com"],
            }
        ],
    }
    assert route.inputs["metadata"]["namespace"] == "bookinfo"
    assert route.inputs["spec"]["gateways"] == [f"{mesh.GATEWAY_NAMESPACE}/bookinfo"]
    assert route.inputs["spec"]["hosts"] == ["bookinfo.dev.example.com"]
    [http] = route.inputs["spec"]["http"]
    assert http["route"] == [
        {"destination": {"host": "productpage.bookinfo.svc.cluster.local", "port": {"number": 9080}}}
    ]


def test_the_dev_routes_wait_for_their_controller_and_namespaces(dev: engine.Run) -> None:
    def upstream(type_: str) -> set[str]:
        by_urn = dev.by_urn()
        return {by_urn[u].name for u in dev.upstream(_one(dev, type_))}

    assert {"dev-nginx-release", "dev-namespaces-httpbin"} <= upstream(INGRESS)
    assert {"dev-mesh-istiod", "dev-mesh-gateway-namespace"} <= upstream(GATEWAY)
    assert {"dev-mesh-istiod", "dev-mesh-ns-bookinfo"} <= upstream(VIRTUAL_SERVICE)
    [component] = dev.by_type("cpaas:routes:InClusterRoutes")
    for type_ in (INGRESS, GATEWAY, VIRTUAL_SERVICE):
        assert _one(dev, type_).parent == component.urn


def test_units_with_a_bigip_get_no_in_cluster_routes_since_cis_makes_theirs(prod: engine.Run) -> None:
    assert not prod.by_type("cpaas:routes:InClusterRoutes")
    assert {r.name for r in prod.by_type(INGRESS)} == {
        f"{u}-ingress-httpbin-ingress" for u in ("aws-syd", "azure-mel", "onprem-syd")
    }


def test_the_dev_routes_validate_and_skip_no_wait_they_could_pass(dev: engine.Run, schema_dir: Path) -> None:
    validator = Validator(schema_dir)
    for type_ in (INGRESS, GATEWAY, VIRTUAL_SERVICE):
        reg = _one(dev, type_)
        obj: dict[str, Any] = reg.inputs
        assert validator.k8s_object(obj, "1.34", reg.name) == [], reg.name
    [verdict] = [v for v in awaits.verdicts(dev.registrations) if v.name == "dev-routes-httpbin-ingress"]
    assert verdict.state == "skipped"


def test_the_docs_say_how_to_reach_the_dev_apps_with_the_names_cpaas_uses() -> None:
    page = (ROOT / "docs" / "operations.md").read_text()
    section = page.split("## Reaching the dev apps", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    assert f"-n {nginx.NAMESPACE} port-forward svc/{nginx.SERVICE} " in section
    assert f"-n {mesh.GATEWAY_NAMESPACE} port-forward svc/{mesh.GATEWAY_RELEASE} " in section
    for app in stack("dev").units[0].apps:
        if app.kind.startswith("http"):
            assert f"Host: {app.fqdn}" in section, app.name
