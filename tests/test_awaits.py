"""Every object pulumi-kubernetes waits for can reach the state it waits for in the topology
cpaas builds, or skips the wait saying why (tools/awaits.py is the model)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import demo, nginx
from components.bigip import ingress
from tests.support import run_build, stack
from tools import awaits, engine

# What the model cannot see and a deploy rests on; README "Deploy" lists the StorageClass one.
EXPECTED_ASSUMPTIONS = {
    "dev": {
        "what chart base renders becomes ready (not modelled)",
        "what chart istiod renders becomes ready (not modelled)",
        "what chart tigera-operator renders becomes ready (not modelled)",
        "what chart gateway renders becomes ready (only its Service type is modelled)",
        "what chart nginx-ingress renders becomes ready (only its Service type is modelled)",
    },
    "prod": {
        awaits.DEFAULT_STORAGE_CLASS,
        "what chart base renders becomes ready (not modelled)",
        "what chart istiod renders becomes ready (not modelled)",
        "what chart tigera-operator renders becomes ready (not modelled)",
        "what chart f5-bigip-ctlr renders becomes ready (not modelled)",
        "what chart jaeger renders becomes ready (not modelled)",
        "what chart kube-prometheus-stack renders becomes ready (not modelled)",
        "what chart gateway renders becomes ready (only its Service type is modelled)",
        "what chart nginx-ingress renders becomes ready (only its Service type is modelled)",
    },
}


@pytest.fixture(
    scope="module",
    params=[("dev", False), ("dev", True), ("prod", False), ("prod", True)],
    ids=lambda p: "-".join([p[0], "preview" if p[1] else "update"]),
)
def built(request: pytest.FixtureRequest) -> tuple[str, engine.Run]:
    """Each stack as `pulumi up` and as `pulumi preview` of a new stack (provider-computed
    outputs unknown) run it."""
    name, preview = request.param
    return name, run_build(stack(name), name, preview=preview)


def _run(program: Callable[[], None]) -> list[str]:
    def wrapped() -> dict[str, Any]:
        program()
        return {}

    return awaits.problems(engine.run(wrapped).registrations)


# ---------------------------------------------------------------------------------------------
# The stacks
# ---------------------------------------------------------------------------------------------


def test_every_awaited_object_in_dev_and_prod_reaches_its_state_or_skips_the_wait_saying_why(
    built: tuple[str, engine.Run],
) -> None:
    _, run = built
    verdicts = awaits.verdicts(run.registrations)
    assert verdicts
    assert awaits.problems(run.registrations) == []
    for verdict in verdicts:
        if verdict.state == "skipped":
            assert verdict.reasons and len(verdict.reasons[0]) > 40, verdict


def test_the_waits_rest_only_on_the_documented_assumptions(built: tuple[str, engine.Run]) -> None:
    name, run = built
    assert awaits.assumptions(run.registrations) == EXPECTED_ASSUMPTIONS[name]


def test_every_ingress_skips_the_wait_because_no_controller_writes_its_address(
    built: tuple[str, engine.Run],
) -> None:
    _, run = built
    found = [v for v in awaits.verdicts(run.registrations) if v.kind == "networking.k8s.io/v1/Ingress"]
    assert found
    for verdict in found:
        assert verdict.state == "skipped"
        assert "reportIngressStatus" in verdict.reasons[0]


def test_the_model_covers_every_kind_pulumi_kubernetes_awaits_that_cpaas_may_render() -> None:
    assert set(awaits.AWAITED) == {
        "apps/v1/Deployment",
        "apps/v1/StatefulSet",
        "apps/v1/DaemonSet",
        "batch/v1/Job",
        "v1/Pod",
        "v1/Service",
        "networking.k8s.io/v1/Ingress",
        "v1/PersistentVolumeClaim",
        "helm.sh/v3/Release",
    }


# ---------------------------------------------------------------------------------------------
# The model refuses what would hang a deploy
# ---------------------------------------------------------------------------------------------

NS = "apps"


def _ns() -> k8s.core.v1.Namespace:
    return k8s.core.v1.Namespace("ns", metadata={"name": NS})


def _httpbin(*deps: pulumi.Resource, name: str = "httpbin", **pod: Any) -> k8s.apps.v1.Deployment:
    manifest = demo.httpbin_deployment(NS)
    manifest["spec"]["template"]["spec"].update(pod)
    return k8s.apps.v1.Deployment(
        name,
        metadata=manifest["metadata"],
        spec=manifest["spec"],
        opts=pulumi.ResourceOptions(depends_on=list(deps)),
    )


def _service(*deps: pulumi.Resource, **spec: Any) -> k8s.core.v1.Service:
    body: dict[str, Any] = {"selector": {"app": "httpbin"}, "ports": [{"port": 80, "targetPort": "http"}]}
    return k8s.core.v1.Service(
        "svc",
        metadata={"name": "httpbin", "namespace": NS},
        spec={**body, **spec},
        opts=pulumi.ResourceOptions(depends_on=list(deps)),
    )


def _account(ns: pulumi.Resource) -> k8s.core.v1.ServiceAccount:
    return k8s.core.v1.ServiceAccount(
        "sa", metadata={"name": "httpbin", "namespace": NS}, opts=pulumi.ResourceOptions(depends_on=[ns])
    )


def test_a_workload_and_its_service_made_in_order_are_reachable() -> None:
    def program() -> None:
        ns = _ns()
        _httpbin(ns, _account(ns))
        _service(ns)

    assert _run(program) == []


def test_fails_a_load_balancer_service_in_a_topology_without_a_load_balancer() -> None:
    def program() -> None:
        ns = _ns()
        _httpbin(ns, _account(ns))
        _service(ns, type="LoadBalancer")

    [problem] = _run(program)
    assert problem.startswith("svc (v1/Service): type LoadBalancer never gets an address")


def test_fails_a_service_that_selects_no_pods_cpaas_creates_or_names_a_port_they_lack() -> None:
    def program() -> None:
        ns = _ns()
        _httpbin(ns, _account(ns))
        _service(ns, selector={"app": "nothing"})

    assert _run(program) == ["svc (v1/Service): selects no pods cpaas creates in apps ({'app': 'nothing'})"]

    def wrong_port() -> None:
        ns = _ns()
        _httpbin(ns, _account(ns))
        _service(ns, ports=[{"port": 80, "targetPort": "web"}])

    assert _run(wrong_port) == ["svc (v1/Service): targetPort 'web' is no port name of the pods it selects"]


def test_fails_a_workload_that_waits_for_the_service_that_waits_for_its_pods() -> None:
    def program() -> None:
        ns = _ns()
        _httpbin(ns, _account(ns), _service(ns))

    assert _run(program) == ["svc (v1/Service): httpbin waits for this Service, which waits for its pods"]


def test_fails_a_workload_whose_namespace_account_or_config_map_cpaas_does_not_make_first() -> None:
    def program() -> None:
        ns = _ns()
        _account(ns)
        _httpbin(ns, volumes=[{"name": "c", "configMap": {"name": "conf"}}])

    assert _run(program) == [
        "httpbin (apps/v1/Deployment): does not wait for ServiceAccount apps/httpbin; "
        "needs ConfigMap apps/conf, which cpaas does not create"
    ]

    def no_namespace() -> None:
        _httpbin(serviceAccountName="default")

    assert _run(no_namespace) == [
        "httpbin (apps/v1/Deployment): needs Namespace apps, which cpaas does not create"
    ]


def test_fails_a_readiness_probe_on_a_port_name_the_container_lacks() -> None:
    manifest = demo.httpbin_deployment(NS)
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["httpGet"]["port"] = "admin"

    def program() -> None:
        ns = _ns()
        _httpbin(ns, _account(ns), containers=[container])

    assert _run(program) == [
        "httpbin (apps/v1/Deployment): httpbin: readinessProbe on port 'admin', which it lacks"
    ]


def _ingress(annotations: dict[str, str] | None = None, class_name: str = "nginx") -> None:
    app = next(a for a in stack("prod").unit("onprem-syd").apps if a.name == "httpbin")
    spec = ingress.nginx_ingress(app, class_name)
    metadata: dict[str, Any] = {"name": "httpbin", "namespace": NS, "annotations": annotations or {}}
    k8s.networking.v1.Ingress("ing", metadata=metadata, spec=spec)  # type: ignore[arg-type]


def _nginx_release(values: dict[str, Any]) -> None:
    k8s.helm.v3.Release(
        "nginx", chart="oci://ghcr.io/nginx/charts/nginx-ingress", namespace="default", values=values
    )


def test_fails_an_ingress_whose_class_reports_no_address_and_passes_one_whose_class_does() -> None:
    values = nginx.values(stack("prod").unit("onprem-syd").nginx)
    assert _run(lambda: (_nginx_release(values), _ingress())) == [
        "ing (networking.k8s.io/v1/Ingress): no controller of ingress class 'nginx' reports an "
        "address into .status.loadBalancer"
    ]
    reporting = {
        "controller": {
            "service": {"type": "ClusterIP"},
            "ingressClass": {"name": "nginx"},
            "reportIngressStatus": {"enable": True},
            "config": {"entries": {"external-status-address": "192.0.2.80"}},
        }
    }
    assert _run(lambda: (_nginx_release(reporting), _ingress())) == []
    assert len(_run(lambda: (_nginx_release(reporting), _ingress(class_name="other")))) == 1


def test_fails_a_skip_await_that_does_not_say_why() -> None:
    assert _run(lambda: _ingress({awaits.SKIP_AWAIT: "true"})) == [
        "ing (networking.k8s.io/v1/Ingress): "
        f"{awaits.SKIP_AWAIT} without a {awaits.SKIP_AWAIT_WHY} saying why"
    ]
    assert (
        _run(lambda: _ingress({awaits.SKIP_AWAIT: "true", awaits.SKIP_AWAIT_WHY: "nothing reports one"}))
        == []
    )


def test_fails_a_release_whose_chart_renders_a_load_balancer_service() -> None:
    [problem] = _run(lambda: _nginx_release({"controller": {"ingressClass": {"name": "nginx"}}}))
    assert problem.startswith(
        "nginx (helm.sh/v3/Release): chart nginx-ingress renders a Service that type LoadBalancer"
    )
    assert _run(lambda: _nginx_release({"controller": {"service": {"create": False}}})) == []


def test_fails_a_workload_that_does_not_wait_for_the_units_cni(dev: engine.Run) -> None:
    run = dev
    regs = [
        engine.Registration(**{**r.__dict__, "dependencies": []}) if r.name == "dev-demo-httpbin" else r
        for r in run.registrations
    ]
    [problem] = [p for p in awaits.problems(regs) if p.startswith("dev-demo-httpbin ")]
    assert "does not wait for the CNI" in problem
