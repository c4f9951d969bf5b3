"""DemoWorkloads under the recording mock engine, and its manifest builders directly.

Every rendered object is checked against Kubernetes 1.34's schemas (the units' version).
"""

from __future__ import annotations

import re
from typing import Any

import pulumi_kubernetes as k8s
import pytest

from components import config, demo, versions
from components.demo import DemoArgs, DemoWorkloads
from tests.support import stack
from tools import engine
from tools.validate import Validator, resolve_schema_dir

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
EGRESS_HOST = "api.partner.example.com"
BOOKINFO = ("productpage", "details", "ratings", "reviews")
PINNED = re.compile(r"^[a-z0-9.-]+(/[a-z0-9._-]+)+:[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _run(unit: config.Unit, egress_host: str | None = EGRESS_HOST, name: str = "u-demo") -> engine.Run:
    def program() -> dict[str, Any]:
        workloads = DemoWorkloads(name, DemoArgs(unit, egress_host))
        return {"skipped": workloads.skipped, "workloads": workloads.workloads}

    return engine.run(program)


def _prod_unit() -> config.Unit:
    return stack("prod").units[0]


def _dev_unit() -> config.Unit:
    return stack("dev").units[0]


def _without(unit: config.Unit, kind: str) -> config.Unit:
    return unit.model_copy(update={"apps": tuple(a for a in unit.apps if a.kind != kind)})


def _containers(reg: engine.Registration) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = reg.inputs["spec"]["template"]["spec"]["containers"]
    return containers


def _deployments(run: engine.Run) -> dict[str, engine.Registration]:
    return {r.inputs["metadata"]["name"]: r for r in run.by_type(DEPLOYMENT)}


@pytest.fixture(scope="module")
def prod() -> engine.Run:
    return _run(_prod_unit())


@pytest.fixture(scope="module")
def dev() -> engine.Run:
    return _run(_dev_unit(), egress_host=None)


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(resolve_schema_dir(None))


# ---------------------------------------------------------------------------------------------
# What runs where
# ---------------------------------------------------------------------------------------------


def test_the_component_is_cpaas_demo_demoworkloads_and_every_child_is_named_after_it(
    prod: engine.Run,
) -> None:
    [component] = prod.by_type("cpaas:demo:DemoWorkloads")
    children = [r for r in prod.registrations if r is not component]
    assert children
    for reg in children:
        assert reg.parent == component.urn
        assert re.fullmatch(r"u-demo-[a-z0-9][a-z0-9-]*", reg.name), reg.name


def test_prod_unit_runs_bookinfo_and_the_traffic_generator_in_the_mesh_and_the_rest_in_app_namespaces(
    prod: engine.Run,
) -> None:
    where = {name: reg.inputs["metadata"]["namespace"] for name, reg in _deployments(prod).items()}
    assert where == {
        "productpage-v1": "bookinfo",
        "details-v1": "bookinfo",
        "ratings-v1": "bookinfo",
        "reviews-v1": "bookinfo",
        "reviews-v2": "bookinfo",
        "reviews-v3": "bookinfo",
        "traffic-generator": "bookinfo",
        "httpbin": "httpbin",
        "mosquitto": "mqtt",
    }
    assert prod.outputs["skipped"] == []
    assert sorted(prod.outputs["workloads"]) == sorted(f"{ns}/{name}" for name, ns in where.items())


def test_every_prod_unit_gets_the_same_workloads(prod: engine.Run) -> None:
    # onprem-syd-b has no apps of its own (it serves mqtt through onprem-syd): bookinfo only.
    for unit in (u for u in stack("prod").units if u.apps):
        run = _run(unit, name=f"{unit.name}-demo")
        assert sorted(_deployments(run)) == sorted(_deployments(prod)), unit.name


def test_dev_unit_runs_every_workload_and_without_an_egress_host_says_the_egress_calls_are_skipped(
    dev: engine.Run, prod: engine.Run
) -> None:
    assert sorted(_deployments(dev)) == sorted(_deployments(prod))
    assert dev.outputs["skipped"] == [
        "traffic-generator egress calls: no egress host given, only productpage is called"
    ]


def test_a_unit_without_apps_runs_bookinfo_in_its_first_injected_namespace_and_skips_the_rest() -> None:
    unit = _dev_unit().model_copy(update={"apps": ()})
    run = _run(unit, egress_host=None)
    deployments = _deployments(run)
    assert {r.inputs["metadata"]["namespace"] for r in deployments.values()} == {
        unit.mesh.injected_namespaces[0]
    }
    assert "httpbin" not in deployments
    assert "mosquitto" not in deployments
    assert not run.by_type(CONFIG_MAP)
    assert [s.split(":")[0] for s in run.outputs["skipped"]] == [
        "traffic-generator egress calls",
        "httpbin",
        "mosquitto",
    ]


def test_a_unit_without_a_tcp_app_gets_no_mosquitto_and_lists_it_as_skipped() -> None:
    run = _run(_without(_prod_unit(), "tcp"))
    assert "mosquitto" not in _deployments(run)
    assert not run.by_type(CONFIG_MAP)
    assert run.outputs["skipped"] == ["mosquitto: no tcp app in the unit's apps"]


def test_a_unit_without_a_mesh_namespace_gets_no_bookinfo_and_no_traffic_generator() -> None:
    unit = _dev_unit()
    mesh = unit.mesh.model_copy(update={"injected_namespaces": ()})
    bare = unit.model_copy(update={"apps": (), "mesh": mesh})
    run = _run(bare)
    assert _deployments(run) == {}
    assert [s.split(":")[0] for s in run.outputs["skipped"]] == [
        "bookinfo",
        "traffic-generator",
        "httpbin",
        "mosquitto",
    ]


def test_bookinfo_goes_to_the_bookinfo_apps_namespace_before_the_first_injected_namespace() -> None:
    unit = _prod_unit()
    mesh = unit.mesh.model_copy(update={"injected_namespaces": ("first", "bookinfo")})
    assert demo.bookinfo_namespace(unit.model_copy(update={"mesh": mesh})) == "bookinfo"
    assert demo.bookinfo_namespace(_without(unit, "http-mesh").model_copy(update={"mesh": mesh})) == "first"


def test_httpbin_and_mosquitto_services_take_name_and_port_from_their_apps(prod: engine.Run) -> None:
    services = {
        (r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r for r in prod.by_type(SERVICE)
    }
    ports = {
        key: [(p["port"], p["targetPort"]) for p in r.inputs["spec"]["ports"]] for key, r in services.items()
    }
    assert ports == {
        **{("bookinfo", svc): [(9080, "http")] for svc in BOOKINFO},
        ("httpbin", "httpbin"): [(8000, "http")],
        ("mqtt", "mosquitto"): [(1883, "mqtt")],
    }
    assert services[("mqtt", "mosquitto")].inputs["spec"]["ports"][0]["name"] == "tcp-mqtt"


def test_every_service_selects_a_deployment_in_its_namespace_on_a_named_container_port(
    prod: engine.Run,
) -> None:
    deployments = list(prod.by_type(DEPLOYMENT))
    for svc in prod.by_type(SERVICE):
        ns, selector = svc.inputs["metadata"]["namespace"], svc.inputs["spec"]["selector"]
        matched = [
            d
            for d in deployments
            if d.inputs["metadata"]["namespace"] == ns
            and selector.items() <= d.inputs["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert matched, f"{svc.name} selects nothing"
        for d in matched:
            names = {p["name"]: p["containerPort"] for c in _containers(d) for p in c.get("ports", [])}
            assert svc.inputs["spec"]["ports"][0]["targetPort"] in names, d.name
    assert {p["containerPort"] for c in _containers(_deployments(prod)["httpbin"]) for p in c["ports"]} == {
        8080
    }


# ---------------------------------------------------------------------------------------------
# Identity, images, pod hardening
# ---------------------------------------------------------------------------------------------


def test_every_bookinfo_service_runs_under_its_own_service_account(prod: engine.Run) -> None:
    accounts = {
        (r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"])
        for r in prod.by_type(SERVICE_ACCOUNT)
    }
    assert {("bookinfo", f"bookinfo-{svc}") for svc in BOOKINFO} <= accounts
    assert ("bookinfo", "traffic-generator") in accounts
    for name, reg in _deployments(prod).items():
        pod = reg.inputs["spec"]["template"]["spec"]
        app = reg.inputs["spec"]["template"]["metadata"]["labels"]["app"]
        expected = f"bookinfo-{app}" if app in BOOKINFO else app
        assert pod["serviceAccountName"] == expected, name
        assert (reg.inputs["metadata"]["namespace"], expected) in accounts


def test_every_image_is_pinned_to_an_exact_tag_and_none_is_latest(prod: engine.Run) -> None:
    images = {c["image"] for r in prod.by_type(DEPLOYMENT) for c in _containers(r)}
    for image in images:
        assert PINNED.match(image), image
        assert not image.endswith(":latest"), image
        config.image_ref(image)  # the stack's own pinned-image rule agrees
    bookinfo = f"{versions.BOOKINFO_HUB}/examples-bookinfo"
    assert images == {
        *(f"{bookinfo}-{s}-v1:{versions.BOOKINFO_TAG}" for s in BOOKINFO),
        f"{bookinfo}-reviews-v2:{versions.BOOKINFO_TAG}",
        f"{bookinfo}-reviews-v3:{versions.BOOKINFO_TAG}",
        versions.HTTPBIN_IMAGE,
        versions.MOSQUITTO_IMAGE,
        versions.CURL_IMAGE,
    }


def test_every_deployment_has_requests_limits_a_non_root_user_and_no_api_token(prod: engine.Run) -> None:
    for name, reg in _deployments(prod).items():
        pod = reg.inputs["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in _containers(reg):
            assert set(c["resources"]) == {"requests", "limits"}, name
            assert set(c["resources"]["requests"]) == set(c["resources"]["limits"]) == {"cpu", "memory"}
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            # Images whose USER is root or a name need a numeric uid for runAsNonRoot to pass.
            if not c["image"].startswith(f"{versions.BOOKINFO_HUB}/examples-bookinfo-"):
                assert sc["runAsUser"] > 0, name
    for sa in prod.by_type(SERVICE_ACCOUNT):
        assert sa.inputs["automountServiceAccountToken"] is False


def test_http_workloads_have_http_readiness_probes_mosquitto_a_tcp_one_and_the_generator_none(
    prod: engine.Run,
) -> None:
    for name, reg in _deployments(prod).items():
        [container] = _containers(reg)
        probe = container.get("readinessProbe")
        if name == "traffic-generator":
            assert probe is None
        elif name == "mosquitto":
            assert probe["tcpSocket"] == {"port": "mqtt"}
        else:
            expected = "/status/200" if name == "httpbin" else "/health"
            assert probe["httpGet"] == {"path": expected, "port": "http"}, name


def test_mosquitto_listens_on_1883_from_its_config_map_and_restarts_when_the_config_changes(
    prod: engine.Run,
) -> None:
    [cm] = prod.by_type(CONFIG_MAP)
    conf = cm.inputs["data"]["mosquitto.conf"]
    assert conf.splitlines()[:2] == ["listener 1883", "allow_anonymous true"]
    pod = _deployments(prod)["mosquitto"].inputs["spec"]["template"]
    assert {"name": "config", "configMap": {"name": cm.inputs["metadata"]["name"]}} in pod["spec"]["volumes"]
    assert len(pod["metadata"]["annotations"]["cpaas.io/config-sha256"]) == 64
    assert cm.urn in _deployments(prod)["mosquitto"].dependencies


# ---------------------------------------------------------------------------------------------
# Traffic generator
# ---------------------------------------------------------------------------------------------


def _env(run: engine.Run) -> dict[str, str]:
    [container] = _containers(_deployments(run)["traffic-generator"])
    return {e["name"]: e["value"] for e in container["env"]}


def test_the_traffic_generator_calls_productpage_and_the_egress_host_when_one_is_given(
    prod: engine.Run,
) -> None:
    env = _env(prod)
    assert env["PRODUCTPAGE_URL"] == "http://productpage.bookinfo.svc.cluster.local:9080/productpage"
    assert env["EGRESS_URL"] == f"http://{EGRESS_HOST}/"
    assert int(env["INTERVAL_SECONDS"]) > 0
    [container] = _containers(_deployments(prod)["traffic-generator"])
    script = container["command"][-1]
    assert "sleep" in script
    # Bounded output: bodies go to /dev/null, each call prints one line.
    assert script.count("-o /dev/null") == script.count("curl ") == 2
    assert "$(" not in script  # nothing for Kubernetes' $(VAR) expansion to touch
    # The egress host lives only in the mesh's ServiceEntry: the pod resolves it to the BIG-IP VIP.
    pod = _deployments(prod)["traffic-generator"].inputs["spec"]["template"]["spec"]
    assert pod["hostAliases"] == [{"ip": "10.10.17.100", "hostnames": [EGRESS_HOST]}]


def test_the_traffic_generator_makes_no_egress_calls_without_an_egress_host(dev: engine.Run) -> None:
    for run in (dev, _run(_prod_unit(), egress_host=None)):
        assert set(_env(run)) == {"PRODUCTPAGE_URL", "INTERVAL_SECONDS"}
        assert "hostAliases" not in _deployments(run)["traffic-generator"].inputs["spec"]["template"]["spec"]


def test_fails_an_egress_host_with_a_scheme_path_or_shell_characters() -> None:
    for bad in ("https://api.example.com", "api.example.com/x", "api;rm -rf", "API.example.com", ""):
        with pytest.raises(ValueError, match="not an egress host"):
            demo.traffic_generator_deployment("bookinfo", bad)
        with pytest.raises(ValueError, match="not an egress host"):
            _run(_prod_unit(), egress_host=bad)
    assert demo.check_egress_host("egress.bank.internal:8443") == "egress.bank.internal:8443"


def test_fails_a_bookinfo_workload_that_upstream_does_not_ship() -> None:
    with pytest.raises(ValueError, match="not a bookinfo workload"):
        demo.bookinfo_deployment("reviews", "bookinfo", "v4")
    with pytest.raises(ValueError, match="not a bookinfo workload"):
        demo.bookinfo_deployment("mongodb", "bookinfo")


# ---------------------------------------------------------------------------------------------
# Order and validity
# ---------------------------------------------------------------------------------------------


def test_every_child_waits_for_the_after_resources_and_deployments_for_their_service_account() -> None:
    def program() -> None:
        ns = k8s.core.v1.Namespace("ns", metadata={"name": "bookinfo"})
        DemoWorkloads("u-demo", DemoArgs(_prod_unit(), EGRESS_HOST, after=(ns,)))

    run = engine.run(program)
    ns_urn = run.get("ns").urn
    accounts = {
        (r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r.urn
        for r in run.by_type(SERVICE_ACCOUNT)
    }
    kube = [r for r in run.registrations if r.type.startswith("kubernetes:") and r.name != "ns"]
    assert len(kube) == 23  # 7 ServiceAccounts, 6 Services, 1 ConfigMap, 9 Deployments
    for reg in kube:
        assert ns_urn in reg.dependencies, reg.name
    for reg in run.by_type(DEPLOYMENT):
        sa = (
            reg.inputs["metadata"]["namespace"],
            reg.inputs["spec"]["template"]["spec"]["serviceAccountName"],
        )
        assert accounts[sa] in reg.dependencies, reg.name


@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_every_rendered_object_validates_against_kubernetes_1_34(
    stack_name: str, validator: Validator
) -> None:
    for unit in stack(stack_name).units:
        run = _run(unit, name=f"{unit.name}-demo")
        objects = [r for r in run.registrations if r.type.startswith("kubernetes:")]
        assert objects
        for reg in objects:
            # The inputs are the object: apiVersion, kind, metadata, spec (data, top-level fields).
            assert validator.k8s_object(reg.inputs, "1.34", reg.name) == [], reg.name


def test_fails_validation_for_a_deployment_whose_probe_port_is_not_a_port(validator: Validator) -> None:
    manifest = demo.httpbin_deployment("httpbin")
    manifest["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = {"x": 1}
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", **manifest}
    assert validator.k8s_object(obj, "1.34", "httpbin") != []


def test_the_pure_builders_match_what_the_component_registers(prod: engine.Run) -> None:
    deployments = _deployments(prod)
    for svc, deployed in demo.BOOKINFO_VERSIONS.items():
        for version in deployed:
            built = demo.bookinfo_deployment(svc, "bookinfo", version)
            assert deployments[f"{svc}-{version}"].inputs["spec"] == built["spec"]
    assert deployments["httpbin"].inputs["spec"] == demo.httpbin_deployment("httpbin")["spec"]
    assert deployments["mosquitto"].inputs["spec"] == demo.mosquitto_deployment("mqtt")["spec"]
    built = demo.traffic_generator_deployment("bookinfo", EGRESS_HOST, "10.10.17.100")
    assert deployments["traffic-generator"].inputs["spec"] == built["spec"]
