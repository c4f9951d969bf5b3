"""Observability per unit: Prometheus and Grafana (kube-prometheus-stack), dashboards as code,
and tracing (Jaeger v2) that Istio's sidecars report to.

On by default in prod, off elsewhere (`observability.enabled` overrides). What it deploys, all in
namespace `observability`:

- kube-prometheus-stack: the Prometheus Operator, Prometheus (retention and volume from config),
  Grafana (volume from config, a random admin password the chart generates and keeps), and the
  scrape targets as the chart's own `additionalServiceMonitors` / `additionalPodMonitors`: istiod
  (:15014), every Istio sidecar and gateway (the merged metrics at :15020/stats/prometheus,
  plaintext even under STRICT mTLS), the NGINX controller (:9113), and Jaeger itself. The monitors
  ride in the release, so nothing outside it needs the monitoring CRDs (the NGINX chart's own
  `prometheus.serviceMonitor` would make NGINX wait for this release; we do not use it).
- Grafana dashboards for the mesh and NGINX, built by pure functions below, as ConfigMaps with
  the Grafana sidecar's label `grafana_dashboard: "1"`; a Jaeger data source beside Prometheus.
- Jaeger v2 (all-in-one, Badger on a PersistentVolumeClaim, span TTL from config). Its Service is
  `jaeger-collector` with the Zipkin port 9411 and OTLP 4317/4318, which is the address the mesh's
  tracing provider defaults to; `effective_mesh` turns mesh tracing on when observability is on
  and the stack file does not say otherwise.

Ref: https://github.com/prometheus-community/helm-charts/tree/kube-prometheus-stack-88.5.3/charts/kube-prometheus-stack
Ref: https://github.com/jaegertracing/helm-charts/tree/jaeger-4.11.1/charts/jaeger
Ref: https://github.com/istio/istio/blob/1.30.3/samples/addons/extras/prometheus-operator.yaml
Ref: https://istio.io/latest/docs/ops/integrations/prometheus/#option-1-metrics-merging
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components import config, helm, mesh, nginx, versions

NAMESPACE = "observability"
PROMETHEUS_RELEASE = "kube-prometheus-stack"
# The Jaeger chart names its Service after fullnameOverride: "jaeger-collector" is what the
# mesh's tracing provider points at by default (config.Tracing.service).
JAEGER_RELEASE = "jaeger-collector"
JAEGER_SERVICE = JAEGER_RELEASE
ZIPKIN_PORT = 9411
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
QUERY_PORT = 16686
QUERY_GRPC_PORT = 16685
HEALTH_PORT = 13133
JAEGER_METRICS_PORT = 8888
# Ports of the Service in jaeger chart 4.11.1 (templates/jaeger/jaeger-service.yaml) we rely on.
JAEGER_SERVICE_PORTS = {
    "http-zipkin": ZIPKIN_PORT,
    "otlp-grpc": OTLP_GRPC_PORT,
    "otlp-http": OTLP_HTTP_PORT,
    "http-query": QUERY_PORT,
    "grpc-query": QUERY_GRPC_PORT,
    "internal-metrics": JAEGER_METRICS_PORT,
}
BADGER_CLAIM = "jaeger-badger"
BADGER_PATH = "/badger"
DASHBOARD_LABELS = {"grafana_dashboard": "1"}  # the kube-prometheus-stack sidecar's default
# kube-prometheus-stack provisions its Prometheus data source with this uid.
PROMETHEUS_DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
JAEGER_DATASOURCE_UID = "jaeger"
# Control planes we can scrape: managed clouds hide the controller manager, scheduler and etcd,
# and bind kube-proxy's metrics to localhost; k3s runs them in one process without endpoints.
_SELF_MANAGED_CONTROL_PLANE = frozenset({"onprem"})
# Prometheus may fill this share of its volume before deleting the oldest blocks, whatever the
# time retention says: the WAL and compaction need the rest.
RETENTION_SIZE_SHARE = 0.85


def enabled(observability: config.Observability, environment: config.Environment) -> bool:
    """`enabled` as configured; unset means on in prod and off elsewhere."""
    if observability.enabled is not None:
        return observability.enabled
    return environment == "prod"


def tracing_address() -> tuple[str, int]:
    """Where Jaeger receives Zipkin spans (what the mesh's default tracing provider names)."""
    return f"{JAEGER_SERVICE}.{NAMESPACE}.svc.cluster.local", ZIPKIN_PORT


def effective_mesh(unit: config.Unit, environment: config.Environment) -> config.Mesh:
    """The unit's mesh with tracing on when observability is on, unless the stack file sets
    `mesh.tracing.enabled` itself (an explicit value always wins)."""
    tracing = unit.mesh.tracing
    if "enabled" in tracing.model_fields_set or not enabled(unit.observability, environment):
        return unit.mesh
    return unit.mesh.model_copy(update={"tracing": tracing.model_copy(update={"enabled": True})})


# ---------------------------------------------------------------------------------------------
# Sizes and durations
# ---------------------------------------------------------------------------------------------

_MIB = {"Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}
_HOURS = {"h": 1, "d": 24, "w": 24 * 7}


def retention_size(storage: str) -> str:
    """Prometheus' size-based retention for a volume of `storage` (e.g. 50Gi -> 43520MiB)."""
    match = re.fullmatch(r"([1-9][0-9]*)(Mi|Gi|Ti)", storage)
    if match is None:
        raise ValueError(f"{storage!r} is not a quantity in Mi, Gi or Ti")
    mib = int(int(match.group(1)) * _MIB[match.group(2)] * RETENTION_SIZE_SHARE)
    return f"{mib // 1024}GiB" if mib % 1024 == 0 else f"{mib}MiB"


def go_duration(duration: str) -> str:
    """A config duration (h, d or w) as a Go duration, which knows no days or weeks: 3d -> 72h."""
    match = re.fullmatch(r"([1-9][0-9]*)(h|d|w)", duration)
    if match is None:
        raise ValueError(f"{duration!r} is not a duration in h, d or w")
    return f"{int(match.group(1)) * _HOURS[match.group(2)]}h"


# ---------------------------------------------------------------------------------------------
# kube-prometheus-stack values
# ---------------------------------------------------------------------------------------------


def istiod_monitor() -> dict[str, Any]:
    """istiod's own metrics on its `http-monitoring` Service port (15014)."""
    return {
        "name": "istiod",
        "jobLabel": "istio",
        "targetLabels": ["app"],
        "selector": {"matchLabels": {"app": "istiod", "istio": "pilot"}},
        "namespaceSelector": {"matchNames": [mesh.NAMESPACE]},
        "endpoints": [{"port": "http-monitoring", "interval": "15s"}],
    }


def envoy_monitor() -> dict[str, Any]:
    """Every Istio proxy (sidecars and gateways): the merged Prometheus endpoint at the port the
    injector annotates (15020), as in Istio's own Prometheus Operator example."""
    return {
        "name": "istio-proxies",
        "jobLabel": "envoy-stats",
        "selector": {"matchExpressions": [{"key": "istio-prometheus-ignore", "operator": "DoesNotExist"}]},
        "namespaceSelector": {"any": True},
        "podMetricsEndpoints": [
            {
                "path": "/stats/prometheus",
                "interval": "15s",
                "relabelings": [
                    {
                        "action": "keep",
                        "sourceLabels": ["__meta_kubernetes_pod_container_name"],
                        "regex": "istio-proxy",
                    },
                    {
                        "action": "keep",
                        "sourceLabels": ["__meta_kubernetes_pod_annotationpresent_prometheus_io_scrape"],
                    },
                    {
                        "action": "replace",
                        "regex": r"(\d+);((([0-9]+?)(\.|$)){4})",
                        "replacement": "$2:$1",
                        "sourceLabels": [
                            "__meta_kubernetes_pod_annotation_prometheus_io_port",
                            "__meta_kubernetes_pod_ip",
                        ],
                        "targetLabel": "__address__",
                    },
                    {"action": "labeldrop", "regex": "__meta_kubernetes_pod_label_(.+)"},
                    {
                        "action": "replace",
                        "sourceLabels": ["__meta_kubernetes_namespace"],
                        "targetLabel": "namespace",
                    },
                    {
                        "action": "replace",
                        "sourceLabels": ["__meta_kubernetes_pod_name"],
                        "targetLabel": "pod",
                    },
                ],
            }
        ],
    }


def nginx_monitor() -> dict[str, Any]:
    """The NGINX Inc controller's exporter: container port `prometheus` (9113, `prometheus.create`)."""
    return {
        "name": "nginx-ingress",
        "selector": {
            "matchLabels": {
                "app.kubernetes.io/name": "nginx-ingress",
                "app.kubernetes.io/instance": nginx.RELEASE,
            }
        },
        "namespaceSelector": {"matchNames": [nginx.NAMESPACE]},
        "podMetricsEndpoints": [{"port": "prometheus", "path": "/metrics", "interval": "30s"}],
    }


def jaeger_monitor() -> dict[str, Any]:
    """Jaeger's own collector and storage metrics (its `internal-metrics` Service port)."""
    return {
        "name": "jaeger",
        "selector": {
            "matchLabels": {"app.kubernetes.io/name": "jaeger", "app.kubernetes.io/instance": JAEGER_RELEASE}
        },
        "namespaceSelector": {"matchNames": [NAMESPACE]},
        "endpoints": [{"port": "internal-metrics", "interval": "30s"}],
    }


def jaeger_datasource() -> dict[str, Any]:
    return {
        "name": "Jaeger",
        "type": "jaeger",
        "uid": JAEGER_DATASOURCE_UID,
        "access": "proxy",
        "url": f"http://{JAEGER_SERVICE}.{NAMESPACE}.svc.cluster.local:{QUERY_PORT}",
        "editable": False,
    }


def _volume_claim(size: str) -> dict[str, Any]:
    return {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}


def prometheus_stack_values(unit: config.Unit) -> dict[str, Any]:
    """kube-prometheus-stack values for the unit. Pure: test it directly."""
    obs = unit.observability
    own_control_plane = unit.cloud in _SELF_MANAGED_CONTROL_PLANE
    service_monitors = [istiod_monitor(), jaeger_monitor()]
    pod_monitors = [envoy_monitor(), *([nginx_monitor()] if unit.nginx.enabled else [])]
    return {
        "cleanPrometheusOperatorObjectNames": True,
        # Alert routing is not configured yet; the default rules still evaluate in Prometheus.
        "alertmanager": {"enabled": False},
        "kubeControllerManager": {"enabled": own_control_plane},
        "kubeScheduler": {"enabled": own_control_plane},
        "kubeEtcd": {"enabled": own_control_plane},
        "kubeProxy": {"enabled": own_control_plane},
        "prometheus": {
            "prometheusSpec": {
                "retention": obs.prometheus_retention,
                "retentionSize": retention_size(obs.prometheus_storage),
                "storageSpec": {"volumeClaimTemplate": {"spec": _volume_claim(obs.prometheus_storage)}},
                "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}},
            },
            "additionalServiceMonitors": service_monitors,
            "additionalPodMonitors": pod_monitors,
        },
        "grafana": {
            # No adminPassword: the Grafana chart generates a random one and keeps it in its Secret.
            "persistence": {
                "enabled": True,
                "type": "pvc",
                "accessModes": ["ReadWriteOnce"],
                "size": obs.grafana_storage,
            },
            # A ReadWriteOnce volume cannot be attached to the old and the new pod at once.
            "deploymentStrategy": {"type": "Recreate"},
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": next(iter(DASHBOARD_LABELS)),
                    "labelValue": DASHBOARD_LABELS["grafana_dashboard"],
                    "searchNamespace": NAMESPACE,
                }
            },
            "additionalDataSources": [jaeger_datasource()],
        },
    }


# ---------------------------------------------------------------------------------------------
# Jaeger values
# ---------------------------------------------------------------------------------------------


def _listen(port: int) -> dict[str, str]:
    return {"endpoint": f"0.0.0.0:{port}"}


def jaeger_config(obs: config.Observability) -> dict[str, Any]:
    """Jaeger v2 configuration: Zipkin and OTLP in, Badger on the volume, span TTL from config.

    Keys follow cmd/jaeger/config-badger.yaml and internal/all-in-one.yaml of Jaeger v2.19.0;
    every listener binds 0.0.0.0, since Jaeger's defaults listen on localhost only.
    """
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp", "zipkin"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
            "telemetry": {
                "resource": {"service.name": "jaeger"},
                "metrics": {
                    "level": "detailed",
                    "readers": [
                        {
                            "pull": {
                                "exporter": {"prometheus": {"host": "0.0.0.0", "port": JAEGER_METRICS_PORT}}
                            }
                        }
                    ],
                },
            },
        },
        "extensions": {
            "healthcheckv2": {"use_v2": True, "http": _listen(HEALTH_PORT)},
            "jaeger_query": {
                "storage": {"traces": "primary"},
                "http": _listen(QUERY_PORT),
                "grpc": _listen(QUERY_GRPC_PORT),
            },
            "jaeger_storage": {
                "backends": {
                    "primary": {
                        "badger": {
                            "directories": {"keys": f"{BADGER_PATH}/keys", "values": f"{BADGER_PATH}/values"},
                            "ephemeral": False,
                            "ttl": {"spans": go_duration(obs.tracing_retention)},
                        }
                    }
                }
            },
        },
        "receivers": {
            "otlp": {"protocols": {"grpc": _listen(OTLP_GRPC_PORT), "http": _listen(OTLP_HTTP_PORT)}},
            "zipkin": _listen(ZIPKIN_PORT),
        },
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "primary"}},
    }


def jaeger_values(obs: config.Observability) -> dict[str, Any]:
    """Jaeger chart values. Pure: test it directly."""
    return {
        "fullnameOverride": JAEGER_RELEASE,
        "userconfig": jaeger_config(obs),
        "jaeger": {
            # Badger is a single-writer store on a ReadWriteOnce volume: one pod, recreated.
            "replicas": 1,
            "image": {"repository": versions.JAEGER_IMAGE, "tag": versions.JAEGER_VERSION},
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
            "extraVolumes": [{"name": "badger", "persistentVolumeClaim": {"claimName": BADGER_CLAIM}}],
            "extraVolumeMounts": [{"name": "badger", "mountPath": BADGER_PATH}],
        },
    }


def badger_claim(obs: config.Observability) -> dict[str, Any]:
    """The PersistentVolumeClaim spec for Jaeger's Badger store (size from config)."""
    return _volume_claim(obs.tracing_storage)


# ---------------------------------------------------------------------------------------------
# Dashboards as code
# ---------------------------------------------------------------------------------------------


def _panel(pid: int, title: str, expr: str, legend: str, unit: str) -> dict[str, Any]:
    column, row = (pid - 1) % 2, (pid - 1) // 2
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "datasource": PROMETHEUS_DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": 12 * column, "y": 8 * row},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            {"refId": "A", "datasource": PROMETHEUS_DATASOURCE, "expr": expr, "legendFormat": legend}
        ],
    }


def _dashboard(uid: str, title: str, tags: list[str], panels: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["cpaas", *tags],
        "editable": False,
        "schemaVersion": versions.GRAFANA_DASHBOARD_SCHEMA_VERSION,
        "timezone": "utc",
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "annotations": {"list": []},
        "templating": {"list": []},
        "panels": panels,
    }


def mesh_dashboard(unit: str) -> dict[str, Any]:
    """Istio: request rate, 5xx share and p99 latency per service, the gateway, istiod pushes."""
    server = 'reporter="destination"'
    by_service = "sum by (destination_service)"
    requests = f"{by_service} (rate(istio_requests_total{{{server}}}[5m]))"
    errors = f'{by_service} (rate(istio_requests_total{{{server},response_code=~"5.."}}[5m]))'
    p99 = (
        "histogram_quantile(0.99, sum by (le, destination_service) "
        f"(rate(istio_request_duration_milliseconds_bucket{{{server}}}[5m])))"
    )
    gateway = (
        "sum by (response_code) (rate(istio_requests_total"
        f'{{reporter="source",source_workload="{mesh.GATEWAY_RELEASE}"}}[5m]))'
    )
    panels = [
        _panel(1, "Requests per second by service", requests, "{{destination_service}}", "reqps"),
        _panel(2, "5xx share by service", f"{errors} / {requests}", "{{destination_service}}", "percentunit"),
        _panel(3, "p99 latency by service", p99, "{{destination_service}}", "ms"),
        _panel(4, "Ingress gateway requests by response code", gateway, "{{response_code}}", "reqps"),
        _panel(
            5, "istiod xDS pushes by type", "sum by (type) (rate(pilot_xds_pushes[5m]))", "{{type}}", "ops"
        ),
    ]
    return _dashboard(f"cpaas-mesh-{unit}", f"cpaas {unit}: Istio mesh", ["istio"], panels)


def nginx_dashboard(unit: str, ingress_class: str) -> dict[str, Any]:
    """NGINX Inc IC (NGINX OSS): requests, connections, up, reloads; metric names from the
    controller's exporter (nginx_ingress_nginx_*, nginx_ingress_controller_*)."""
    cls = f'class="{ingress_class}"'
    panels = [
        _panel(
            1,
            "Requests per second by pod",
            f"sum by (pod) (rate(nginx_ingress_nginx_http_requests_total{{{cls}}}[5m]))",
            "{{pod}}",
            "reqps",
        ),
        _panel(
            2,
            "Active connections by pod",
            f"sum by (pod) (nginx_ingress_nginx_connections_active{{{cls}}})",
            "{{pod}}",
            "short",
        ),
        _panel(3, "NGINX up", f"nginx_ingress_nginx_up{{{cls}}}", "{{pod}}", "short"),
        _panel(
            4,
            "Reloads (1h)",
            f"sum(increase(nginx_ingress_controller_nginx_reloads_total{{{cls}}}[1h])) or vector(0)",
            "reloads",
            "short",
        ),
        _panel(
            5,
            "Reload errors (1h)",
            f"sum(increase(nginx_ingress_controller_nginx_reload_errors_total{{{cls}}}[1h])) or vector(0)",
            "errors",
            "short",
        ),
        _panel(
            6,
            "Ingress resources handled",
            f"sum by (type) (nginx_ingress_controller_ingress_resources_total{{{cls}}})",
            "{{type}}",
            "short",
        ),
    ]
    return _dashboard(f"cpaas-nginx-{unit}", f"cpaas {unit}: NGINX ingress", ["nginx"], panels)


def dashboards(unit: config.Unit) -> dict[str, dict[str, Any]]:
    """The unit's dashboards by ConfigMap name."""
    out = {"cpaas-dashboard-mesh": mesh_dashboard(unit.name)}
    if unit.nginx.enabled:
        out["cpaas-dashboard-nginx"] = nginx_dashboard(unit.name, unit.nginx.ingress_class)
    return out


def dashboard_file(name: str) -> str:
    return f"{name.removeprefix('cpaas-dashboard-')}.json"


# ---------------------------------------------------------------------------------------------
# Component
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservabilityArgs:
    unit: config.Unit
    environment: config.Environment
    # Children wait for these: a component's depends_on does not reach its children.
    after: tuple[pulumi.Resource, ...] = ()


class Observability(pulumi.ComponentResource):
    """Metrics, dashboards and tracing for one unit; registers nothing when disabled."""

    enabled: bool
    prometheus: k8s.helm.v3.Release | None = None
    jaeger: k8s.helm.v3.Release | None = None

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:observability:Observability", name, None, opts)
        unit = args.unit
        self.enabled = enabled(unit.observability, args.environment)
        if not self.enabled:
            self.register_outputs({"enabled": False})
            return
        obs = unit.observability
        home = helm.home(
            name,
            self,
            NAMESPACE,
            # node-exporter (host network, PID and paths) needs the privileged profile.
            enforce="privileged",
            # Outside the mesh: Prometheus scrapes plaintext ports, Jaeger takes plain Zipkin.
            labels={"istio-injection": "disabled"},
            after=args.after,
        )
        in_ns = home.opts()
        self.prometheus = home.release(
            f"{name}-prometheus",
            versions.KUBE_PROMETHEUS_STACK,
            PROMETHEUS_RELEASE,
            prometheus_stack_values(unit),
            timeout=900,
        )
        for cm_name, board in sorted(dashboards(unit).items()):
            k8s.core.v1.ConfigMap(
                f"{name}-{cm_name.removeprefix('cpaas-')}",
                metadata={"name": cm_name, "namespace": NAMESPACE, "labels": dict(DASHBOARD_LABELS)},
                data={dashboard_file(cm_name): json.dumps(board, indent=2, sort_keys=True)},
                opts=in_ns,
            )
        claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-jaeger-storage",
            metadata={"name": BADGER_CLAIM, "namespace": NAMESPACE},
            spec=cast("k8s.core.v1.PersistentVolumeClaimSpecArgsDict", badger_claim(obs)),
            opts=in_ns,
        )
        self.jaeger = home.release(
            f"{name}-jaeger", versions.JAEGER, JAEGER_RELEASE, jaeger_values(obs), timeout=600, after=[claim]
        )
        host, port = tracing_address()
        self.register_outputs({"enabled": True, "namespace": NAMESPACE, "tracing": f"{host}:{port}"})
