"""Demo workloads so a newcomer sees every path carry traffic: mesh, NGINX, TCP and egress.

- bookinfo (productpage, details, ratings, reviews v1-v3) in the unit's mesh namespace, each
  service with its own ServiceAccount so each has its own SPIFFE ID. reviews v2/v3 call ratings,
  so with all three versions every bookinfo service carries traffic.
- httpbin in the namespace of the unit's http-nginx app (behind NGINX IC, outside the mesh).
- an MQTT broker (Eclipse Mosquitto) in the namespace of the unit's tcp app.
- a traffic generator in the mesh namespace calling productpage and, when an egress host is
  given, `http://<host>/` through the BIG-IP egress gateway (its sidecar originates mTLS with the
  pod's SPIFFE identity; the ServiceEntry/DestinationRule for the host belong to the egress side).

A workload whose app is not in the unit's config is skipped and listed in `skipped`. Namespaces
are not created here: Mesh creates the injected ones, the unit creates app namespaces; pass those
(or their owners) in `after`.

Images are pinned in components/versions.py, to the tags Istio 1.30.3's own samples pin (bookinfo
from Docker Hub, since registry.istio.io is being retired):
Ref: https://github.com/istio/istio/blob/1.30.3/samples/bookinfo/platform/kube/bookinfo.yaml
Ref: https://github.com/istio/istio/blob/1.30.3/samples/httpbin/httpbin.yaml
Ref: https://github.com/istio/istio/blob/1.30.3/samples/curl/curl.yaml
Ref: https://github.com/eclipse-mosquitto/mosquitto/blob/v2.0.22/docker/2.0-openssl/Dockerfile
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import config, versions
from components.children import waiting

BOOKINFO_PORT = 9080
# service -> versions deployed (reviews v2/v3 are the ones that call ratings).
BOOKINFO_VERSIONS: dict[str, tuple[str, ...]] = {
    "productpage": ("v1",),
    "details": ("v1",),
    "ratings": ("v1",),
    "reviews": ("v1", "v2", "v3"),
}
HTTPBIN_PORT = 8080
MQTT_PORT = 1883
TRAFFIC_GENERATOR = "traffic-generator"
TRAFFIC_INTERVAL_SECONDS = 5

# Users the images run as. bookinfo's Dockerfiles end in a numeric USER (1000; reviews 1001), so
# runAsNonRoot alone is checkable. The others need an explicit uid: go-httpbin is distroless/base
# (root by default; 65532 is distroless' nonroot), Mosquitto's entrypoint starts as root unless told
# otherwise (its image creates mosquitto:mosquitto as 1883:1883), curlimages/curl's USER is the
# name curl_user (uid 100, gid 101), which the kubelet cannot verify as non-root.
DISTROLESS_NONROOT = 65532
MOSQUITTO_UID = 1883
CURL_UID, CURL_GID = 100, 101

_HOST = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*(:\d{1,5})?$")

Manifest = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Where each workload goes (pure)
# ---------------------------------------------------------------------------------------------


def bookinfo_namespace(unit: config.Unit) -> str | None:
    """The http-mesh app named bookinfo's namespace, else the first injected namespace."""
    for app in unit.apps:
        if app.kind == "http-mesh" and app.name == "bookinfo":
            return app.namespace
    return unit.mesh.injected_namespaces[0] if unit.mesh.injected_namespaces else None


def app_of(unit: config.Unit, kind: config.AppKind, preferred: str) -> config.App | None:
    """The unit's app of `kind` named `preferred`, else its first app of that kind."""
    of_kind = [a for a in unit.apps if a.kind == kind]
    return next((a for a in of_kind if a.name == preferred), of_kind[0] if of_kind else None)


def skipped(unit: config.Unit, egress_host: str | None) -> list[str]:
    """What the demo leaves out for this unit and why."""
    out: list[str] = []
    if bookinfo_namespace(unit) is None:
        out.append("bookinfo: no http-mesh app named bookinfo and no mesh.injectedNamespaces")
        out.append(f"{TRAFFIC_GENERATOR}: it runs in the bookinfo namespace, which there is none of")
    elif egress_host is None:
        out.append(f"{TRAFFIC_GENERATOR} egress calls: no egress host given, only productpage is called")
    if app_of(unit, "http-nginx", "httpbin") is None:
        out.append("httpbin: no http-nginx app in the unit's apps")
    if app_of(unit, "tcp", "mqtt") is None:
        out.append("mosquitto: no tcp app in the unit's apps")
    return out


# ---------------------------------------------------------------------------------------------
# Manifests (pure): each returns {"metadata": ..., "spec": ...} or the kind's top-level fields
# ---------------------------------------------------------------------------------------------


def _resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu_limit, "memory": memory_limit}}


def _container_security(uid: int | None = None, gid: int | None = None, read_only: bool = True) -> Manifest:
    sc: Manifest = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only,
        "capabilities": {"drop": ["ALL"]},
    }
    if uid is not None:
        sc["runAsUser"] = uid
    if gid is not None:
        sc["runAsGroup"] = gid
    return sc


def _pod(service_account: str, containers: list[Manifest], volumes: list[Manifest] | None = None) -> Manifest:
    # runAsNonRoot sits on the app containers, not the pod: Istio's injected istio-init runs as root.
    pod: Manifest = {
        "serviceAccountName": service_account,
        # No container here talks to the Kubernetes API; Istio mounts its own istio-token.
        "automountServiceAccountToken": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": containers,
    }
    if volumes:
        pod["volumes"] = volumes
    return pod


def _deployment_manifest(
    name: str, namespace: str, labels: dict[str, str], pod: Manifest, **template_meta: Any
) -> Manifest:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels, **template_meta}, "spec": pod},
        },
    }


def _http_readiness(path: str, port: int | str, delay: int = 5) -> Manifest:
    return {
        "httpGet": {"path": path, "port": port},
        "initialDelaySeconds": delay,
        "periodSeconds": 10,
        "failureThreshold": 6,
    }


def service_account(name: str, namespace: str, app: str) -> Manifest:
    return {"metadata": {"name": name, "namespace": namespace, "labels": {"app": app}}}


def service(name: str, namespace: str, app: str, *, port: int, target: str, port_name: str) -> Manifest:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app, "service": name}},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": app},
            # Istio picks the protocol from the port name (http-*, tcp-*).
            "ports": [{"name": port_name, "port": port, "targetPort": target, "protocol": "TCP"}],
        },
    }


def bookinfo_image(svc: str, version: str) -> str:
    return f"{versions.BOOKINFO_HUB}/examples-bookinfo-{svc}-{version}:{versions.BOOKINFO_TAG}"


def bookinfo_service(svc: str, namespace: str) -> Manifest:
    return service(svc, namespace, svc, port=BOOKINFO_PORT, target="http", port_name="http")


_BOOKINFO_RESOURCES = {
    # productpage runs gunicorn with 8 gevent workers; reviews is Java on Open Liberty.
    "productpage": _resources("50m", "128Mi", "500m", "512Mi"),
    "details": _resources("10m", "48Mi", "200m", "128Mi"),
    "ratings": _resources("10m", "48Mi", "200m", "128Mi"),
    "reviews": _resources("50m", "256Mi", "1", "512Mi"),
}


def bookinfo_deployment(svc: str, namespace: str, version: str = "v1") -> Manifest:
    """One bookinfo Deployment, as upstream's sample with resources, probes and a securityContext."""
    if svc not in BOOKINFO_VERSIONS or version not in BOOKINFO_VERSIONS[svc]:
        raise ValueError(f"{svc} {version} is not a bookinfo workload; use one of {BOOKINFO_VERSIONS}")
    container: Manifest = {
        "name": svc,
        "image": bookinfo_image(svc, version),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": BOOKINFO_PORT}],
        "readinessProbe": _http_readiness("/health", "http", delay=20 if svc == "reviews" else 5),
        "resources": _BOOKINFO_RESOURCES[svc],
        # Upstream does not run these with a read-only root; the writable dirs are known only in part.
        "securityContext": _container_security(read_only=False),
    }
    volumes: list[Manifest] = []
    if svc in ("productpage", "reviews"):
        container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
        volumes.append({"name": "tmp", "emptyDir": {}})
    if svc == "reviews":
        container["env"] = [{"name": "LOG_DIR", "value": "/tmp/logs"}]
        container["volumeMounts"].append({"name": "wlp-output", "mountPath": "/opt/ibm/wlp/output"})
        volumes.append({"name": "wlp-output", "emptyDir": {}})
    labels = {"app": svc, "version": version}
    return _deployment_manifest(
        f"{svc}-{version}", namespace, labels, _pod(f"bookinfo-{svc}", [container], volumes)
    )


def httpbin_service(app: config.App) -> Manifest:
    return service(
        app.service, app.namespace, "httpbin", port=app.service_port, target="http", port_name="http"
    )


def httpbin_deployment(namespace: str) -> Manifest:
    container: Manifest = {
        "name": "httpbin",
        "image": versions.HTTPBIN_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "env": [{"name": "PORT", "value": str(HTTPBIN_PORT)}],
        "ports": [{"name": "http", "containerPort": HTTPBIN_PORT}],
        "readinessProbe": _http_readiness("/status/200", "http"),
        "resources": _resources("10m", "16Mi", "200m", "64Mi"),
        "securityContext": _container_security(DISTROLESS_NONROOT, DISTROLESS_NONROOT),
    }
    labels = {"app": "httpbin", "version": "v1"}
    return _deployment_manifest("httpbin", namespace, labels, _pod("httpbin", [container]))


def mosquitto_conf() -> str:
    # allow_anonymous true is acceptable ONLY because this is a demo broker with no data worth
    # protecting; a real broker needs password_file or certificate auth (Mosquitto 2 denies by default).
    return f"listener {MQTT_PORT}\nallow_anonymous true\npersistence false\nlog_dest stdout\n"


def mosquitto_config_map(namespace: str) -> Manifest:
    return {
        "metadata": {"name": "mosquitto-config", "namespace": namespace, "labels": {"app": "mosquitto"}},
        "data": {"mosquitto.conf": mosquitto_conf()},
    }


def mosquitto_service(app: config.App) -> Manifest:
    return service(
        app.service, app.namespace, "mosquitto", port=app.service_port, target="mqtt", port_name="tcp-mqtt"
    )


def mosquitto_deployment(namespace: str) -> Manifest:
    container: Manifest = {
        "name": "mosquitto",
        "image": versions.MOSQUITTO_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "mqtt", "containerPort": MQTT_PORT}],
        # MQTT has no HTTP endpoint: ready once the listener accepts connections.
        "readinessProbe": {"tcpSocket": {"port": "mqtt"}, "initialDelaySeconds": 2, "periodSeconds": 10},
        "resources": _resources("10m", "16Mi", "200m", "64Mi"),
        "securityContext": _container_security(MOSQUITTO_UID, MOSQUITTO_UID),
        "volumeMounts": [
            {"name": "config", "mountPath": "/mosquitto/config", "readOnly": True},
            {"name": "data", "mountPath": "/mosquitto/data"},
            {"name": "log", "mountPath": "/mosquitto/log"},
        ],
    }
    volumes = [
        {"name": "config", "configMap": {"name": "mosquitto-config"}},
        {"name": "data", "emptyDir": {}},
        {"name": "log", "emptyDir": {}},
    ]
    labels = {"app": "mosquitto", "version": "v1"}
    # A config change changes the pod template, so the broker restarts with it.
    checksum = hashlib.sha256(mosquitto_conf().encode()).hexdigest()
    pod = _pod("mosquitto", [container], volumes)
    return _deployment_manifest(
        "mosquitto", namespace, labels, pod, annotations={"cpaas.io/config-sha256": checksum}
    )


def check_egress_host(host: str) -> str:
    if len(host) > 253 or not _HOST.match(host):
        raise ValueError(
            f"{host!r} is not an egress host; give a lowercase DNS name with an optional :port, "
            "e.g. api.partner.example.com (no scheme or path)"
        )
    return host


TRAFFIC_SCRIPT = """\
while true; do
  curl -s -o /dev/null --max-time 5 -w "productpage %{http_code} %{time_total}s\\n" "$PRODUCTPAGE_URL"
  if [ -n "$EGRESS_URL" ]; then
    curl -s -o /dev/null --max-time 10 -w "egress %{http_code} %{time_total}s\\n" "$EGRESS_URL"
  fi
  sleep "$INTERVAL_SECONDS"
done
"""


def traffic_generator_deployment(
    namespace: str, egress_host: str | None, egress_vip: str | None = None
) -> Manifest:
    """curl in a loop: one short line per call (bodies discarded), a pause between rounds.

    URLs go in through env vars, so the script has no `$(...)` for Kubernetes to expand.
    `egress_vip`: where the egress host resolves in the pod (see the hostAliases comment).
    """
    env = [
        {
            "name": "PRODUCTPAGE_URL",
            "value": f"http://productpage.{namespace}.svc.cluster.local:9080/productpage",
        },
        {"name": "INTERVAL_SECONDS", "value": str(TRAFFIC_INTERVAL_SECONDS)},
    ]
    if egress_host is not None:
        # Plain HTTP to the sidecar, which originates mTLS to the BIG-IP egress gateway.
        env.append({"name": "EGRESS_URL", "value": f"http://{check_egress_host(egress_host)}/"})
    container: Manifest = {
        "name": "curl",
        "image": versions.CURL_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", TRAFFIC_SCRIPT],
        "env": env,
        "resources": _resources("10m", "16Mi", "100m", "32Mi"),
        "securityContext": _container_security(CURL_UID, CURL_GID),
    }
    labels = {"app": TRAFFIC_GENERATOR, "version": "v1"}
    pod = _pod(TRAFFIC_GENERATOR, [container])
    pod["terminationGracePeriodSeconds"] = 5
    if egress_host is not None and egress_vip is not None:
        # The egress host exists only in the mesh's ServiceEntry, and Istio 1.30 sidecars do not
        # answer DNS (ISTIO_META_DNS_CAPTURE defaults to false), so it would not resolve. Point it
        # at the BIG-IP VIP: the sidecar intercepts the connection and routes it by Host header.
        pod["hostAliases"] = [{"ip": egress_vip, "hostnames": [egress_host.split(":")[0]]}]
    return _deployment_manifest(TRAFFIC_GENERATOR, namespace, labels, pod)


# ---------------------------------------------------------------------------------------------
# Component
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoArgs:
    unit: config.Unit
    # The host the traffic generator calls through the egress gateway; None: no egress calls.
    egress_host: str | None = None
    # Children wait for these (namespaces, istiod): a component's depends_on does not reach its children.
    after: tuple[pulumi.Resource, ...] = ()


class DemoWorkloads(pulumi.ComponentResource):
    skipped: list[str]
    workloads: list[str]

    def __init__(self, name: str, args: DemoArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:demo:DemoWorkloads", name, None, opts)
        if args.egress_host is not None:
            check_egress_host(args.egress_host)
        self._name = name
        self._opts = waiting(self, args.after)
        self.workloads = []
        unit = args.unit
        mesh_ns = bookinfo_namespace(unit)
        if mesh_ns is not None:
            self._bookinfo(mesh_ns)
            self._traffic_generator(mesh_ns, args.egress_host, unit.egress)
        nginx_app = app_of(unit, "http-nginx", "httpbin")
        if nginx_app is not None:
            self._httpbin(nginx_app)
        tcp_app = app_of(unit, "tcp", "mqtt")
        if tcp_app is not None:
            self._mosquitto(tcp_app)
        self.skipped = skipped(unit, args.egress_host)
        self.register_outputs({"skipped": self.skipped, "workloads": self.workloads})

    def _service_account(self, role: str, manifest: Manifest) -> k8s.core.v1.ServiceAccount:
        return k8s.core.v1.ServiceAccount(
            f"{self._name}-{role}-sa",
            metadata=manifest["metadata"],
            automount_service_account_token=False,
            opts=self._opts(),
        )

    def _service(self, role: str, manifest: Manifest) -> None:
        k8s.core.v1.Service(
            f"{self._name}-{role}-service",
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=self._opts(),
        )

    def _deployment(self, role: str, manifest: Manifest, *more: pulumi.Resource) -> None:
        k8s.apps.v1.Deployment(
            f"{self._name}-{role}",
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=self._opts(*more),
        )
        self.workloads.append(f"{manifest['metadata']['namespace']}/{manifest['metadata']['name']}")

    def _bookinfo(self, ns: str) -> None:
        for svc, deployed in BOOKINFO_VERSIONS.items():
            role = f"bookinfo-{svc}"
            sa = self._service_account(role, service_account(f"bookinfo-{svc}", ns, svc))
            self._service(role, bookinfo_service(svc, ns))
            for version in deployed:
                self._deployment(f"{role}-{version}", bookinfo_deployment(svc, ns, version), sa)

    def _traffic_generator(self, ns: str, egress_host: str | None, egress: config.Egress | None) -> None:
        sa = self._service_account(
            TRAFFIC_GENERATOR, service_account(TRAFFIC_GENERATOR, ns, TRAFFIC_GENERATOR)
        )
        vip = str(egress.vip) if egress is not None else None
        self._deployment(TRAFFIC_GENERATOR, traffic_generator_deployment(ns, egress_host, vip), sa)

    def _httpbin(self, app: config.App) -> None:
        sa = self._service_account("httpbin", service_account("httpbin", app.namespace, "httpbin"))
        self._service("httpbin", httpbin_service(app))
        self._deployment("httpbin", httpbin_deployment(app.namespace), sa)

    def _mosquitto(self, app: config.App) -> None:
        sa = self._service_account("mosquitto", service_account("mosquitto", app.namespace, "mosquitto"))
        cm = mosquitto_config_map(app.namespace)
        config_map = k8s.core.v1.ConfigMap(
            f"{self._name}-mosquitto-config", metadata=cm["metadata"], data=cm["data"], opts=self._opts()
        )
        self._service("mosquitto", mosquitto_service(app))
        self._deployment("mosquitto", mosquitto_deployment(app.namespace), sa, config_map)
