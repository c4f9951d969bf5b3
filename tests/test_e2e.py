"""The `e2e dev` job (.github/workflows/e2e.yml), its script (tools/e2e.sh) and the smoke checks
(tools/smoke.py), offline: the job's steps run here as GitHub would run them, with fake pulumi,
k3d, kubectl, docker and curl (tests/e2e_fake_tool.py) that log every call and answer from a
table. The real deploy runs only on GitHub; README "End-to-end deploy on pull requests".
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import hashlib
import io
import json
import marshal
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from components.cluster import k3d_cluster_name
from tests.support import ROOT, stack
from tools import smoke

E2E = ROOT / ".github" / "workflows" / "e2e.yml"
SCRIPT = ROOT / "tools" / "e2e.sh"
FAKE = ROOT / "tests" / "e2e_fake_tool.py"
KEY_MARKER = "e2e-fake-client-key-7f3a9c"  # in the fake kubeconfig: must never be printed or uploaded
TRUST_DOMAIN = "dev.cpaas.example.com"
SPIFFE = f"spiffe://{TRUST_DOMAIN}/ns/bookinfo/sa/bookinfo-productpage"
GATEWAY_ROUTE = "bookinfo.dev.example.com/productpage through istio-ingress/istio-ingressgateway"
LINUX_X64 = pytest.mark.skipif(
    (platform.system(), platform.machine()) != ("Linux", "x86_64"),
    reason="tools/e2e.sh installs Linux x86_64 tools (the GitHub runner's platform)",
)


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    if True in doc:  # YAML 1.1 reads the bare key `on` as True
        doc["on"] = doc.pop(True)
    return dict(doc)


def script_var(name: str, text: str | None = None) -> str:
    m = re.search(rf"^{name}=(\S*)", text or SCRIPT.read_text(), re.M)
    assert m, f"tools/e2e.sh sets no {name}"
    return m[1]


# ---------------------------------------------------------------------------------------------
# The workflow and the pins
# ---------------------------------------------------------------------------------------------


def job() -> dict[str, Any]:
    return dict(load(E2E)["jobs"]["e2e"])


def test_the_job_runs_on_a_github_hosted_runner_for_pull_requests_and_pushes_to_main() -> None:
    doc = load(E2E)
    assert doc["on"] == {"pull_request": {"branches": ["main"]}, "push": {"branches": ["main"]}}
    j = job()
    assert j["name"] == "e2e dev"
    assert j["runs-on"] == "ubuntu-latest"
    assert j["permissions"] == {"contents": "read"} and doc["permissions"] == {}
    assert 30 <= j["timeout-minutes"] <= 90
    # Nothing secret: no token, no environment, no secrets context anywhere.
    assert "secrets." not in E2E.read_text() and "environment" not in j


def test_the_steps_are_the_script_in_the_issue_order_with_destroy_and_upload_always_reached() -> None:
    steps = job()["steps"]
    runs = [(s.get("run"), s.get("if")) for s in steps if "run" in s]
    assert runs == [
        ("make venv", None),
        ("tools/e2e.sh install", None),
        ("tools/e2e.sh render", None),
        ("tools/e2e.sh up", None),
        ("tools/e2e.sh smoke", None),
        ("tools/e2e.sh preview", None),
        ("tools/e2e.sh collect", "failure()"),
        ("tools/e2e.sh destroy", "always()"),
    ]
    upload = steps[-1]
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["if"] == "failure()"
    assert upload["with"]["path"] == "${{ runner.temp }}/e2e/artifact"


def test_the_pulumi_cli_is_the_sdk_version_and_kubectl_the_stack_kubernetes_minor() -> None:
    sdk = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert sdk and script_var("PULUMI_VERSION") == sdk[1]
    dev = stack("dev").units[0]
    assert script_var("KUBECTL_VERSION").startswith(f"v{dev.cluster.kubernetes_version}.")
    major, minor = map(int, script_var("K3D_VERSION").lstrip("v").split(".")[:2])
    assert (major, minor) >= (5, 5)  # preflight's floor: k3d.io/v1alpha5 configs
    assert script_var("K3D_VERSION") in (ROOT / "components" / "cluster.py").read_text()
    for name in ("K3D_SHA256", "KUBECTL_SHA256"):
        assert re.fullmatch(r"[0-9a-f]{64}", script_var(name)), name
    # Not confirmed offline: the release's checksums file decides (README says so).
    assert script_var("PULUMI_SHA256") == ""


def test_the_cluster_and_network_the_script_checks_are_the_ones_dev_creates() -> None:
    dev = stack("dev").units[0]
    assert script_var("CLUSTER") == k3d_cluster_name(dev.name)
    # With no docker network configured k3d makes k3d-<cluster> and deletes it with the cluster.
    assert dev.cluster.docker_network is None
    assert script_var("NETWORK") == "k3d-$CLUSTER"


def test_the_script_passes_shellcheck() -> None:
    beside = Path(sys.executable).parent / "shellcheck"
    tool = str(beside) if beside.is_file() else shutil.which("shellcheck")
    assert tool, "shellcheck is not installed: pip install -r requirements-dev.txt"
    result = subprocess.run([tool, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_make_smoke_renders_then_runs_the_smoke_checks_with_the_dev_backend() -> None:
    shown = subprocess.run(
        ["make", "-n", "--no-print-directory", "-o", ".venv/.installed", "smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    render, checks = shown.strip().splitlines()[-2:]
    assert ".venv/bin/python -m tools.render --stack dev --out build/render/dev --no-validate" in render
    assert "PULUMI_BACKEND_URL" in checks
    assert checks.endswith(".venv/bin/python -m tools.smoke --stack dev --render build/render/dev")


# ---------------------------------------------------------------------------------------------
# A fake cluster: certificates, the render's expectations, the answers of each tool
# ---------------------------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    """Istio's workload certificates have an empty subject (the identity is the SAN)."""
    if not cn:
        return x509.Name([])
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Bank"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    signer: ec.EllipticCurvePrivateKey,
    san: str | None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(san)]), False
        )
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    return builder.sign(signer, hashes.SHA256())


def _pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


@dataclass(frozen=True)
class Pki:
    intermediate: x509.Certificate
    leaf: x509.Certificate  # signed by the intermediate, SAN = SPIFFE
    stranger: x509.Certificate  # same issuer name, another key: not from cacerts
    wrong_san: x509.Certificate


@pytest.fixture(scope="module")
def pki() -> Pki:
    ikey, lkey, skey = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    cn = "Example Bank dev Intermediate CA"
    return Pki(
        intermediate=_cert(cn, ikey, "Example Bank Dev Root CA", ikey, None),
        leaf=_cert("", lkey, cn, ikey, SPIFFE),
        stranger=_cert("", lkey, cn, skey, SPIFFE),
        wrong_san=_cert("", lkey, cn, ikey, "spiffe://cluster.local/ns/bookinfo/sa/default"),
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dev render, read only. Under xdist the first worker's is moved to the session's shared
    temp folder and a worker needing it later reads that one instead of rendering again."""
    shared = tmp_path_factory.getbasetemp().parent / "e2e-render-dev"
    if "PYTEST_XDIST_WORKER" in os.environ and (shared / "resources.json").is_file():
        return shared
    out = tmp_path_factory.mktemp("render") / "dev"
    subprocess.run(
        [sys.executable, "-m", "tools.render", "--stack", "dev", "--out", str(out), "--no-validate"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=300,
    )
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return out
    try:
        out.rename(shared)  # atomic; refused when another worker's is there already
    except OSError:
        return out
    return shared


def config_dump(chain: list[x509.Certificate]) -> str:
    """Envoy's /config_dump as a sidecar holds it: the `default` secret (the workload chain),
    its private key redacted, ROOTCA beside it."""
    inline = base64.b64encode(_pem(*chain).encode()).decode()
    secrets = [
        {
            "name": "default",
            "secret": {
                "name": "default",
                "tls_certificate": {
                    "certificate_chain": {"inline_bytes": inline},
                    "private_key": {"inline_bytes": base64.b64encode(b"[redacted]").decode()},
                },
            },
        },
        {"name": "ROOTCA", "secret": {"name": "ROOTCA", "validation_context": {}}},
    ]
    return json.dumps(
        {
            "configs": [
                {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "bootstrap": {}},
                {
                    "@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
                    "dynamic_active_secrets": secrets,
                },
            ]
        }
    )


def _items(*items: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)})


def _obj(kind: str, ns: str | None, name: str, **rest: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {})}
    meta.update(rest.pop("metadata", {}))
    return {"kind": kind, "metadata": meta, **rest}


def healthy_answers(exp: smoke.Expected, pki: Pki) -> dict[str, Any]:
    """What a healthy dev cluster answers, keyed by question (tests change one key)."""
    workloads = [
        _obj("Deployment", ns, name, spec={"replicas": 1}, status={"availableReplicas": 1})
        for ns, name in [
            *exp.deployments,
            ("istio-system", "istiod"),
            ("nginx-ingress", "nginx-ingress-controller"),
        ]
    ]
    workloads.append(
        _obj(
            "DaemonSet",
            "calico-system",
            "calico-node",
            status={"desiredNumberScheduled": 4, "numberAvailable": 4},
        )
    )
    ready = {"conditions": [{"type": "Ready", "status": "True"}]}
    answers: dict[str, Any] = {
        "workloads": _items(*workloads),
        "namespaces": _items(*(_obj("Namespace", None, n) for n in [*exp.namespaces, "kube-system"])),
        "nodes": _items(*(_obj("Node", None, f"k3d-cpaas-dev-{i}", status=ready) for i in range(exp.nodes))),
        "pools": _items(_obj("IPPool", None, "default-ipv4-ippool", spec={"cidr": "10.42.0.0/16"})),
        "pods": _items(
            _obj(
                "Pod",
                "bookinfo",
                "productpage-v1-abc",
                status={"phase": "Running", "containerStatuses": [{"ready": True}, {"ready": True}]},
            )
        ),
        "config_dump": config_dump([pki.leaf, pki.intermediate]),
        "plaintext": "control=200 exit=0\nmesh=000 exit=56\n",
        "httpbin": "200",
        "bookinfo": "200",
        "traffic": "productpage 200 0.041s\nproductpage 503 0.002s\nproductpage 200 0.038s\n",
        "units": json.dumps(
            {
                "dev": {
                    "intermediateCertPem": _pem(pki.intermediate),
                    "trustDomain": TRUST_DOMAIN,
                    "ingressGateway": "istio-ingress/istio-ingressgateway",
                    "nginx": "nginx-ingress/nginx-ingress-controller",
                }
            }
        ),
    }
    for ns, release in exp.releases:
        labels = {"owner": "helm", "name": release}
        answers[f"helm {release}"] = _items(
            _obj(
                "Secret",
                ns,
                f"sh.helm.release.v1.{release}.v1",
                metadata={"labels": {**labels, "version": "1", "status": "superseded"}},
            ),
            _obj(
                "Secret",
                ns,
                f"sh.helm.release.v1.{release}.v2",
                metadata={"labels": {**labels, "version": "2", "status": "deployed"}},
            ),
        )
    return answers


KUBECONFIG = f"""apiVersion: v1
kind: Config
clusters: [{{name: k3d-cpaas-dev, cluster: {{server: 'https://127.0.0.1:6550'}}}}]
users: [{{name: admin, user: {{client-key-data: {KEY_MARKER}}}}}]
"""


def rules(
    exp: smoke.Expected, answers: dict[str, Any], *, destroy_removes: bool = True
) -> list[dict[str, Any]]:
    def r(tool: str, *match: str, **rest: Any) -> dict[str, Any]:
        return {"tool": tool, "match": list(match), **rest}

    def forward(target: str, port: int) -> dict[str, Any]:
        return r(
            "kubectl", "port-forward", target, hold=True, stdout=f"Forwarding from 127.0.0.1:{port} -> 80\n"
        )

    table = [
        r("pulumi", "pulumi version", stdout="v3.272.0\n"),
        r("pulumi", "stack select dev", when={"stack": True}),
        r("pulumi", "stack select dev", exit=255, stderr="error: no stack named 'dev' found\n"),
        r("pulumi", "stack init dev", set={"stack": True}),
        r("pulumi", "up --stack dev", set={"cluster": True}, stdout="Resources: 60 created\n"),
        r("pulumi", "stack output units --json", stdout=answers["units"]),
        r("pulumi", "preview --stack dev", stdout="Resources: 60 unchanged\n"),
        r("pulumi", "destroy --stack dev", **({"set": {"cluster": False}} if destroy_removes else {})),
        r("k3d", "k3d version", stdout="k3d version v5.9.0\nk3s version v1.34.6-k3s1 (default)\n"),
        r("k3d", "cluster get cpaas-dev", when={"cluster": True}),
        r("k3d", "cluster get cpaas-dev", exit=1, stderr="No nodes found for given cluster\n"),
        r("k3d", "kubeconfig get cpaas-dev", when={"cluster": True}, stdout=KUBECONFIG),
        r("k3d", "kubeconfig get cpaas-dev", exit=1, stderr="cluster not found\n"),
        r("docker", "--version", stdout="Docker version 28.0.4\n"),
        r("docker", "network inspect k3d-cpaas-dev", when={"cluster": True}, stdout="[{}]\n"),
        r("docker", "network inspect k3d-cpaas-dev", exit=1, stderr="Error: No such network\n"),
        r("kubectl", "version --client", stdout="Client Version: v1.34.9\n"),
        r("kubectl", "get deployments,daemonsets,statefulsets -A -o json", stdout=answers["workloads"]),
        r("kubectl", "get namespaces -o json", stdout=answers["namespaces"]),
        r("kubectl", "get nodes -o json", stdout=answers["nodes"]),
        r("kubectl", "get ippools.projectcalico.org -o json", stdout=answers["pools"]),
        r("kubectl", "get pods -n bookinfo -l app=productpage", stdout=answers["pods"]),
        forward("pod/productpage-v1-abc", 15015),
        answers.get("nginx-forward") or forward("svc/nginx-ingress-controller", 18080),
        forward("svc/istio-ingressgateway", 18081),
        r("kubectl", "logs -n httpbin pod/cpaas-smoke-plaintext", stdout=answers["plaintext"]),
        r("kubectl", "logs -n bookinfo deploy/traffic-generator", stdout=answers["traffic"]),
        # collect: one failing pod, its logs
        r("kubectl", "get pods -A --no-headers", stdout="bookinfo reviews-v2-x 1/2 CrashLoopBackOff 3 1m\n"),
        r("kubectl", "get pods -n bookinfo -o name", stdout="pod/reviews-v2-x\n"),
        r("kubectl", "logs -n bookinfo pod/reviews-v2-x", stdout="[reviews-v2-x/reviews] out of memory\n"),
        r("curl", "127.0.0.1:15015/config_dump", stdout=answers["config_dump"]),
        r("curl", "127.0.0.1:18080/get", "Host: httpbin.dev.example.com", stdout=answers["httpbin"]),
        r(
            "curl",
            "127.0.0.1:18081/productpage",
            "Host: bookinfo.dev.example.com",
            stdout=answers["bookinfo"],
        ),
    ]
    for ns, release in exp.releases:
        table.append(
            r(
                "kubectl",
                f"get secrets -n {ns} -l owner=helm,name={release} ",
                stdout=answers[f"helm {release}"],
            )
        )
    return table


def wrapper(tool: str) -> str:
    return f'#!/bin/sh\nexec "{sys.executable}" -I -S "{FAKE}" {tool} "$@"\n'


@dataclass
class Fakes:
    folder: Path
    log: Path
    state: Path
    flags: Path
    tools: dict[str, Path] = field(default_factory=dict)

    def write(self, table: list[dict[str, Any]], **flags: Any) -> None:
        # marshal, not JSON: the fake imports only built-in modules (tests/e2e_fake_tool.py).
        state = {"rules": table, "flags": str(self.flags), "log": str(self.log)}
        self.state.write_bytes(marshal.dumps(state))
        self.flags.write_bytes(marshal.dumps(flags))

    def _logged(self) -> list[dict[str, Any]]:
        return [ast.literal_eval(line) for line in self.log.read_text().splitlines()]

    def calls(self, tool: str | None = None) -> list[str]:
        lines = self._logged() if self.log.exists() else []
        return [" ".join([c["tool"], *c["argv"]]) for c in lines if tool in (None, c["tool"])]

    def envs(self, tool: str) -> list[dict[str, Any]]:
        return [c["env"] for c in self._logged() if c["tool"] == tool]


def make_fakes(root: Path, *tools: str) -> Fakes:
    fakes = Fakes(root / "fakes", root / "calls.log", root / "fake-state.bin", root / "fake-flags.bin")
    fakes.folder.mkdir(parents=True)
    for tool in ("pulumi", "k3d", "kubectl", "docker", "curl"):
        path = fakes.folder / tool if tool in tools else root / f"{tool}.fake"
        path.write_text(wrapper(tool))
        path.chmod(0o755)
        fakes.tools[tool] = path
    return fakes


# ---------------------------------------------------------------------------------------------
# The smoke checks against the fake cluster
# ---------------------------------------------------------------------------------------------


def run_smoke(tmp_path: Path, rendered: Path, answers: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    exp = smoke.load_expected(rendered)
    fakes = make_fakes(tmp_path, "pulumi", "k3d", "kubectl", "docker", "curl")
    fakes.write(rules(exp, answers), cluster=True, stack=True)
    return subprocess.run(
        [sys.executable, "-m", "tools.smoke", "--stack", "dev", "--render", str(rendered), "--timeout", "0"],
        cwd=ROOT,
        env={**os.environ, "PATH": f"{fakes.folder}:/usr/bin:/bin", "E2E_FAKE_STATE": str(fakes.state)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_smoke_passes_every_check_on_a_healthy_unit(tmp_path: Path, rendered: Path, pki: Pki) -> None:
    exp = smoke.load_expected(rendered)
    result = run_smoke(tmp_path, rendered, healthy_answers(exp, pki))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    labels = [line.split(":")[0] for line in lines[:-1]]
    assert labels == [
        f"ok   {c}"
        for c in (
            "namespaces",
            "workloads",
            "helm",
            "nodes",
            "ip pools",
            "mesh certificate",
            "strict mtls",
            "routes",
            "traffic",
        )
    ], result.stdout
    text = result.stdout
    assert f"SAN {SPIFFE}" in text
    assert "default-ipv4-ippool 10.42.0.0/16" in text and "4 nodes Ready" in text
    assert "httpbin.dev.example.com/get through nginx-ingress/nginx-ingress-controller 200" in text
    assert "bookinfo.dev.example.com/productpage through istio-ingress/istio-ingressgateway 200" in text
    assert "2 of 3 productpage calls answered 200" in text
    assert "plaintext from httpbin to productpage.bookinfo refused" in text
    assert lines[-1] == "smoke: unit dev on k3d cluster cpaas-dev: 0 check(s) failed"
    assert KEY_MARKER not in result.stdout + result.stderr


def _unavailable(exp: smoke.Expected, pki: Pki) -> dict[str, Any]:
    answers = healthy_answers(exp, pki)
    doc = json.loads(answers["workloads"])
    doc["items"][0]["status"] = {"availableReplicas": 0}
    return {"workloads": json.dumps(doc)}


def _pool(exp: smoke.Expected, pki: Pki) -> dict[str, Any]:
    return {"pools": _items(_obj("IPPool", None, "default-ipv4-ippool", spec={"cidr": "192.168.0.0/16"}))}


def _failed_release(exp: smoke.Expected, pki: Pki) -> dict[str, Any]:
    labels = {"owner": "helm", "name": "istiod", "version": "3", "status": "failed"}
    return {
        "helm istiod": _items(
            _obj("Secret", "istio-system", "sh.helm.release.v1.istiod.v3", metadata={"labels": labels})
        )
    }


def _node(exp: smoke.Expected, pki: Pki) -> dict[str, Any]:
    doc = json.loads(healthy_answers(exp, pki)["nodes"])
    doc["items"][2]["status"]["conditions"][0]["status"] = "False"
    return {"nodes": json.dumps(doc)}


CASES = {
    "a Deployment is not available": (
        _unavailable,
        "FAIL workloads: Deployment bookinfo/details-v1: 0 of 1 available",
    ),
    "the IP pool has another CIDR": (
        _pool,
        "FAIL ip pools: Calico IP pool default-ipv4-ippool: 192.168.0.0/16, the render has 10.42.0.0/16",
    ),
    "a Helm release failed": (
        _failed_release,
        "FAIL helm: Helm release istio-system/istiod: failed, not deployed",
    ),
    "a node is not Ready": (_node, "FAIL nodes: node k3d-cpaas-dev-2 is not Ready"),
    "the workload certificate is not from the unit intermediate": (
        lambda exp, pki: {"config_dump": config_dump([pki.stranger, pki.intermediate])},
        "FAIL mesh certificate: the workload certificate is not signed by the unit intermediate",
    ),
    "the workload certificate names another SPIFFE ID": (
        lambda exp, pki: {"config_dump": config_dump([pki.wrong_san, pki.intermediate])},
        f"FAIL mesh certificate: the workload certificate's URI SANs are "
        f"['spiffe://cluster.local/ns/bookinfo/sa/default'], expected [{SPIFFE}]",
    ),
    "a plaintext call into the mesh is answered": (
        lambda exp, pki: {"plaintext": "control=200 exit=0\nmesh=200 exit=0\n"},
        "FAIL strict mtls: plaintext call to http://productpage.bookinfo.svc.cluster.local:9080/productpage "
        "from httpbin was answered 200",
    ),
    "the plaintext caller reaches nothing at all": (
        lambda exp, pki: {"plaintext": "control=000 exit=7\nmesh=000 exit=7\n"},
        "FAIL strict mtls: plaintext control call to http://httpbin.httpbin.svc.cluster.local:8000/get "
        "from httpbin: 000",
    ),
    "the plaintext caller printed nothing": (
        lambda exp, pki: {"plaintext": ""},
        "FAIL strict mtls: the plaintext caller in httpbin printed no result",
    ),
    "the port-forward to NGINX does not start": (
        lambda exp, pki: {
            "nginx-forward": {
                "tool": "kubectl",
                "match": ["port-forward", "svc/nginx-ingress-controller"],
                "exit": 1,
                "stderr": 'error: services "nginx-ingress-controller" not found\n',
            }
        },
        "FAIL routes: port-forward to nginx-ingress/svc/nginx-ingress-controller did not start: "
        'error: services "nginx-ingress-controller" not found',
    ),
    "httpbin does not answer through NGINX": (
        lambda exp, pki: {"httpbin": "502"},
        "FAIL routes: httpbin.dev.example.com/get through nginx-ingress/nginx-ingress-controller: 502, "
        "expected 200",
    ),
    "the traffic generator has no successes": (
        lambda exp, pki: {"traffic": "productpage 503 0.002s\nproductpage 000 5.001s\n"},
        "FAIL traffic: traffic generator bookinfo/traffic-generator: no productpage 200 in the last "
        "2 minutes (codes ['000', '503'])",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fails_a_smoke_check_with_its_reason_when(
    case: str, tmp_path: Path, rendered: Path, pki: Pki
) -> None:
    change, line = CASES[case]
    exp = smoke.load_expected(rendered)
    answers = {**healthy_answers(exp, pki), **change(exp, pki)}
    result = run_smoke(tmp_path, rendered, answers)
    assert result.returncode == 1, result.stdout + result.stderr
    fails = [x for x in result.stdout.splitlines() if x.startswith("FAIL")]
    assert len(fails) == 1 and fails[0].startswith(line), result.stdout
    assert result.stdout.splitlines()[-1].endswith(": 1 check(s) failed")


def _with_policy(rendered: Path, tmp_path: Path) -> Path:
    """The render plus an access policy in bookinfo (what the AuthN/AuthZ issue would add)."""
    copy_dir = tmp_path / "render"
    shutil.copytree(rendered, copy_dir)
    (copy_dir / "k8s" / "dev" / "bookinfo" / "authorizationpolicy-require-jwt.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "security.istio.io/v1",
                "kind": "AuthorizationPolicy",
                "metadata": {"name": "require-jwt", "namespace": "bookinfo"},
                "spec": {"rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]},
            }
        )
    )
    return copy_dir


@pytest.mark.parametrize(("answer", "passes"), [("403", True), ("401", True), ("200", False)])
def test_where_the_render_has_access_policies_a_call_without_a_token_must_be_refused(
    answer: str, passes: bool, tmp_path: Path, rendered: Path, pki: Pki
) -> None:
    render = _with_policy(rendered, tmp_path)
    exp = smoke.load_expected(render)
    assert exp.protected == {"bookinfo"}
    result = run_smoke(tmp_path, render, {**healthy_answers(exp, pki), "bookinfo": answer})
    assert (result.returncode == 0) is passes, result.stdout
    if passes:
        assert f"{GATEWAY_ROUTE} {answer} (no token: refused)" in result.stdout
    else:
        assert f"FAIL routes: {GATEWAY_ROUTE}: 200, expected 401 or 403" in result.stdout


def test_smoke_reads_its_expectations_from_the_render_not_from_constants(rendered: Path) -> None:
    exp = smoke.load_expected(rendered)
    dev = stack("dev").units[0]
    assert exp.cluster == k3d_cluster_name(dev.name)
    assert exp.nodes == dev.cluster.servers + dev.cluster.agents
    assert exp.pools == (("default-ipv4-ippool", str(dev.network.pod_cidr)),)
    assert exp.trust_domain == dev.mesh.trust_domain
    assert exp.workload == smoke.Workload("bookinfo", {"app": "productpage"}, "bookinfo-productpage")
    assert {r.host for r in exp.nginx_routes} == {a.fqdn for a in dev.apps if a.kind == "http-nginx"}
    assert {r.host for r in exp.mesh_routes} == {a.fqdn for a in dev.apps if a.kind == "http-mesh"}
    assert exp.protected == frozenset()


def test_smoke_uses_the_port_and_names_the_components_use() -> None:
    from components import demo, routes

    assert smoke.GATEWAY_HTTP_PORT == routes.HTTP_PORT
    assert smoke.TRAFFIC_GENERATOR == demo.TRAFFIC_GENERATOR
    assert "productpage %{http_code}" in demo.TRAFFIC_SCRIPT  # what check_traffic parses


def test_fails_in_one_line_without_a_render_or_a_deployed_stack(
    tmp_path: Path, rendered: Path, pki: Pki
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.smoke", "--render", str(tmp_path / "none")],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "holds no render; run `.venv/bin/python -m tools.render --out " + f"{tmp_path / 'none'}`"
    )
    exp = smoke.load_expected(rendered)
    answers = healthy_answers(exp, pki)
    answers["units"] = "{}"
    result = run_smoke(tmp_path, rendered, answers)
    assert result.returncode == 2
    assert result.stderr == "smoke: pulumi stack output units has no unit dev (is the stack deployed?)\n"


# ---------------------------------------------------------------------------------------------
# The job, run as GitHub runs it
# ---------------------------------------------------------------------------------------------


def _tarball(folder: Path, pulumi: str) -> Path:
    path = folder / "pulumi-v3.272.0-linux-x64.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in (("pulumi/pulumi", pulumi), ("pulumi/pulumi-language-python", "#!/bin/sh\n")):
            info = tarfile.TarInfo(name)
            data = text.encode()
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def downloads(
    fakes: Fakes, pins: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """curl's answers for the three downloads and their publishers' checksum files; the pins that
    match them (the real pins are for the real files)."""
    folder = fakes.folder.parent / "downloads"
    folder.mkdir(exist_ok=True)
    tarball = _tarball(folder, fakes.tools["pulumi"].read_text())
    k3d, kubectl = fakes.tools["k3d"], fakes.tools["kubectl"]
    sums = {"PULUMI_SHA256": _sha(tarball), "K3D_SHA256": _sha(k3d), "KUBECTL_SHA256": _sha(kubectl)}
    published = {**sums, **(pins or {})}
    (folder / "pulumi.sums").write_text(
        f"{'0' * 64}  pulumi-v3.272.0-darwin-arm64.tar.gz\n"
        f"{published['PULUMI_SHA256']}  pulumi-v3.272.0-linux-x64.tar.gz\n"
    )
    (folder / "k3d.sums").write_text(
        f"{'1' * 64}  _dist/k3d-darwin-arm64\n{published['K3D_SHA256']}  _dist/k3d-linux-amd64\n"
    )
    (folder / "kubectl.sha256").write_text(published["KUBECTL_SHA256"])

    def dl(url: str, file: Path) -> dict[str, Any]:
        return {"tool": "curl", "match": [url], "file": str(file)}

    table = [
        dl("https://get.pulumi.com/releases/sdk/pulumi-v3.272.0-linux-x64.tar.gz", tarball),
        dl(
            "https://github.com/pulumi/pulumi/releases/download/v3.272.0/pulumi-3.272.0-checksums.txt",
            folder / "pulumi.sums",
        ),
        dl("https://github.com/k3d-io/k3d/releases/download/v5.9.0/k3d-linux-amd64", k3d),
        dl("https://github.com/k3d-io/k3d/releases/download/v5.9.0/checksums.txt", folder / "k3d.sums"),
        dl("https://dl.k8s.io/release/v1.34.9/bin/linux/amd64/kubectl.sha256", folder / "kubectl.sha256"),
        dl("https://dl.k8s.io/release/v1.34.9/bin/linux/amd64/kubectl", kubectl),
    ]
    return table, sums


def workspace(tmp_path: Path, pins: dict[str, str] | None) -> Path:
    """A checkout: the repo's files (tools/e2e.sh with `pins` instead of the real sha256 pins, as
    the fakes are not the real binaries), the project's .venv, requirement files older than it."""
    work = tmp_path / "workspace"
    (work / "tools").mkdir(parents=True)
    for entry in (ROOT / "tools").iterdir():
        if entry.name not in ("e2e.sh", "__pycache__"):
            (work / "tools" / entry.name).symlink_to(entry)
    text = SCRIPT.read_text()
    for name, value in (pins or {}).items():
        text = re.sub(rf"^{name}=.*$", f"{name}={value}", text, count=1, flags=re.M)
    (work / "tools" / "e2e.sh").write_text(text)
    (work / "tools" / "e2e.sh").chmod(0o755)
    for entry in ("components", "policy", "trust"):
        (work / entry).symlink_to(ROOT / entry)
    for entry in ("Makefile", "Pulumi.yaml", "Pulumi.dev.yaml", "requirements.txt", "requirements-dev.txt"):
        shutil.copyfile(ROOT / entry, work / entry)
    for entry in ("requirements.txt", "requirements-dev.txt"):
        os.utime(work / entry, (0, 0))  # `make venv` must find .venv up to date, never rebuild it
    assert (Path(sys.prefix) / ".installed").is_file(), "run `make venv` first: the test reuses .venv"
    (work / ".venv").symlink_to(Path(sys.prefix))
    return work


@dataclass
class JobRun:
    steps: list[str]  # the names of the steps that ran, `upload` for the artifact upload
    failed: list[str]
    output: str
    fakes: Fakes
    temp: Path
    uploaded: Path | None

    @property
    def artifact(self) -> Path:
        return self.temp / "e2e" / "artifact"


def run_job(tmp_path: Path, rendered: Path, pki: Pki, *, flags: dict[str, Any] | None = None,
            answers: dict[str, Any] | None = None, destroy_removes: bool = True,
            real_render: bool = False) -> JobRun:  # fmt: skip
    """Every step of the job in order, with GitHub's `if:` rules (no `if` = success()), its
    bash (-eo pipefail), RUNNER_TEMP and GITHUB_PATH. Checkout and setup-python are the workspace
    and this Python; the upload step is recorded with the folder it would upload. The render step
    copies the session's dev render (E2E_RENDER_FROM) unless `real_render`."""
    exp = smoke.load_expected(rendered)
    fakes = make_fakes(tmp_path, "docker", "curl")  # the rest come from the install step
    table, sums = downloads(fakes)
    fakes.write(
        table + rules(exp, {**healthy_answers(exp, pki), **(answers or {})}, destroy_removes=destroy_removes),
        **(flags or {}),
    )
    work = workspace(tmp_path, sums)
    temp, github_path = tmp_path / "runner-temp", tmp_path / "github-path"
    temp.mkdir()
    github_path.touch()
    env = {
        "PATH": f"{fakes.folder}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "RUNNER_TEMP": str(temp),
        "GITHUB_PATH": str(github_path),
        "GITHUB_ACTIONS": "true",
        "E2E_FAKE_STATE": str(fakes.state),
        "E2E_SMOKE_TIMEOUT": "0",
        "PYTHON": "false",  # should `make venv` try to rebuild .venv, it fails instead
        **({} if real_render else {"E2E_RENDER_FROM": str(rendered)}),
    }
    ran, failed, output, uploaded = [], [], [], None
    for step in job()["steps"]:
        condition = step.get("if", "success()")
        if not {"success()": not failed, "failure()": bool(failed), "always()": True}[condition]:
            continue
        name = step.get("name") or step["uses"].split("@")[0]
        if "uses" in step:
            if step["uses"].startswith("actions/upload-artifact@"):
                ran.append("upload")
                uploaded = Path(step["with"]["path"].replace("${{ runner.temp }}", str(temp)))
            continue
        added = [p for p in github_path.read_text().splitlines() if p]
        step_env = {**env, "PATH": ":".join([*reversed(added), env["PATH"]])}
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=work, env=step_env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        ran.append(step["run"])
        output.append(f"## {name}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            failed.append(step["run"])
    return JobRun(ran, failed, "\n".join(output), fakes, temp, uploaded)


def _index(calls: list[str], text: str) -> int:
    found = [i for i, c in enumerate(calls) if text in c]
    assert found, f"no call with {text!r}:\n" + "\n".join(calls)
    return found[0]


def _no_secret_leaves(run: JobRun) -> None:
    """Neither the generated passphrase nor the kubeconfig's key is in any step's output, any
    call's arguments or the artifact; the passphrase never was an environment variable."""
    passphrase = (run.temp / "e2e" / "private" / "passphrase").read_text()
    assert len(passphrase) >= 40
    calls = "\n".join(run.fakes.calls())
    for secret in (passphrase, KEY_MARKER):
        assert secret not in run.output and secret not in calls
        if run.artifact.exists():
            for f in run.artifact.rglob("*"):
                assert not f.is_file() or secret not in f.read_text(errors="replace"), f
    for env in run.fakes.envs("pulumi"):
        assert env["PULUMI_CONFIG_PASSPHRASE set"] is False and env["PULUMI_ACCESS_TOKEN set"] is False


PIPELINE = [
    "make venv",
    "tools/e2e.sh install",
    "tools/e2e.sh render",
    "tools/e2e.sh up",
    "tools/e2e.sh smoke",
    "tools/e2e.sh preview",
]


@LINUX_X64
def test_the_job_installs_deploys_checks_previews_and_destroys_in_that_order(
    tmp_path: Path, rendered: Path, pki: Pki
) -> None:
    run = run_job(tmp_path, rendered, pki, real_render=True)
    assert run.failed == [], run.output
    assert run.steps == [*PIPELINE, "tools/e2e.sh destroy"]  # no collect, no upload
    pulumi = [c for c in run.fakes.calls("pulumi") if c != "pulumi version"]
    assert pulumi == [
        "pulumi stack select dev",
        "pulumi stack init dev --secrets-provider passphrase",
        "pulumi up --stack dev --continue-on-error",  # what `make up STACK=dev` runs
        "pulumi stack output units --json --stack dev",
        "pulumi preview --stack dev --expect-no-changes --diff",
        "pulumi stack select dev",
        "pulumi destroy --stack dev",  # what `make destroy STACK=dev` runs
    ]
    calls = run.fakes.calls()
    order = [
        "curl -fsSL --retry 3 --proto =https -o",  # install
        "k3d cluster get cpaas-dev",  # up refuses an existing cluster
        "pulumi up --stack dev",
        "kubectl --kubeconfig",  # smoke
        "pulumi preview",
        "pulumi destroy",
        "docker network inspect k3d-cpaas-dev",
    ]
    positions = [_index(calls, c) for c in order]
    assert positions == sorted(positions), calls
    assert _index(calls, "k3d cluster get cpaas-dev") < _index(calls, "pulumi stack init")
    assert calls[-2:] == ["k3d cluster get cpaas-dev", "docker network inspect k3d-cpaas-dev"]
    # Every Pulumi call: the run's own file backend, the generated passphrase file, no prompts.
    temp = run.temp / "e2e"
    for env in run.fakes.envs("pulumi"):
        assert env["PULUMI_BACKEND_URL"] == f"file://{temp}/state"
        assert env["PULUMI_CONFIG_PASSPHRASE_FILE"] == f"{temp}/private/passphrase"
        assert env["PULUMI_SKIP_CONFIRMATIONS"] == "true"
    assert oct((temp / "private").stat().st_mode & 0o777) == "0o700"
    assert oct((temp / "private" / "passphrase").stat().st_mode & 0o777) == "0o600"
    assert "ok   mesh certificate" in run.output and "0 check(s) failed" in run.output
    assert "verified k3d-linux-amd64" in run.output and "verified kubectl" in run.output
    assert "k3d cluster cpaas-dev and docker network k3d-cpaas-dev are gone" in run.output
    # The logs the artifact would carry, and the render the smoke checks read.
    logs = run.artifact / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["destroy.log", "preview.log", "smoke.log", "up.log"]
    assert "Resources: 60 created" in (logs / "up.log").read_text()
    assert (run.artifact / "render" / "resources.json").is_file()
    # The one real render step: the other job tests copy the session's render (E2E_RENDER_FROM).
    assert (run.artifact / "render" / "resources.json").read_bytes() == (
        rendered / "resources.json"
    ).read_bytes()
    _no_secret_leaves(run)


@LINUX_X64
@pytest.mark.parametrize(
    ("fail", "at"),
    [
        ("pulumi up", "tools/e2e.sh up"),
        ("pulumi preview", "tools/e2e.sh preview"),
        ("curl -fsSL --retry 3 --proto =https -o", "tools/e2e.sh install"),
    ],
)
def test_fails_at_the_first_failing_step_then_collects_destroys_and_uploads(
    fail: str, at: str, tmp_path: Path, rendered: Path, pki: Pki
) -> None:
    run = run_job(tmp_path, rendered, pki, flags={"fail": [fail]})
    assert run.failed[0] == at, run.output
    stopped = PIPELINE.index(at) + 1
    assert run.steps == [*PIPELINE[:stopped], "tools/e2e.sh collect", "tools/e2e.sh destroy", "upload"]
    assert run.uploaded == run.artifact
    if at == "tools/e2e.sh install":
        # Nothing was deployed: nothing to destroy, nothing left; the job fails at install only.
        assert run.failed == [at]
        assert "no k3d cluster cpaas-dev to collect from" in run.output
        return
    calls = run.fakes.calls()
    assert _index(calls, "pulumi destroy") > _index(calls, "get events -A")  # collected before
    cluster = run.artifact / "cluster"
    assert (cluster / "events.txt").is_file() and (cluster / "pods.txt").is_file()
    assert (
        cluster / "logs" / "bookinfo.reviews-v2-x.log"
    ).read_text() == "[reviews-v2-x/reviews] out of memory\n"
    assert (run.artifact / "logs" / f"{at.rsplit(maxsplit=1)[-1]}.log").is_file()
    if at == "tools/e2e.sh up":
        assert not [c for c in calls if "stack output" in c or "pulumi preview" in c]
    _no_secret_leaves(run)


@LINUX_X64
def test_fails_when_a_smoke_check_fails_and_skips_the_preview(
    tmp_path: Path, rendered: Path, pki: Pki
) -> None:
    run = run_job(tmp_path, rendered, pki, answers={"httpbin": "502"})
    assert run.failed == ["tools/e2e.sh smoke"], run.output
    assert run.steps == [*PIPELINE[:5], "tools/e2e.sh collect", "tools/e2e.sh destroy", "upload"]
    assert "FAIL routes: httpbin.dev.example.com/get" in (run.artifact / "logs" / "smoke.log").read_text()
    assert not [c for c in run.fakes.calls("pulumi") if "preview" in c]
    _no_secret_leaves(run)


@LINUX_X64
def test_fails_when_the_cluster_and_its_network_outlive_the_destroy(
    tmp_path: Path, rendered: Path, pki: Pki
) -> None:
    run = run_job(tmp_path, rendered, pki, destroy_removes=False)
    assert run.failed == ["tools/e2e.sh destroy"], run.output
    assert run.steps == [*PIPELINE, "tools/e2e.sh destroy", "upload"]
    assert "e2e: the k3d cluster cpaas-dev is still there after destroy" in run.output
    assert "e2e: the docker network k3d-cpaas-dev is still there after destroy" in run.output
    _no_secret_leaves(run)


# ---------------------------------------------------------------------------------------------
# The install and up subcommands on their own
# ---------------------------------------------------------------------------------------------


def run_script(
    tmp_path: Path, command: str, fakes: Fakes, pins: dict[str, str] | None
) -> subprocess.CompletedProcess[str]:
    work = workspace(tmp_path, pins)
    return subprocess.run(
        ["bash", str(work / "tools" / "e2e.sh"), command],
        cwd=work,
        env={
            "PATH": f"{fakes.folder}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "E2E_DIR": str(tmp_path / "e2e"),
            "E2E_FAKE_STATE": str(fakes.state),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@LINUX_X64
def test_fails_install_when_the_published_k3d_checksum_is_not_the_pinned_one(tmp_path: Path) -> None:
    """The real script and its real pins: the publisher's file (here: the fake's sums) lists a
    k3d that is not the pinned one, so it is refused before anything is installed."""
    fakes = make_fakes(tmp_path, "curl")
    table, sums = downloads(fakes)
    fakes.write(table)
    real = {"PULUMI_SHA256": sums["PULUMI_SHA256"]}  # Pulumi has no pin; k3d and kubectl keep theirs
    result = run_script(tmp_path, "install", fakes, real)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        f"e2e: k3d-linux-amd64: the publisher's checksum ({sums['K3D_SHA256']}) is not the pinned one "
        f"({script_var('K3D_SHA256')}); refusing it"
    )
    assert not (tmp_path / "e2e" / "bin" / "k3d").exists()


@LINUX_X64
def test_fails_install_when_a_download_does_not_match_its_published_checksum(tmp_path: Path) -> None:
    fakes = make_fakes(tmp_path, "curl")
    table, sums = downloads(fakes, pins={"KUBECTL_SHA256": "ab" * 32})
    fakes.write(table)
    result = run_script(tmp_path, "install", fakes, {**sums, "KUBECTL_SHA256": "ab" * 32})
    assert result.returncode == 1
    assert result.stderr.strip().endswith(f"e2e: kubectl does not match its sha256 {'ab' * 32}; refusing it")
    assert (tmp_path / "e2e" / "bin" / "k3d").exists() and not (tmp_path / "e2e" / "bin" / "kubectl").exists()


@LINUX_X64
def test_fails_install_when_the_checksums_file_does_not_list_the_pulumi_tarball(tmp_path: Path) -> None:
    fakes = make_fakes(tmp_path, "curl")
    table, sums = downloads(fakes)
    (fakes.folder.parent / "downloads" / "pulumi.sums").write_text(
        f"{'0' * 64}  pulumi-v3.272.0-darwin-arm64.tar.gz\n"
    )
    fakes.write(table)
    result = run_script(tmp_path, "install", fakes, sums)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        "e2e: the publisher's checksum file lists no pulumi-v3.272.0-linux-x64.tar.gz"
    )


def test_fails_up_when_a_cpaas_dev_cluster_already_exists(tmp_path: Path, rendered: Path, pki: Pki) -> None:
    fakes = make_fakes(tmp_path, "pulumi", "k3d", "kubectl", "docker", "curl")
    exp = smoke.load_expected(rendered)
    fakes.write(rules(exp, healthy_answers(exp, pki)), cluster=True)
    result = run_script(tmp_path, "up", fakes, None)
    assert result.returncode == 1
    assert "e2e: k3d cluster cpaas-dev already exists" in result.stderr
    assert fakes.calls() == ["k3d cluster get cpaas-dev"]


def test_fails_with_the_usage_on_an_unknown_subcommand(tmp_path: Path) -> None:
    fakes = make_fakes(tmp_path)
    fakes.write([])
    result = run_script(tmp_path, "deploy", fakes, None)
    assert result.returncode == 2
    assert result.stderr == "usage: tools/e2e.sh install|render|up|smoke|preview|collect|destroy\n"
