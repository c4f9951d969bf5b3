"""Smoke checks of a deployed k3d unit (dev), against what the offline render says it holds.

    python -m tools.smoke --stack dev --render DIR [--unit NAME] [--kubeconfig FILE] [--timeout S]

`make smoke` runs it after `make up STACK=dev`; the e2e job runs it through tools/e2e.sh. The
expectations come from the render (`tools.render --out DIR`): namespaces, Deployments, Helm
releases, the IP pools, the trust domain, the routes and access policies. What only the real
deploy knows, the unit intermediate, comes from `pulumi stack output units`. The cluster is read
with kubectl and the k3d cluster's own kubeconfig (never the ambient one), apps are called through
`kubectl port-forward` as README "Reaching the dev apps" shows. One line per check; exit 0 when
all pass, 1 when any fails (each is retried until --timeout), 2 when the inputs are unusable.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from components import versions
from tools.graph import UNIT_TYPE

K3D_COMMAND = "command:local:Command"
NGINX_HTTP_PORT = 80  # the NGINX controller Service's http port (README "Reaching the dev apps")
# components/routes.py HTTP_PORT and components/demo.py TRAFFIC_GENERATOR (tests/test_e2e.py checks
# them); not imported, as those modules load pulumi_kubernetes, a second of start-up here.
GATEWAY_HTTP_PORT = 80
TRAFFIC_GENERATOR = "traffic-generator"
ENVOY_ADMIN_PORT = 15000  # where istioctl reads a sidecar's config (127.0.0.1 inside the pod)
# A path each demo app answers with 200; other apps are called at "/".
APP_PATHS = {"productpage": "/productpage", "httpbin": "/get"}
REFUSED = {401, 403}
# Kinds that make an app's namespace need a token (the AuthN/AuthZ issue's objects). An
# AuthorizationPolicy does only when a rule requires a request principal: the zero trust baseline
# and the identity rules of every injected namespace (components/meshauthz.py) ask for no token.
POLICY_KINDS = {"AuthorizationPolicy", "RequestAuthentication", "Policy"}
PLAINTEXT_POD = "cpaas-smoke-plaintext"
FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ->")

Problems = list[str]
Result = tuple[Problems, str]


class SmokeError(Exception):
    """Inputs the checks cannot run from (no render, no outputs, no cluster)."""


# ---------------------------------------------------------------------------------------------
# What the render expects
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    host: str
    namespace: str
    service: str
    port: int

    @property
    def path(self) -> str:
        return APP_PATHS.get(self.service, "/")


@dataclass(frozen=True)
class Workload:
    namespace: str
    selector: dict[str, str]
    service_account: str


@dataclass(frozen=True)
class Expected:
    unit: str
    cluster: str
    nodes: int
    namespaces: tuple[str, ...]
    releases: tuple[tuple[str, str], ...]  # (namespace, release)
    pools: tuple[tuple[str, str], ...]  # (name, cidr)
    trust_domain: str
    deployments: tuple[tuple[str, str], ...]
    nginx_routes: tuple[Route, ...]
    mesh_routes: tuple[Route, ...]
    protected: frozenset[str]  # namespaces with access policies
    traffic: tuple[str, str] | None  # the traffic generator's namespace and Deployment
    outside: str | None  # a namespace outside the mesh, for the plaintext call
    workload: Workload | None  # a mesh workload whose certificate is read


def _yaml_files(folder: Path) -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted(folder.rglob("*.yaml"))]


def _pick_unit(resources: list[dict[str, Any]], unit: str | None) -> str:
    units = [r["name"] for r in resources if r["type"] == UNIT_TYPE]
    if unit is None and len(units) == 1:
        return str(units[0])
    if unit in units:
        return str(unit)
    raise SmokeError(f"--unit {unit}: the render has units {units}; name one of them")


def _k3d(resources: list[dict[str, Any]], unit: str) -> tuple[str, int]:
    """The k3d cluster's name and node count, from the create command the unit records."""
    for r in resources:
        env = r.get("inputs", {}).get("environment", {})
        if r["type"] == K3D_COMMAND and r["name"] == f"{unit}-cluster-k3d":
            doc = yaml.safe_load(env["CPAAS_K3D_CONFIG"])
            return str(doc["metadata"]["name"]), int(doc["servers"]) + int(doc["agents"])
    raise SmokeError(f"unit {unit} has no k3d cluster in the render; the smoke checks need one (dev)")


def _route(namespace: str, host: str, service: str, port: int) -> Route:
    return Route(host=host, namespace=namespace, service=service, port=port)


def _nginx_routes(objects: list[dict[str, Any]]) -> tuple[Route, ...]:
    found = []
    for o in objects:
        if o["kind"] != "Ingress":
            continue
        for rule in o["spec"].get("rules", []):
            backend = rule["http"]["paths"][0]["backend"]["service"]
            ns = o["metadata"]["namespace"]
            found.append(_route(ns, rule["host"], backend["name"], int(backend["port"]["number"])))
    return tuple(found)


def _mesh_routes(objects: list[dict[str, Any]]) -> tuple[Route, ...]:
    """VirtualServices bound to a gateway: their host and the Service they send to."""
    found = []
    for o in objects:
        spec = o.get("spec", {})
        if o["kind"] != "VirtualService" or not [g for g in spec.get("gateways", []) if g != "mesh"]:
            continue
        dest = spec["http"][0]["route"][0]["destination"]
        service, namespace = dest["host"].split(".")[:2]
        for host in spec["hosts"]:
            found.append(_route(namespace, host, service, int(dest["port"]["number"])))
    return tuple(found)


def _workload(objects: list[dict[str, Any]], route: Route | None) -> Workload | None:
    """The Deployment behind a mesh route's Service, with its ServiceAccount (its SPIFFE ID)."""
    if route is None:
        return None
    in_ns = [o for o in objects if o["metadata"].get("namespace") == route.namespace]
    service = next(
        (o for o in in_ns if o["kind"] == "Service" and o["metadata"]["name"] == route.service), None
    )
    if service is None:
        return None
    selector = dict(service["spec"]["selector"])
    for o in in_ns:
        template = o["spec"]["template"] if o["kind"] == "Deployment" else None
        if template and selector.items() <= template["metadata"]["labels"].items():
            return Workload(route.namespace, selector, template["spec"]["serviceAccountName"])
    return None


def _namespaces(objects: list[dict[str, Any]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Every namespace, and those outside the mesh (injection not enabled)."""
    spaces = [o for o in objects if o["kind"] == "Namespace"]
    names = tuple(o["metadata"]["name"] for o in spaces)
    outside = tuple(
        o["metadata"]["name"]
        for o in spaces
        if o["metadata"].get("labels", {}).get("istio-injection") != "enabled"
    )
    return names, outside


def _helm_values(helm: list[dict[str, Any]], chart: str) -> dict[str, Any]:
    found = [h for h in helm if h["chart"] == chart]
    if not found:
        raise SmokeError(f"the render has no {chart} release; the smoke checks need Calico and Istio")
    return dict(found[0].get("values") or {})


def load_expected(render: Path, unit: str | None = None) -> Expected:
    """The expectations for one unit, from a render folder (tools.render --out)."""
    if not (render / "resources.json").is_file():
        raise SmokeError(f"{render} holds no render; run `.venv/bin/python -m tools.render --out {render}`")
    resources = json.loads((render / "resources.json").read_text())
    name = _pick_unit(resources, unit)
    cluster, nodes = _k3d(resources, name)
    objects = _yaml_files(render / "k8s" / name)
    helm = _yaml_files(render / "helm" / name)
    spaces, outside = _namespaces(objects)
    nginx_routes, mesh_routes = _nginx_routes(objects), _mesh_routes(objects)
    pools = _helm_values(helm, "tigera-operator")["installation"]["calicoNetwork"]["ipPools"]
    traffic = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == TRAFFIC_GENERATOR]
    # The plaintext caller's namespace: one with an NGINX app, whose Service is the control.
    plain = [r.namespace for r in nginx_routes if r.namespace in outside] or list(outside)
    return Expected(
        unit=name,
        cluster=cluster,
        nodes=nodes,
        namespaces=spaces,
        releases=tuple((h["namespace"], h["release"]) for h in helm),
        pools=tuple((p["name"], p["cidr"]) for p in pools),
        trust_domain=_helm_values(helm, "istiod")["meshConfig"]["trustDomain"],
        deployments=tuple(
            (o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects if o["kind"] == "Deployment"
        ),
        nginx_routes=nginx_routes,
        mesh_routes=mesh_routes,
        protected=frozenset(o["metadata"]["namespace"] for o in objects if _needs_token(o)),
        traffic=(traffic[0]["metadata"]["namespace"], TRAFFIC_GENERATOR) if traffic else None,
        outside=plain[0] if plain else None,
        workload=_workload(objects, mesh_routes[0] if mesh_routes else None),
    )


def _needs_token(obj: dict[str, Any]) -> bool:
    if obj["kind"] not in POLICY_KINDS:
        return False
    if obj["kind"] != "AuthorizationPolicy":
        return True
    rules = (obj.get("spec") or {}).get("rules") or []
    sources = [f.get("source") or {} for r in rules for f in r.get("from") or []]
    return any(s.get("requestPrincipals") for s in sources)


# ---------------------------------------------------------------------------------------------
# The cluster, through kubectl and curl
# ---------------------------------------------------------------------------------------------


def run(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise SmokeError(f"{argv[0]} is not installed; `make preflight` says where to get it") from None
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"{argv[0]} timed out after {timeout:.0f} s")


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


class Kube:
    def __init__(self, kubeconfig: str):
        self.base = ["kubectl", "--kubeconfig", kubeconfig]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run([*self.base, *args], timeout)

    def get(self, *args: str) -> list[dict[str, Any]]:
        done = self.run("get", *args, "-o", "json")
        if done.returncode != 0:
            raise SmokeError(f"kubectl get {' '.join(args)}: {_first_line(done.stderr)}")
        return list(json.loads(done.stdout).get("items", []))

    @contextmanager
    def forward(self, namespace: str, target: str, port: int) -> Iterator[int]:
        """`kubectl port-forward` to a random local port on 127.0.0.1; yields that port."""
        argv = [*self.base, "port-forward", "-n", namespace, "--address", "127.0.0.1", target, f":{port}"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            yield _forwarded_port(proc, f"{namespace}/{target}", timeout=30)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _forwarded_port(proc: subprocess.Popen[str], what: str, timeout: float) -> int:
    """The local port from kubectl's "Forwarding from 127.0.0.1:PORT -> ..." line.
    Ref: kubernetes/client-go tools/portforward/portforward.go (listenOnPortAndAddress)."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0 and sel.select(left):
        line = proc.stdout.readline()
        if not line:
            break
        if m := FORWARDING.search(line):
            return int(m[1])
    proc.terminate()
    try:
        err = proc.communicate(timeout=5)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        err = proc.communicate()[1]
    raise SmokeError(f"port-forward to {what} did not start: {_first_line(err or '') or 'no output'}")


def http(port: int, path: str, host: str | None = None) -> tuple[int, str]:
    """GET http://127.0.0.1:PORT/PATH with curl: (status code, 0 when none; curl's error)."""
    argv = ["curl", "-sS", "-o", "/dev/null", "-m", "10", "-w", "%{http_code}"]
    argv += ["-H", f"Host: {host}"] if host else []
    done = run([*argv, f"http://127.0.0.1:{port}{path}"], timeout=30)
    code = done.stdout.strip()
    return (int(code) if code.isdigit() else 0), _first_line(done.stderr)


def http_body(port: int, path: str) -> str:
    done = run(["curl", "-sS", "-m", "20", f"http://127.0.0.1:{port}{path}"], timeout=40)
    if done.returncode != 0:
        raise SmokeError(f"GET {path}: {_first_line(done.stderr)}")
    return done.stdout


# ---------------------------------------------------------------------------------------------
# The checks: each returns (problems, what passed)
# ---------------------------------------------------------------------------------------------


def _unavailable(item: dict[str, Any]) -> str | None:
    kind, meta = item["kind"], item["metadata"]
    spec, status = item.get("spec", {}), item.get("status", {})
    if kind == "DaemonSet":
        want, have = status.get("desiredNumberScheduled", 0), status.get("numberAvailable", 0)
    else:
        want = spec.get("replicas", 1)
        have = status.get("availableReplicas", status.get("readyReplicas", 0) if kind == "StatefulSet" else 0)
    if (have or 0) < want:
        return f"{kind} {meta['namespace']}/{meta['name']}: {have or 0} of {want} available"
    return None


def check_workloads(kube: Kube, exp: Expected) -> Result:
    items = kube.get("deployments,daemonsets,statefulsets", "-A")
    problems = [p for item in items if (p := _unavailable(item))]
    present = {
        (i["metadata"]["namespace"], i["metadata"]["name"]) for i in items if i["kind"] == "Deployment"
    }
    problems += [
        f"Deployment {ns}/{name} (in the render) is not in the cluster"
        for ns, name in exp.deployments
        if (ns, name) not in present
    ]
    return problems, f"{len(items)} Deployments, DaemonSets and StatefulSets available"


def check_namespaces(kube: Kube, exp: Expected) -> Result:
    have = {i["metadata"]["name"] for i in kube.get("namespaces")}
    return [f"namespace {n} (in the render) is missing" for n in exp.namespaces if n not in have], (
        f"namespaces {', '.join(exp.namespaces)}"
    )


def check_releases(kube: Kube, exp: Expected) -> Result:
    """Helm's release records: Secrets labelled owner=helm, name, version, status.
    Ref: helm/helm v3.21.4 pkg/storage/driver/secrets.go (newSecretsObject)."""
    problems = []
    for ns, release in exp.releases:
        records = kube.get("secrets", "-n", ns, "-l", f"owner=helm,name={release}")
        if not records:
            problems.append(f"Helm release {ns}/{release}: no release record")
            continue
        latest = max(records, key=lambda s: int(s["metadata"]["labels"].get("version", "0")))
        status = latest["metadata"]["labels"].get("status")
        if status != "deployed":
            problems.append(f"Helm release {ns}/{release}: {status}, not deployed")
    return problems, f"Helm releases deployed: {', '.join(r for _, r in exp.releases)}"


def check_nodes(kube: Kube, exp: Expected) -> Result:
    nodes = kube.get("nodes")
    problems = [] if len(nodes) == exp.nodes else [f"{len(nodes)} nodes, the k3d config has {exp.nodes}"]
    for node in nodes:
        ready = [c for c in node.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
        if not ready or ready[0]["status"] != "True":
            problems.append(f"node {node['metadata']['name']} is not Ready")
    return problems, f"{len(nodes)} nodes Ready (Calico is the CNI)"


def check_pools(kube: Kube, exp: Expected) -> Result:
    have = {p["metadata"]["name"]: p["spec"].get("cidr") for p in kube.get("ippools.projectcalico.org")}
    problems = [
        f"Calico IP pool {name}: {have.get(name) or 'missing'}, the render has {cidr}"
        for name, cidr in exp.pools
        if have.get(name) != cidr
    ]
    return problems, "Calico IP pools " + ", ".join(f"{n} {c}" for n, c in exp.pools)


def _running_pod(kube: Kube, workload: Workload) -> str:
    selector = ",".join(f"{k}={v}" for k, v in sorted(workload.selector.items()))
    pods = [p for p in kube.get("pods", "-n", workload.namespace, "-l", selector) if _ready(p)]
    if not pods:
        raise SmokeError(f"no ready pod in {workload.namespace} with {selector}")
    return str(pods[0]["metadata"]["name"])


def _ready(pod: dict[str, Any]) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses", [])
    return pod.get("status", {}).get("phase") == "Running" and all(s.get("ready") for s in statuses)


def workload_chain(config_dump: str) -> list[x509.Certificate]:
    """The certificates of the sidecar's `default` secret (its workload identity), from Envoy's
    /config_dump, as istioctl proxy-config secret reads them: SecretsConfigDump's
    dynamic_active_secrets[].secret.tls_certificate.certificate_chain.inline_bytes (base64 PEM;
    Envoy redacts only the private key). Ref: envoyproxy/envoy api/envoy/admin/v3/config_dump_shared.proto."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            secret = node.get("secret")
            if node.get("name") == "default" and isinstance(secret, dict):
                chain = secret.get("tls_certificate", {}).get("certificate_chain", {}).get("inline_bytes")
                if chain:
                    found.append(chain)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(config_dump))
    if not found:
        raise SmokeError("the sidecar's config dump has no `default` certificate")
    return x509.load_pem_x509_certificates(base64.b64decode(found[0]))


def chain_problems(chain: list[x509.Certificate], intermediate_pem: str, spiffe: str) -> Problems:
    """The workload leaf is signed by the unit intermediate and names exactly the expected SPIFFE ID."""
    problems = []
    intermediate = x509.load_pem_x509_certificate(intermediate_pem.encode())
    leaf = chain[0]
    try:
        leaf.verify_directly_issued_by(intermediate)
    except (InvalidSignature, ValueError, TypeError) as exc:  # InvalidSignature has no message
        problems.append(
            f"the workload certificate is not signed by the unit intermediate "
            f"({intermediate.subject.rfc4514_string()}): issuer {leaf.issuer.rfc4514_string()} "
            f"({type(exc).__name__}); istiod is not using cacerts"
        )
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    if uris != [spiffe]:
        problems.append(f"the workload certificate's URI SANs are {uris}, expected [{spiffe}]")
    return problems


def check_certificate(kube: Kube, exp: Expected, unit: dict[str, Any]) -> Result:
    w = exp.workload
    if w is None:
        return [], "mesh certificate: no mesh workload in the render (skipped)"
    spiffe = f"spiffe://{exp.trust_domain}/ns/{w.namespace}/sa/{w.service_account}"
    pod = _running_pod(kube, w)
    with kube.forward(w.namespace, f"pod/{pod}", ENVOY_ADMIN_PORT) as port:
        chain = workload_chain(http_body(port, "/config_dump"))
    problems = chain_problems(chain, str(unit.get("intermediateCertPem", "")), spiffe)
    return problems, f"{w.namespace}/{pod}: certificate from the unit intermediate (cacerts), SAN {spiffe}"


PLAINTEXT_SCRIPT = (
    'c=$(curl -s -o /dev/null -m 5 -w "%{http_code}" "$1"); echo "control=$c exit=$?"; '
    'm=$(curl -s -o /dev/null -m 5 -w "%{http_code}" "$2"); echo "mesh=$m exit=$?"'
)


def _plaintext_calls(kube: Kube, ns: str, control: str, target: str) -> dict[str, str]:
    """Run the curl image once in `ns` (outside the mesh): a call to `control`, then to `target`."""
    kube.run("delete", "pod", "-n", ns, PLAINTEXT_POD, "--ignore-not-found", "--wait=true")
    labels = "app=cpaas-smoke,sidecar.istio.io/inject=false"
    started = kube.run(
        "run", PLAINTEXT_POD, "-n", ns, f"--image={versions.CURL_IMAGE}", "--restart=Never",
        f"--labels={labels}", "--command", "--", "sh", "-c", PLAINTEXT_SCRIPT, "sh", control, target,
    )  # fmt: skip
    try:
        if started.returncode != 0:
            raise SmokeError(f"kubectl run {PLAINTEXT_POD}: {_first_line(started.stderr)}")
        kube.run(
            "wait", "-n", ns, "--for=jsonpath={.status.phase}=Succeeded", f"pod/{PLAINTEXT_POD}",
            "--timeout=180s", timeout=200,
        )  # fmt: skip
        logs = kube.run("logs", "-n", ns, f"pod/{PLAINTEXT_POD}").stdout
    finally:
        kube.run("delete", "pod", "-n", ns, PLAINTEXT_POD, "--ignore-not-found", "--wait=false")
    return dict(re.findall(r"^(control|mesh)=(\S*)", logs, re.M))


def check_strict_mtls(kube: Kube, exp: Expected) -> Result:
    """STRICT mTLS: a plaintext call from outside the mesh to a mesh Service gets no HTTP answer,
    while the same pod reaches a Service outside the mesh (so the refusal is the mesh's)."""
    mesh = exp.mesh_routes[0] if exp.mesh_routes else None
    if mesh is None or exp.outside is None:
        return [], "STRICT mTLS: no mesh Service or no namespace outside the mesh (skipped)"
    control = next((r for r in exp.nginx_routes if r.namespace == exp.outside), None)
    target = f"http://{mesh.service}.{mesh.namespace}.svc.cluster.local:{mesh.port}{mesh.path}"
    control_url = (
        f"http://{control.service}.{control.namespace}.svc.cluster.local:{control.port}{control.path}"
        if control
        else target
    )
    codes = _plaintext_calls(kube, exp.outside, control_url, target)
    if "mesh" not in codes:
        return [f"the plaintext caller in {exp.outside} printed no result (see its pod's events)"], ""
    problems = []
    if control and codes.get("control") != "200":
        problems.append(f"plaintext control call to {control_url} from {exp.outside}: {codes.get('control')}")
    if codes["mesh"] not in ("000", ""):
        problems.append(f"plaintext call to {target} from {exp.outside} was answered {codes['mesh']}")
    return problems, f"STRICT mTLS: plaintext from {exp.outside} to {mesh.service}.{mesh.namespace} refused"


def _route_problems(
    port: int, route_list: Iterable[Route], exp: Expected, via: str
) -> tuple[Problems, Problems]:
    problems, passed = [], []
    for r in route_list:
        want = REFUSED if r.namespace in exp.protected else {200}
        code, err = http(port, r.path, r.host)
        what = f"{r.host}{r.path} through {via}"
        if code in want:
            passed.append(f"{what} {code}" + (" (no token: refused)" if want == REFUSED else ""))
        else:
            problems.append(f"{what}: {code or err}, expected {' or '.join(map(str, sorted(want)))}")
    return problems, passed


def check_routes(kube: Kube, exp: Expected, unit: dict[str, Any]) -> Result:
    """Each app through its controller, from this machine; an app whose namespace has access
    policies must refuse a call without a token."""
    problems: Problems = []
    passed: Problems = []
    for service, route_list, port in (
        (unit.get("nginx"), exp.nginx_routes, NGINX_HTTP_PORT),
        (unit.get("ingressGateway"), exp.mesh_routes, GATEWAY_HTTP_PORT),
    ):
        if not route_list:
            continue
        if not service:
            problems.append(f"the stack output names no controller for {[r.host for r in route_list]}")
            continue
        ns, name = str(service).split("/")
        with kube.forward(ns, f"svc/{name}", port) as local:
            bad, good = _route_problems(local, route_list, exp, f"{ns}/{name}")
        problems += bad
        passed += good
    return problems, "; ".join(passed) or "no HTTP apps in the render (skipped)"


def check_traffic(kube: Kube, exp: Expected) -> Result:
    """The demo traffic generator logs `productpage <code> <time>` per call (components/demo.py)."""
    if exp.traffic is None:
        return [], "traffic generator: not in the render (skipped)"
    ns, name = exp.traffic
    done = kube.run("logs", "-n", ns, f"deploy/{name}", "-c", "curl", "--since=120s")
    codes = re.findall(r"^productpage (\d{3}) ", done.stdout, re.M)
    ok = codes.count("200")
    if done.returncode != 0 or ok == 0:
        why = _first_line(done.stderr) if done.returncode else f"codes {sorted(set(codes)) or 'none'}"
        return [f"traffic generator {ns}/{name}: no productpage 200 in the last 2 minutes ({why})"], ""
    return [], f"traffic generator {ns}/{name}: {ok} of {len(codes)} productpage calls answered 200"


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def stack_unit(stack: str, unit: str) -> dict[str, Any]:
    """This unit's entry of `pulumi stack output units` (the real intermediate, the controllers)."""
    done = run(["pulumi", "stack", "output", "units", "--json", "--stack", stack])
    if done.returncode != 0:
        raise SmokeError(f"pulumi stack output units: {_first_line(done.stderr)}")
    units = json.loads(done.stdout or "null")
    if not isinstance(units, dict) or not isinstance(units.get(unit), dict):
        raise SmokeError(f"pulumi stack output units has no unit {unit} (is the stack deployed?)")
    return dict(units[unit])


@contextmanager
def k3d_kubeconfig(cluster: str) -> Iterator[str]:
    """The cluster's kubeconfig in a private temporary file (it holds a client key)."""
    with tempfile.TemporaryDirectory(prefix="cpaas-smoke-") as folder:
        path = Path(folder) / "kubeconfig"
        done = run(["k3d", "kubeconfig", "get", cluster])
        if done.returncode != 0:
            raise SmokeError(f"k3d kubeconfig get {cluster}: {_first_line(done.stderr)}")
        path.touch(mode=0o600)
        path.write_text(done.stdout)
        yield str(path)


Check = Callable[[], Result]


def run_checks(checks: list[tuple[str, Check]], timeout: float, interval: float) -> int:
    """Each check until it passes or the shared deadline passes; one line each. Failed count."""
    deadline = time.monotonic() + timeout
    failed = 0
    for label, check in checks:
        while True:
            try:
                problems, passed = check()
            except SmokeError as exc:
                problems, passed = [str(exc)], ""
            if not problems or time.monotonic() >= deadline:
                break
            time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
        if problems:
            failed += 1
            print(f"FAIL {label}: " + "; ".join(problems[:10]), flush=True)
        else:
            print(f"ok   {label}: {passed}", flush=True)
    return failed


def _checks(kube: Kube, exp: Expected, unit: dict[str, Any]) -> list[tuple[str, Check]]:
    return [
        ("namespaces", lambda: check_namespaces(kube, exp)),
        ("workloads", lambda: check_workloads(kube, exp)),
        ("helm", lambda: check_releases(kube, exp)),
        ("nodes", lambda: check_nodes(kube, exp)),
        ("ip pools", lambda: check_pools(kube, exp)),
        ("mesh certificate", lambda: check_certificate(kube, exp, unit)),
        ("strict mtls", lambda: check_strict_mtls(kube, exp)),
        ("routes", lambda: check_routes(kube, exp, unit)),
        ("traffic", lambda: check_traffic(kube, exp)),
    ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.smoke", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="the deployed stack (default dev)")
    parser.add_argument(
        "--render", type=Path, default=None, help="render folder (default build/render/STACK)"
    )
    parser.add_argument("--unit", help="the unit to check (default: the render's only unit)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: `k3d kubeconfig get` of the unit)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for all checks (600)")
    parser.add_argument("--interval", type=float, default=10, help="seconds between retries (10)")
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    args = _parser().parse_args(list(argv) if argv is not None else None)
    render = args.render or Path("build") / "render" / args.stack
    try:
        exp = load_expected(render, args.unit)
        unit = stack_unit(args.stack, exp.unit)
        if unit.get("trustDomain") not in (None, exp.trust_domain):
            raise SmokeError(
                f"stack trust domain {unit['trustDomain']} is not the render's {exp.trust_domain}"
            )
        with k3d_kubeconfig(exp.cluster) if not args.kubeconfig else _given(args.kubeconfig) as kubeconfig:
            failed = run_checks(_checks(Kube(kubeconfig), exp, unit), args.timeout, args.interval)
    except SmokeError as exc:
        print(f"smoke: {exc}", file=sys.stderr)
        return 2
    print(f"smoke: unit {exp.unit} on k3d cluster {exp.cluster}: {failed} check(s) failed")
    return 1 if failed else 0


@contextmanager
def _given(path: str) -> Iterator[str]:
    if not os.path.isfile(path):
        raise SmokeError(f"--kubeconfig {path}: no such file")
    yield path


if __name__ == "__main__":
    sys.exit(main())
