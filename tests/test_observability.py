"""Observability per unit: Prometheus, Grafana dashboards as code, Jaeger tracing wired into Istio.

Helm releases are opaque under mocks, so their values are asserted directly. Upstream ships no
values.schema.json for kube-prometheus-stack 88.5.3 or jaeger 4.11.1: every values path we set is
checked against the list below, each entry verified in the upstream values.yaml (or the template
that reads it) at the pinned tag.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from components import config, mesh, observability, versions
from components.observability import Observability
from tests.support import raw_stack, run_build, stack
from tools import engine, graph, render
from tools.validate import Validator, resolve_schema_dir

OBS_TYPE = "cpaas:observability:Observability"
RELEASE = "kubernetes:helm.sh/v3:Release"
PROD_UNITS = ("aws-syd", "azure-mel", "onprem-syd", "onprem-syd-b")

# Paths verified in kube-prometheus-stack 88.5.3 values.yaml (prometheus-community/helm-charts,
# tag kube-prometheus-stack-88.5.3) and, under `grafana.`, the grafana chart 12.11.1 it depends on
# (grafana-community/helm-charts, tag grafana-12.11.1). A path ending in a list or a free-form map
# (storageSpec, resources) is a leaf.
KPS_PATHS = {
    "cleanPrometheusOperatorObjectNames",
    "alertmanager.enabled",
    "kubeControllerManager.enabled",
    "kubeScheduler.enabled",
    "kubeEtcd.enabled",
    "kubeProxy.enabled",
    "prometheus.prometheusSpec.retention",
    "prometheus.prometheusSpec.retentionSize",
    "prometheus.prometheusSpec.storageSpec",
    "prometheus.prometheusSpec.resources",
    "prometheus.additionalServiceMonitors",
    "prometheus.additionalPodMonitors",
    "grafana.persistence.enabled",
    "grafana.persistence.type",
    "grafana.persistence.accessModes",
    "grafana.persistence.size",
    "grafana.deploymentStrategy",
    "grafana.sidecar.dashboards.enabled",
    "grafana.sidecar.dashboards.label",
    "grafana.sidecar.dashboards.labelValue",
    "grafana.sidecar.dashboards.searchNamespace",
    "grafana.additionalDataSources",
}
# Item keys the chart's templates/prometheus/servicemonitors.yaml and podmonitors.yaml read.
SERVICE_MONITOR_KEYS = {"name", "jobLabel", "targetLabels", "selector", "namespaceSelector", "endpoints"}
POD_MONITOR_KEYS = {"name", "jobLabel", "selector", "namespaceSelector", "podMetricsEndpoints"}
# Verified in jaeger chart 4.11.1 values.yaml and templates/jaeger/jaeger-deploy.yaml
# (jaeger.resources is read by the template; values.yaml shows it commented out).
JAEGER_PATHS = {
    "fullnameOverride",
    "userconfig",
    "jaeger.replicas",
    "jaeger.image.repository",
    "jaeger.image.tag",
    "jaeger.resources",
    "jaeger.extraVolumes",
    "jaeger.extraVolumeMounts",
}
_LEAVES = {"prometheus.prometheusSpec.storageSpec", "prometheus.prometheusSpec.resources", "userconfig"}
_LEAVES |= {"grafana.deploymentStrategy", "jaeger.resources"}


def _paths(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in _LEAVES:
            yield from _paths(value, f"{path}.")
        else:
            yield path


def _unit_of(run: engine.Run, reg: engine.Registration) -> str:
    unit = graph.unit_of(reg, run.by_urn())
    assert unit is not None, f"{reg.name} is outside every unit"
    return unit


def _children(run: engine.Run, component: engine.Registration) -> list[engine.Registration]:
    return [r for r in run.registrations if r.parent == component.urn]


def _unit(name: str, **update: Any) -> config.Unit:
    base = stack("prod").unit(name)
    return base.model_copy(update=update)


def _obs(**fields: Any) -> config.Observability:
    return config.Observability.model_validate(fields)


# ---------------------------------------------------------------------------------------------
# On by default in prod only
# ---------------------------------------------------------------------------------------------


def test_observability_is_on_by_default_in_prod_and_off_in_dev_and_test() -> None:
    default = config.Observability()
    assert observability.enabled(default, "prod") is True
    assert observability.enabled(default, "dev") is False
    assert observability.enabled(default, "test") is False
    assert observability.enabled(_obs(enabled=True), "dev") is True
    assert observability.enabled(_obs(enabled=False), "prod") is False


def test_every_prod_unit_gets_metrics_dashboards_and_tracing(prod: engine.Run) -> None:
    components = prod.by_type(OBS_TYPE)
    assert sorted(_unit_of(prod, c) for c in components) == sorted(PROD_UNITS)
    for component in components:
        unit = _unit_of(prod, component)
        assert component.name == f"{unit}-observability"
        children = {r.name.removeprefix(f"{component.name}-"): r for r in _children(prod, component)}
        assert set(children) == {
            "namespace",
            "prometheus",
            "dashboard-mesh",
            "dashboard-nginx",
            "jaeger-storage",
            "jaeger",
        }
        assert children["namespace"].inputs["metadata"]["name"] == observability.NAMESPACE
        for role in ("prometheus", "jaeger"):
            assert children[role].type == RELEASE
            assert children[role].inputs["namespace"] == observability.NAMESPACE
        assert children["prometheus"].inputs["chart"] == versions.KUBE_PROMETHEUS_STACK.name
        assert children["prometheus"].inputs["version"] == versions.KUBE_PROMETHEUS_STACK.version
        assert children["jaeger"].inputs["version"] == versions.JAEGER.version


def test_dev_has_no_observability_unless_enabled_and_says_so(dev: engine.Run) -> None:
    assert not dev.by_type(OBS_TYPE)
    assert "observability: off (on by default in prod only)" in dev.outputs["units"]["dev"]["skipped"]
    raw = raw_stack("dev")
    raw["units"][0]["observability"] = {"enabled": True, "prometheusStorage": "5Gi"}
    enabled = run_build(config.parse_stack(raw), "dev")
    [component] = enabled.by_type(OBS_TYPE)
    assert component.name == "dev-observability"
    release = enabled.get("dev-observability-prometheus")
    assert release.inputs["values"]["prometheus"]["prometheusSpec"]["storageSpec"] == {
        "volumeClaimTemplate": {
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}
        }
    }
    assert "observability: off" not in " ".join(enabled.outputs["units"]["dev"]["skipped"])


def test_a_prod_unit_can_turn_observability_off() -> None:
    raw = raw_stack("prod")
    raw["units"][1]["observability"] = {"enabled": False}
    run = run_build(config.parse_stack(raw), "prod")
    assert sorted(_unit_of(run, c) for c in run.by_type(OBS_TYPE)) == [
        "aws-syd",
        "onprem-syd",
        "onprem-syd-b",
    ]


def test_observability_waits_for_the_cni(prod: engine.Run) -> None:
    ns = prod.get("onprem-syd-observability-namespace")
    assert prod.get("onprem-syd-calico-api-ready").urn in ns.dependencies
    for role in ("prometheus", "jaeger", "dashboard-mesh", "jaeger-storage"):
        assert ns.urn in prod.get(f"onprem-syd-observability-{role}").dependencies
    assert prod.get("onprem-syd-observability-jaeger-storage").urn in (
        prod.get("onprem-syd-observability-jaeger").dependencies
    )


# ---------------------------------------------------------------------------------------------
# Storage and retention from config
# ---------------------------------------------------------------------------------------------


def test_storage_and_retention_flow_from_config_into_prometheus_grafana_and_jaeger(prod: engine.Run) -> None:
    # aws-syd sets its sizes in Pulumi.prod.yaml; azure-mel keeps the defaults.
    expected = {
        "aws-syd": ("30d", "100Gi", "85GiB", "10Gi", "168h", "50Gi"),
        "azure-mel": ("15d", "50Gi", "43520MiB", "10Gi", "72h", "20Gi"),
    }
    for unit, (retention, storage, size, grafana, ttl, traces) in expected.items():
        values = prod.get(f"{unit}-observability-prometheus").inputs["values"]
        spec = values["prometheus"]["prometheusSpec"]
        assert spec["retention"] == retention
        assert spec["retentionSize"] == size
        claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
        assert claim["resources"]["requests"]["storage"] == storage
        assert values["grafana"]["persistence"]["size"] == grafana
        jaeger = prod.get(f"{unit}-observability-jaeger").inputs["values"]
        badger = jaeger["userconfig"]["extensions"]["jaeger_storage"]["backends"]["primary"]["badger"]
        assert badger["ttl"] == {"spans": ttl}
        pvc = prod.get(f"{unit}-observability-jaeger-storage").inputs
        assert pvc["spec"]["resources"]["requests"]["storage"] == traces
        assert pvc["metadata"]["name"] == observability.BADGER_CLAIM


def test_values_functions_use_the_configured_sizes() -> None:
    obs = _obs(
        prometheus_retention="2w",
        prometheus_storage="1Ti",
        grafana_storage="20Gi",
        tracing_retention="3d",
        tracing_storage="200Gi",
    )
    unit = _unit("onprem-syd", observability=obs)
    values = observability.prometheus_stack_values(unit)
    assert values["prometheus"]["prometheusSpec"]["retention"] == "2w"
    assert values["prometheus"]["prometheusSpec"]["retentionSize"] == "891289MiB"
    assert values["grafana"]["persistence"]["size"] == "20Gi"
    assert observability.badger_claim(obs)["resources"]["requests"]["storage"] == "200Gi"
    ttl = observability.jaeger_config(obs)["extensions"]["jaeger_storage"]["backends"]["primary"]
    assert ttl["badger"]["ttl"] == {"spans": "72h"}


@pytest.mark.parametrize(
    ("storage", "size"), [("50Gi", "43520MiB"), ("20Gi", "17GiB"), ("1Ti", "891289MiB"), ("100Mi", "85MiB")]
)
def test_prometheus_may_fill_85_percent_of_its_volume(storage: str, size: str) -> None:
    assert observability.retention_size(storage) == size


@pytest.mark.parametrize(("duration", "go"), [("72h", "72h"), ("7d", "168h"), ("2w", "336h")])
def test_config_durations_become_go_durations_for_jaeger(duration: str, go: str) -> None:
    assert observability.go_duration(duration) == go


@pytest.mark.parametrize("bad", ["", "10G", "0Gi", "1.5Gi"])
def test_fails_a_storage_size_that_is_not_mi_gi_or_ti(bad: str) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        observability.retention_size(bad)


@pytest.mark.parametrize("bad", ["", "10m", "1y", "0d"])
def test_fails_a_duration_that_is_not_hours_days_or_weeks(bad: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        observability.go_duration(bad)


# ---------------------------------------------------------------------------------------------
# What Prometheus scrapes
# ---------------------------------------------------------------------------------------------


def test_prometheus_scrapes_istiod_every_istio_proxy_nginx_and_jaeger_through_the_chart() -> None:
    values = observability.prometheus_stack_values(_unit("onprem-syd"))
    services = {m["name"]: m for m in values["prometheus"]["additionalServiceMonitors"]}
    pods = {m["name"]: m for m in values["prometheus"]["additionalPodMonitors"]}
    assert set(services) == {"istiod", "jaeger"}
    assert set(pods) == {"istio-proxies", "nginx-ingress"}
    istiod = services["istiod"]
    assert istiod["endpoints"][0]["port"] == "http-monitoring"  # :15014 in the istiod chart
    assert istiod["namespaceSelector"] == {"matchNames": [mesh.NAMESPACE]}
    assert istiod["selector"]["matchLabels"] == {"app": "istiod", "istio": "pilot"}
    proxies = pods["istio-proxies"]
    assert proxies["namespaceSelector"] == {"any": True}
    endpoint = proxies["podMetricsEndpoints"][0]
    assert endpoint["path"] == "/stats/prometheus"
    keep = [r for r in endpoint["relabelings"] if r["action"] == "keep"]
    assert keep[0] == {
        "action": "keep",
        "sourceLabels": ["__meta_kubernetes_pod_container_name"],
        "regex": "istio-proxy",
    }
    address = next(r for r in endpoint["relabelings"] if r.get("targetLabel") == "__address__")
    assert address["sourceLabels"][0] == "__meta_kubernetes_pod_annotation_prometheus_io_port"
    nginx_monitor = pods["nginx-ingress"]
    assert nginx_monitor["podMetricsEndpoints"][0]["port"] == "prometheus"  # :9113 in the NGINX chart
    assert nginx_monitor["namespaceSelector"] == {"matchNames": ["nginx-ingress"]}
    assert services["jaeger"]["endpoints"][0]["port"] == "internal-metrics"
    for monitor in services.values():
        assert set(monitor) <= SERVICE_MONITOR_KEYS
    for monitor in pods.values():
        assert set(monitor) <= POD_MONITOR_KEYS


def test_nginx_is_scraped_only_where_it_runs_and_exports_metrics() -> None:
    from components import nginx

    assert nginx.values(config.Nginx())["prometheus"]["create"] is True
    unit = _unit("aws-syd", nginx=config.Nginx(enabled=False), apps=())
    values = observability.prometheus_stack_values(unit)
    assert [m["name"] for m in values["prometheus"]["additionalPodMonitors"]] == ["istio-proxies"]
    assert set(observability.dashboards(unit)) == {"cpaas-dashboard-mesh"}


def test_control_plane_scrapes_only_where_the_cluster_exposes_its_control_plane() -> None:
    for unit, expected in (("onprem-syd", True), ("aws-syd", False), ("azure-mel", False)):
        values = observability.prometheus_stack_values(_unit(unit))
        for key in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy"):
            assert values[key] == {"enabled": expected}, (unit, key)


def test_grafana_gets_no_fixed_admin_password_and_reads_dashboards_from_its_namespace() -> None:
    values = observability.prometheus_stack_values(_unit("aws-syd"))
    grafana = values["grafana"]
    assert "adminPassword" not in grafana
    assert "admin" not in grafana
    assert grafana["sidecar"]["dashboards"] == {
        "enabled": True,
        "label": "grafana_dashboard",
        "labelValue": "1",
        "searchNamespace": observability.NAMESPACE,
    }
    [jaeger] = grafana["additionalDataSources"]
    assert jaeger["type"] == "jaeger"
    assert jaeger["url"] == "http://jaeger-collector.observability.svc.cluster.local:16686"


# ---------------------------------------------------------------------------------------------
# Helm values against upstream
# ---------------------------------------------------------------------------------------------


def test_every_values_path_we_set_exists_in_the_pinned_upstream_charts(prod: engine.Run) -> None:
    for unit in PROD_UNITS:
        kps = prod.get(f"{unit}-observability-prometheus").inputs["values"]
        assert set(_paths(kps)) <= KPS_PATHS, set(_paths(kps)) - KPS_PATHS
        jaeger = prod.get(f"{unit}-observability-jaeger").inputs["values"]
        assert set(_paths(jaeger)) <= JAEGER_PATHS, set(_paths(jaeger)) - JAEGER_PATHS


def test_the_render_checks_both_charts_top_level_keys_and_skips_neither() -> None:
    validator = Validator(resolve_schema_dir(None))
    unit = _unit("aws-syd")
    assert (
        validator.helm_values("kube-prometheus-stack", observability.prometheus_stack_values(unit), "f") == []
    )
    assert validator.helm_values("jaeger", observability.jaeger_values(unit.observability), "f") == []
    assert validator.checked["helm-values-keys"] == 2
    assert not validator.skipped
    wrong = validator.helm_values("jaeger", {"collector": {"enabled": True}}, "f")
    assert [v.path for v in wrong] == ["collector"]


def test_every_rendered_kubernetes_object_of_observability_validates(prod: engine.Run) -> None:
    validator = Validator(resolve_schema_dir(None))
    components = {c.urn for c in prod.by_type(OBS_TYPE)}
    objects = [(reg.name, render.k8s_object(reg)) for reg in prod.registrations if reg.parent in components]
    objects = [(name, obj) for name, obj in objects if obj is not None]
    assert len(objects) == 4 * 4  # namespace, two dashboards, the Badger claim per unit
    for name, obj in objects:
        assert validator.k8s_object(obj, "1.34", name) == [], name
    assert not validator.skipped


# ---------------------------------------------------------------------------------------------
# Dashboards as code
# ---------------------------------------------------------------------------------------------


def _exprs(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in board["panels"] for t in p["targets"]]


def test_dashboards_are_config_maps_with_the_sidecar_label_and_parse_as_json(prod: engine.Run) -> None:
    for unit in PROD_UNITS:
        for kind in ("mesh", "nginx"):
            cm = prod.get(f"{unit}-observability-dashboard-{kind}").inputs
            assert cm["metadata"]["labels"] == {"grafana_dashboard": "1"}
            assert cm["metadata"]["namespace"] == observability.NAMESPACE
            [(file, text)] = cm["data"].items()
            assert file == f"{kind}.json"
            board = json.loads(text)
            assert board["uid"] == f"cpaas-{kind}-{unit}" and len(board["uid"]) <= 40
            assert unit in board["title"]
            ids = [p["id"] for p in board["panels"]]
            assert len(ids) == len(set(ids))
            for panel in board["panels"]:
                assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
                assert panel["targets"] and all(t["expr"] for t in panel["targets"])


def test_the_mesh_dashboard_shows_request_rate_error_rate_and_p99_from_istio_metrics() -> None:
    board = observability.mesh_dashboard("u1")
    exprs = _exprs(board)
    assert any(e.startswith("sum by (destination_service) (rate(istio_requests_total{") for e in exprs)
    errors = next(e for e in exprs if 'response_code=~"5.."' in e and "destination_service" in e)
    assert " / sum by (destination_service) (rate(istio_requests_total{" in errors
    p99 = next(e for e in exprs if "istio_request_duration_milliseconds_bucket" in e)
    assert p99.startswith("histogram_quantile(0.99, sum by (le, destination_service)")
    assert any(f'source_workload="{mesh.GATEWAY_RELEASE}"' in e for e in exprs)
    assert any("pilot_xds_pushes" in e for e in exprs)
    units = {p["title"]: p["fieldConfig"]["defaults"]["unit"] for p in board["panels"]}
    assert units["p99 latency by service"] == "ms"
    assert units["5xx share by service"] == "percentunit"


def test_the_nginx_dashboard_queries_the_nginx_inc_exporter_metrics_of_its_class() -> None:
    exprs = _exprs(observability.nginx_dashboard("u1", "edge"))
    metrics = {
        "nginx_ingress_nginx_http_requests_total",
        "nginx_ingress_nginx_connections_active",
        "nginx_ingress_nginx_up",
        "nginx_ingress_controller_nginx_reloads_total",
        "nginx_ingress_controller_nginx_reload_errors_total",
        "nginx_ingress_controller_ingress_resources_total",
    }
    for metric in metrics:
        assert any(f'{metric}{{class="edge"}}' in e for e in exprs), metric
    # The community ingress-nginx's names must not creep in.
    assert not any("nginx_ingress_controller_requests" in e for e in exprs)


# ---------------------------------------------------------------------------------------------
# Tracing: Jaeger at the mesh's address
# ---------------------------------------------------------------------------------------------


def test_jaeger_is_reachable_at_the_meshs_tracing_address(prod: engine.Run) -> None:
    for unit in PROD_UNITS:
        istiod = prod.get(f"{unit}-mesh-istiod").inputs["values"]
        [provider] = istiod["meshConfig"]["extensionProviders"]
        assert provider["name"] == mesh.TRACING_PROVIDER
        zipkin = provider["zipkin"]
        release = prod.get(f"{unit}-observability-jaeger").inputs
        service = f"{release['values']['fullnameOverride']}.{release['namespace']}.svc.cluster.local"
        assert zipkin == {"service": service, "port": observability.ZIPKIN_PORT}
        assert (zipkin["service"], zipkin["port"]) == observability.tracing_address()
        # The chart's Service carries the Zipkin port, and Jaeger listens there on every address.
        assert observability.JAEGER_SERVICE_PORTS["http-zipkin"] == zipkin["port"]
        receivers = release["values"]["userconfig"]["receivers"]
        assert receivers["zipkin"] == {"endpoint": f"0.0.0.0:{zipkin['port']}"}
        pipeline = release["values"]["userconfig"]["service"]["pipelines"]["traces"]
        assert "zipkin" in pipeline["receivers"] and "otlp" in pipeline["receivers"]
        telemetry = prod.get(f"{unit}-mesh-tracing").inputs
        assert telemetry["spec"]["tracing"][0]["providers"] == [{"name": mesh.TRACING_PROVIDER}]


def test_the_config_default_tracing_address_is_jaegers() -> None:
    default = config.Tracing()
    assert (default.service, default.port) == observability.tracing_address()


def test_mesh_tracing_follows_observability_unless_the_stack_file_sets_it() -> None:
    raw = raw_stack("prod")
    del raw["units"][0]["mesh"]["tracing"]
    raw["units"][1]["mesh"]["tracing"] = {"enabled": False}
    parsed = config.parse_stack(raw)
    follows, explicit = parsed.units[0], parsed.units[1]
    assert follows.mesh.tracing.enabled is False  # the config default
    assert observability.effective_mesh(follows, "prod").tracing.enabled is True
    assert observability.effective_mesh(follows, "dev").tracing.enabled is False
    assert observability.effective_mesh(explicit, "prod").tracing.enabled is False
    off = follows.model_copy(update={"observability": _obs(enabled=False)})
    assert observability.effective_mesh(off, "prod") is off.mesh
    run = run_build(parsed, "prod")
    assert "extensionProviders" in run.get("aws-syd-mesh-istiod").inputs["values"]["meshConfig"]
    assert "extensionProviders" not in run.get("azure-mel-mesh-istiod").inputs["values"]["meshConfig"]


def test_jaeger_binds_every_listener_to_all_addresses_and_stores_on_its_volume() -> None:
    values = observability.jaeger_values(config.Observability())
    cfg = values["userconfig"]
    endpoints = [
        cfg["extensions"]["healthcheckv2"]["http"]["endpoint"],
        cfg["extensions"]["jaeger_query"]["http"]["endpoint"],
        cfg["extensions"]["jaeger_query"]["grpc"]["endpoint"],
        cfg["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"],
        cfg["receivers"]["otlp"]["protocols"]["http"]["endpoint"],
        cfg["receivers"]["zipkin"]["endpoint"],
    ]
    assert all(e.startswith("0.0.0.0:") for e in endpoints)
    ports = {int(e.rsplit(":", 1)[1]) for e in endpoints}
    # Every port we listen on (bar the kubelet's health probe port) is on the chart's Service.
    assert ports - {observability.HEALTH_PORT} <= set(observability.JAEGER_SERVICE_PORTS.values())
    badger = cfg["extensions"]["jaeger_storage"]["backends"]["primary"]["badger"]
    assert badger["directories"]["keys"].startswith(observability.BADGER_PATH + "/")
    assert badger["ephemeral"] is False
    jaeger = values["jaeger"]
    assert jaeger["replicas"] == 1
    assert jaeger["image"] == {"repository": "jaegertracing/jaeger", "tag": versions.JAEGER_VERSION}
    assert jaeger["extraVolumeMounts"] == [{"name": "badger", "mountPath": observability.BADGER_PATH}]
    assert jaeger["extraVolumes"][0]["persistentVolumeClaim"] == {"claimName": observability.BADGER_CLAIM}
    assert (
        cfg["exporters"]["jaeger_storage_exporter"]["trace_storage"]
        in (cfg["extensions"]["jaeger_storage"]["backends"])
    )


def test_the_component_registers_nothing_when_disabled() -> None:
    unit = _unit("aws-syd", observability=_obs(enabled=False))

    def program() -> dict[str, Any]:
        component = Observability("u-observability", observability.ObservabilityArgs(unit, "prod"))
        return {"enabled": component.enabled}

    run = engine.run(program, stack="test", mocks=engine.StateMocks())
    assert [r.type for r in run.registrations] == [OBS_TYPE]
    assert run.outputs == {"enabled": False}
