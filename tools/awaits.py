"""The await model: what pulumi-kubernetes waits for after it creates or updates an object, and
whether the topology cpaas builds lets the object get there, read from a mock-engine run.

pulumi-kubernetes holds `pulumi up` on the kinds in `AWAITED` until the object reaches a state
(10 minutes by default, claims 5) and fails the step when it does not; a refresh checks the same
state again. `pulumi.com/skipAwait: "true"` turns that off for create, update and refresh; cpaas
puts a `cpaas.io/skip-await-why` annotation beside it saying why. Every other kind (ConfigMap,
Secret, Namespace, custom resources) is done once the API server accepts it, because cpaas does
not set PULUMI_K8S_AWAIT_ALL. A helm.sh/v3 Release waits through Helm (its `atomic` implies
Helm's wait and overrides `skipAwait`) for up to `timeout` seconds (300 by default).

What the model checks (an object is reachable when nothing below fails):
- workloads (Deployment, StatefulSet, DaemonSet, Job, Pod), and Releases, whose charts run pods:
  their namespace, ServiceAccount, and the ConfigMaps, Secrets and claims their pods mount are
  created by cpaas before them; named probe ports exist; they wait for the unit's CNI.
- Service: type LoadBalancer never gets an address (no unit runs a load-balancer controller:
  k3d runs without servicelb, and CIS in cluster mode sends to pod IPs without writing Service
  status); a Service with a selector selects pods cpaas creates, on named ports they have, and
  none of those pods waits for the Service (the Service would wait for them: a deadlock).
- Ingress: a controller of its class reports an address into `.status.loadBalancer.ingress`.
- helm Release: the Services its chart renders (where `CHART_SERVICES` knows them) are not of
  type LoadBalancer.
What it cannot see (inside charts, the cluster's StorageClasses, image pulls) comes back as
assumptions to document, not as failures.

requirements.txt pins pulumi-kubernetes 4.34.2; its source was not in reach, so the refs below
are v4.32.0, whose await code the July 2026 main branch still has unchanged.
Ref: pulumi/pulumi-kubernetes v4.32.0, provider/pkg/: await/awaiters.go (the kinds), await/await.go
  (skipAwait on create, update and read), metadata/overrides.go (ReadyCondition, waitFor),
  await/ingress.go, service.go, deployment.go, statefulset.go, daemonset.go, job.go, pod.go,
  provider/helm_release.go (Wait = !skipAwait, Atomic, the 300 s timeout)
Ref: https://github.com/helm/helm/blob/v3.20.2/pkg/kube/ready.go (what Helm's wait checks)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tools import graph
from tools.engine import Registration

SKIP_AWAIT = "pulumi.com/skipAwait"
SKIP_AWAIT_WHY = "cpaas.io/skip-await-why"
WAIT_FOR = "pulumi.com/waitFor"
RELEASE = "helm.sh/v3/Release"
NAMESPACE = "v1/Namespace"
BUILT_IN_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
WORKLOADS = frozenset(
    {"apps/v1/Deployment", "apps/v1/StatefulSet", "apps/v1/DaemonSet", "batch/v1/Job", "v1/Pod"}
)
NO_LOAD_BALANCER = (
    "type LoadBalancer never gets an address: no unit runs a load-balancer controller (k3d runs "
    "without servicelb; CIS sends to pod IPs and writes no Service status)"
)
DEFAULT_STORAGE_CLASS = (
    "the cluster has a default StorageClass (a claim that names none stays Pending without one, "
    "and its await fails after 5 minutes)"
)


@dataclass(frozen=True)
class Awaited:
    waits_for: str
    timeout_seconds: int


AWAITED: dict[str, Awaited] = {
    "apps/v1/Deployment": Awaited("the rollout: updated replicas available, Available condition", 600),
    "apps/v1/StatefulSet": Awaited("every replica ready at the update revision", 600),
    "apps/v1/DaemonSet": Awaited("a ready, updated pod on every scheduled node", 600),
    "batch/v1/Job": Awaited("completion", 600),
    "v1/Pod": Awaited("Ready (or Succeeded)", 600),
    "v1/Service": Awaited(
        "endpoints with ready pods when it selects pods; an address in .status.loadBalancer.ingress "
        "when of type LoadBalancer",
        600,
    ),
    "networking.k8s.io/v1/Ingress": Awaited(
        "an address in .status.loadBalancer.ingress, and endpoints for its backend Services", 600
    ),
    "v1/PersistentVolumeClaim": Awaited("Bound, or Pending when its StorageClass waits for a consumer", 300),
    RELEASE: Awaited(
        "Helm's wait: pods, Deployments, StatefulSets, DaemonSets ready, claims Bound, LoadBalancer "
        "Services with an address",
        300,
    ),
}


@dataclass(frozen=True)
class ChartService:
    """Where a chart's values set the type of the Service it renders, and the chart's default."""

    type_path: tuple[str, ...]
    default: str
    create_path: tuple[str, ...] | None = None


# Ref: https://github.com/nginx/kubernetes-ingress/blob/v5.5.4/charts/nginx-ingress/values.yaml
#   (controller.service)
# Ref: https://github.com/istio/istio/blob/1.30.3/manifests/charts/gateway/values.yaml (service.type)
CHART_SERVICES: dict[str, ChartService] = {
    "nginx-ingress": ChartService(
        ("controller", "service", "type"), "LoadBalancer", ("controller", "service", "create")
    ),
    "gateway": ChartService(("service", "type"), "LoadBalancer"),
}


@dataclass(frozen=True)
class Verdict:
    name: str
    kind: str
    state: Literal["reachable", "skipped", "unreachable"]
    reasons: tuple[str, ...] = ()  # unreachable: what stops it; skipped: the annotation's why
    assumptions: tuple[str, ...] = ()

    def line(self) -> str:
        return f"{self.name} ({self.kind}): {'; '.join(self.reasons)}"


def kind_of(reg: Registration) -> str | None:
    """`apiVersion/Kind` as pulumi-kubernetes keys its awaiters, e.g. `apps/v1/Deployment`."""
    parts = reg.type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or "/" not in parts[1]:
        return None
    group, version = parts[1].split("/", 1)
    return f"{version if group == 'core' else parts[1]}/{parts[2]}"


def _dig(value: Any, path: Iterable[str]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _metadata(reg: Registration) -> dict[str, Any]:
    meta = reg.inputs.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _pod_spec(reg: Registration) -> dict[str, Any]:
    spec = reg.inputs.get("spec") or {}
    pod = spec if kind_of(reg) == "v1/Pod" else _dig(spec, ("template", "spec"))
    return pod if isinstance(pod, dict) else {}


def _pod_labels(reg: Registration) -> dict[str, Any]:
    if kind_of(reg) == "v1/Pod":
        labels = _metadata(reg).get("labels")
    else:
        labels = _dig(reg.inputs.get("spec"), ("template", "metadata", "labels"))
    return labels if isinstance(labels, dict) else {}


def _port_names(pod: dict[str, Any]) -> set[str]:
    return {p.get("name") for c in pod.get("containers", []) for p in c.get("ports", []) if p.get("name")}


@dataclass
class Topology:
    """What one run creates, indexed for the checks."""

    registrations: Sequence[Registration]
    by_urn: dict[str, Registration] = field(init=False)
    _upstream: dict[str, frozenset[str]] = field(init=False, default_factory=dict)
    # provider -> the CNI readiness gate every pod on that provider waits for, and its owner
    cni_gates: dict[str, tuple[str, str]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.by_urn = {r.urn: r for r in self.registrations}
        for calico in (r for r in self.registrations if r.type == "cpaas:calico:Calico"):
            children = [r for r in self.registrations if r.parent == calico.urn]
            gates = [r.urn for r in children if r.type == "command:local:Command"]
            for provider in {r.provider for r in children if r.type.startswith("kubernetes:")}:
                if gates:
                    self.cni_gates[provider] = (gates[0], calico.urn)

    def upstream(self, reg: Registration) -> frozenset[str]:
        """URNs `reg` waits for, directly or through other dependencies."""
        if reg.urn not in self._upstream:
            self._upstream[reg.urn] = graph.upstream(reg, self.by_urn)
        return self._upstream[reg.urn]

    def objects(self, provider: str, kind: str, namespace: str | None) -> list[Registration]:
        return [
            r
            for r in self.registrations
            if r.provider == provider and kind_of(r) == kind and _metadata(r).get("namespace") == namespace
        ]

    def missing_before(self, reg: Registration, kind: str, namespace: str | None, name: str) -> list[str]:
        """A one-line problem unless cpaas creates `kind` `name` before `reg`."""
        made = [r for r in self.objects(reg.provider, kind, namespace) if _metadata(r).get("name") == name]
        where = f"{namespace}/{name}" if namespace else name
        if not made:
            return [f"needs {kind.rsplit('/', 1)[-1]} {where}, which cpaas does not create"]
        if not any(r.urn in self.upstream(reg) for r in made):
            return [f"does not wait for {kind.rsplit('/', 1)[-1]} {where}"]
        return []

    def status_classes(self, provider: str) -> set[str]:
        """Ingress classes whose controller (an NGINX Inc release here) reports an address."""
        out: set[str] = set()
        for release in self.objects(provider, RELEASE, None):
            if str(release.inputs.get("chart", "")).rsplit("/", 1)[-1] != "nginx-ingress":
                continue
            controller = _dig(release.inputs, ("values", "controller")) or {}
            report = controller.get("reportIngressStatus") or {}
            address = _dig(controller, ("config", "entries", "external-status-address"))
            if report.get("enable", True) is not False and address:
                out.add(_dig(controller, ("ingressClass", "name")) or "nginx")
        return out


def _namespace_of(reg: Registration) -> str | None:
    if kind_of(reg) == RELEASE:
        return str(reg.inputs.get("namespace") or "default")
    namespace = _metadata(reg).get("namespace")
    return str(namespace) if namespace else None


def _common(topo: Topology, reg: Registration) -> list[str]:
    """What every object that runs pods needs: its namespace first, and the unit's CNI."""
    problems: list[str] = []
    namespace = _namespace_of(reg)
    if namespace and namespace not in BUILT_IN_NAMESPACES:
        problems += topo.missing_before(reg, NAMESPACE, None, namespace)
    gate = topo.cni_gates.get(reg.provider)
    if gate and reg.parent != gate[1] and gate[0] not in topo.upstream(reg):
        problems.append("does not wait for the CNI (pods get no network before it is up)")
    return problems


def _volume_problems(topo: Topology, reg: Registration, namespace: str | None) -> list[str]:
    problems: list[str] = []
    sources = (
        ("configMap", "name", "v1/ConfigMap"),
        ("secret", "secretName", "v1/Secret"),
        ("persistentVolumeClaim", "claimName", "v1/PersistentVolumeClaim"),
    )
    for volume in _pod_spec(reg).get("volumes", []):
        for source, key, kind in sources:
            ref = volume.get(source)
            if isinstance(ref, dict) and not ref.get("optional"):
                problems += topo.missing_before(reg, kind, namespace, str(ref.get(key)))
    return problems


def _probe_problems(pod: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for container in pod.get("containers", []):
        names = {p.get("name") for p in container.get("ports", [])}
        for probe_name in ("readinessProbe", "startupProbe"):
            probe = container.get(probe_name) or {}
            for action in ("httpGet", "tcpSocket", "grpc"):
                port = _dig(probe, (action, "port"))
                if isinstance(port, str) and port not in names:
                    problems.append(f"{container.get('name')}: {probe_name} on port {port!r}, which it lacks")
    return problems


def _workload(topo: Topology, reg: Registration) -> tuple[list[str], list[str]]:
    namespace = _namespace_of(reg)
    pod = _pod_spec(reg)
    problems = _common(topo, reg)
    account = pod.get("serviceAccountName") or "default"
    if account != "default":
        problems += topo.missing_before(reg, "v1/ServiceAccount", namespace, account)
    return problems + _volume_problems(topo, reg, namespace) + _probe_problems(pod), []


def _service(topo: Topology, reg: Registration) -> tuple[list[str], list[str]]:
    spec = reg.inputs.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    if kind == "LoadBalancer":
        return [NO_LOAD_BALANCER], []
    selector = spec.get("selector") or {}
    if kind == "ExternalName" or spec.get("clusterIP") == "None" or not selector:
        return [], []
    namespace = _namespace_of(reg)
    pods = [
        w
        for k in WORKLOADS
        for w in topo.objects(reg.provider, k, namespace)
        if selector.items() <= _pod_labels(w).items()
    ]
    if not pods:
        return [f"selects no pods cpaas creates in {namespace} ({selector})"], []
    problems = [
        f"{w.name} waits for this Service, which waits for its pods"
        for w in pods
        if reg.urn in topo.upstream(w)
    ]
    for port in spec.get("ports", []):
        target = port.get("targetPort")
        if isinstance(target, str) and not any(target in _port_names(_pod_spec(w)) for w in pods):
            problems.append(f"targetPort {target!r} is no port name of the pods it selects")
    return problems, []


def _ingress(topo: Topology, reg: Registration) -> tuple[list[str], list[str]]:
    ingress_class = (reg.inputs.get("spec") or {}).get("ingressClassName")
    if ingress_class in topo.status_classes(reg.provider):
        return [], []
    return [
        f"no controller of ingress class {ingress_class!r} reports an address into .status.loadBalancer"
    ], []


def _claim(_topo: Topology, reg: Registration) -> tuple[list[str], list[str]]:
    named = (reg.inputs.get("spec") or {}).get("storageClassName")
    return [], [f"StorageClass {named} exists" if named else DEFAULT_STORAGE_CLASS]


def _release(topo: Topology, reg: Registration) -> tuple[list[str], list[str]]:
    key = str(reg.inputs.get("chart", "")).rsplit("/", 1)[-1]
    values = reg.inputs.get("values") or {}
    problems = _common(topo, reg)
    known = CHART_SERVICES.get(key)
    if known is None:
        return problems, [f"what chart {key} renders becomes ready (not modelled)"]
    created = known.create_path is None or _dig(values, known.create_path) is not False
    if created and (_dig(values, known.type_path) or known.default) == "LoadBalancer":
        problems.append(f"chart {key} renders a Service that {NO_LOAD_BALANCER}")
    return problems, [f"what chart {key} renders becomes ready (only its Service type is modelled)"]


_CHECKS = {
    **dict.fromkeys(WORKLOADS, _workload),
    "v1/Service": _service,
    "networking.k8s.io/v1/Ingress": _ingress,
    "v1/PersistentVolumeClaim": _claim,
    RELEASE: _release,
}


def _skipped(reg: Registration, kind: str) -> Verdict | None:
    if kind == RELEASE:
        waits = reg.inputs.get("atomic") or not reg.inputs.get("skipAwait")
        return None if waits else Verdict(reg.name, kind, "skipped", ("skipAwait: Helm does not wait",))
    annotations = _metadata(reg).get("annotations") or {}
    if str(annotations.get(SKIP_AWAIT, "")).lower() != "true":
        return None
    why = str(annotations.get(SKIP_AWAIT_WHY, "")).strip()
    if not why:
        return Verdict(
            reg.name, kind, "unreachable", (f"{SKIP_AWAIT} without a {SKIP_AWAIT_WHY} saying why",)
        )
    return Verdict(reg.name, kind, "skipped", (why,))


def verdict(topo: Topology, reg: Registration) -> Verdict | None:
    """None for a kind pulumi-kubernetes does not wait for."""
    kind = kind_of(reg)
    if kind not in AWAITED:
        return None
    skipped = _skipped(reg, kind)
    if skipped is not None:
        return skipped
    if WAIT_FOR in (_metadata(reg).get("annotations") or {}):
        return Verdict(reg.name, kind, "unreachable", (f"{WAIT_FOR} is not modelled here",))
    problems, assumptions = _CHECKS[kind](topo, reg)
    state: Literal["reachable", "unreachable"] = "unreachable" if problems else "reachable"
    return Verdict(reg.name, kind, state, tuple(problems), tuple(assumptions))


def verdicts(registrations: Sequence[Registration]) -> list[Verdict]:
    topo = Topology(registrations)
    return [v for r in registrations if (v := verdict(topo, r)) is not None]


def problems(registrations: Sequence[Registration]) -> list[str]:
    """One line per awaited object that cannot reach its state and does not skip the await."""
    return [v.line() for v in verdicts(registrations) if v.state == "unreachable"]


def assumptions(registrations: Sequence[Registration]) -> set[str]:
    return {a for v in verdicts(registrations) for a in v.assumptions}
