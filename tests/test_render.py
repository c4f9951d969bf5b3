"""The offline render: exit codes, files, validation, secrets and determinism."""

from __future__ import annotations

import difflib
import functools
import itertools
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from components import config, versions
from tests import support
from tests.support import raw_stack, run_build
from tools import engine, render
from tools.validate import resolve_schema_dir

RESOURCE_KEYS = {"urn", "type", "name", "parent", "provider", "dependencies", "inputs", "options"}


def _ok(stack: str, result: tuple[Path, int, str]) -> Path:
    """The folder of a render that exited 0; a render that did not fails every test that reads it,
    with what the render printed."""
    folder, code, printed = result
    assert code == 0, f"render of {stack} exited {code}:\n{printed}"
    return folder


@pytest.fixture(scope="module")
def renders(dev_render: tuple[Path, int, str], prod_render: tuple[Path, int, str]) -> dict[str, Path]:
    return {"dev": _ok("dev", dev_render), "prod": _ok("prod", prod_render)}


def test_fails_every_test_reading_a_render_when_the_render_exits_non_zero(tmp_path: Path) -> None:
    printed = "violation: k8s/x.yaml: spec: bad\n"
    with pytest.raises(AssertionError, match=r"render of prod exited 1:\n *violation: k8s/x.yaml: spec: bad"):
        _ok("prod", (tmp_path, 1, printed))


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_stack_renders_with_zero_violations_and_no_skipped_schema_family(
    stack: str, request: pytest.FixtureRequest
) -> None:
    assert resolve_schema_dir(None) is not None, "set CPAAS_SCHEMAS or provide ../shared/schemas"
    _, code, printed = request.getfixturevalue(f"{stack}_render")
    assert code == 0, printed
    assert "violation:" not in printed
    assert "policy: 5 rules, 0 violation(s)" in printed
    assert "skipped:" not in printed
    assert "; 0 violation(s)" in printed
    assert printed.strip().splitlines()[-1].startswith("rendered ")


def test_resources_json_lists_every_registration_with_the_stable_keys(renders: dict) -> None:
    folder = renders["prod"]
    resources = json.loads((folder / "resources.json").read_text())
    assert resources and all(set(r) == RESOURCE_KEYS for r in resources)
    urns = {r["urn"] for r in resources}
    for r in resources:
        assert r["parent"] == "" or r["parent"].startswith("urn:pulumi:prod::cpaas::")
        assert set(r["dependencies"]) <= urns
    types = {r["type"] for r in resources}
    assert {
        "kubernetes:security.istio.io/v1:PeerAuthentication",
        "kubernetes:helm.sh/v3:Release",
        "kubernetes:projectcalico.org/v3:BGPPeer",
        "tls:index/locallySignedCert:LocallySignedCert",
    } <= types


def test_every_resource_is_registered_after_its_parent_and_dependencies(renders: dict) -> None:
    folder = renders["prod"]
    seen: set[str] = set()
    for r in json.loads((folder / "resources.json").read_text()):
        for before in [r["parent"], *r["dependencies"]]:
            assert before == "" or before.endswith("::cpaas-prod") or before in seen, (r["name"], before)
        seen.add(r["urn"])


def test_rendered_files_hold_no_secret_value(renders: dict) -> None:
    for stack in ("dev", "prod"):
        folder = renders[stack]
        for name, data in _files(folder).items():
            text = data.decode()
            assert "<secret " not in text, name
            assert "PRIVATE KEY" not in text, name


def test_kubernetes_objects_and_helm_releases_are_written_per_unit(renders: dict) -> None:
    folder = renders["prod"]
    files = _files(folder)
    for unit in ("aws-syd", "azure-mel", "onprem-syd"):
        assert f"k8s/{unit}/istio-system/peerauthentication-default.yaml" in files
        assert f"helm/{unit}/istiod.yaml" in files
    assert "k8s/onprem-syd/_cluster/bgppeer-bigip-10-30-0-245.yaml" in files
    release = yaml.safe_load(files["helm/onprem-syd/calico.yaml"])
    assert release["chart"] == "tigera-operator" and release["version"] == versions.TIGERA_OPERATOR.version
    assert {"summary.md", "graph.mmd", "resources.json"} <= set(files)


def test_summary_counts_resources_per_unit_and_names_the_longest_chain(renders: dict) -> None:
    folder = renders["prod"]
    summary = (folder / "summary.md").read_text()
    resources = json.loads((folder / "resources.json").read_text())
    units = ("aws-syd", "azure-mel", "onprem-syd", "onprem-syd-b")

    def owner(name: str) -> str | None:  # the longest unit name that prefixes it
        return max((u for u in units if name == u or name.startswith(f"{u}-")), key=len, default=None)

    owned = {u: [r for r in resources if owner(r["name"]) == u] for u in units}
    for unit, regs in owned.items():
        assert f"\n### unit `{unit}`: {len(regs)} resources\n" in summary
    rest = len(resources) - sum(map(len, owned.values()))
    assert f"\n### stack-wide (PKI, GSLB, shared BIG-IPs): {rest} resources\n" in summary

    # The longest path over dependencies, found here by depth-first search.
    by_urn = {r["urn"]: r for r in resources}

    @functools.cache
    def depth(urn: str) -> int:
        return 1 + max((depth(d) for d in by_urn[urn]["dependencies"] if d in by_urn), default=0)

    section = summary.split("## Longest dependency chain: ")[1].split("\n## ")[0]
    chain = re.findall(r"^\d+\. `[^`]+` (\S+)$", section, re.M)
    assert f"## Longest dependency chain: {len(chain)} resources\n" in summary
    assert len(chain) == max(map(depth, by_urn)) > 5
    by_name = {r["name"]: r for r in resources}
    for earlier, later in itertools.pairwise(chain):
        assert by_name[earlier]["urn"] in by_name[later]["dependencies"], (earlier, later)


def test_dev_render_says_the_bigip_side_is_skipped(renders: dict) -> None:
    folder = renders["dev"]
    summary = (folder / "summary.md").read_text()
    assert "skipped: bigip: not configured" in summary
    resources = json.loads((folder / "resources.json").read_text())
    assert not [r for r in resources if r["type"].startswith(("f5bigip:", "cpaas:cis:"))]


def test_two_renders_are_byte_identical(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert render.main(["--stack", "prod", "--out", str(first), "--no-validate"]) == 0
    assert render.main(["--stack", "prod", "--out", str(second), "--no-validate"]) == 0
    assert _files(first) == _files(second)


def test_fails_a_bad_stack_config_with_exit_2_a_line_per_error_and_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "Pulumi.yaml").write_text((render.ROOT / "Pulumi.yaml").read_text())
    doc = yaml.safe_load((render.ROOT / "Pulumi.prod.yaml").read_text())
    doc["config"]["cpaas:units"][1]["network"]["podCidr"] = "10.10.64.0/20"
    doc["config"]["cpaas:units"][0]["apps"][0]["port"] = 70000
    (root / "Pulumi.bad.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setattr(render, "ROOT", root)
    out = tmp_path / "out"
    code = render.main(["--stack", "bad", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert not out.exists()
    assert "Traceback" not in err
    assert "cpaas:units[0].apps[0].port: 70000 is out of range; ports are 1-65535" in err


def test_fails_an_unknown_stack_with_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert render.main(["--stack", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "known stacks: dev, prod" in capsys.readouterr().err


def test_fails_when_schemas_are_required_but_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CPAAS_REQUIRE_SCHEMAS", "1")
    empty = tmp_path / "schemas"
    empty.mkdir()
    code = render.main(["--stack", "dev", "--out", str(tmp_path / "o"), "--schemas", str(empty)])
    printed = capsys.readouterr().out
    assert code == 1
    assert "not found; its objects were NOT validated (CPAAS_REQUIRE_SCHEMAS=1: error)" in printed
    monkeypatch.delenv("CPAAS_REQUIRE_SCHEMAS")
    code = render.main(["--stack", "dev", "--out", str(tmp_path / "o"), "--schemas", str(empty)])
    assert code == 0, "without the requirement the same render passes (and says what it skipped)"
    assert "(CPAAS_REQUIRE_SCHEMAS=1: error)" not in capsys.readouterr().out


def test_prod_render_writes_the_bigip_side_of_every_unit(renders: dict) -> None:
    folder = renders["prod"]
    files = _files(folder)
    for unit in ("aws-syd", "azure-mel", "onprem-syd"):
        prefix = f"bigip/{unit}/"
        assert f"{prefix}irule-cpaas-{unit}_egress-spiffe-authz.tcl" in files
        assert f"{prefix}virtualserver-cpaas-{unit}_egress.json" in files
        assert f"k8s/{unit}/istio-system/serviceentry-bigip-egress.yaml" in files
        assert f"k8s/{unit}/istio-ingress/virtualserver-bookinfo.yaml" in files
        assert f"k8s/{unit}/mqtt/transportserver-mqtt.yaml" in files
    # onprem-syd's BIG-IP is the shared device syd-dc1-bigip: one BGP instance and save for it.
    assert "bigip/syd-dc1-bigip/bgp.do.json" in files
    assert "bigip/_stack/command-syd-dc1-bigip-bgp-apply.tmsh" in files
    # No BGP where the CNI is the cloud's; every unit saves its config (after apply and destroy).
    assert not [
        f
        for f in files
        if f.startswith(("bigip/aws-syd/command-aws-syd-bgp", "bigip/azure-mel/command-azure-mel-bgp"))
    ]
    for unit in ("aws-syd", "azure-mel"):
        for role in ("bigip-save-command", "bigip-save-on-destroy"):
            assert files[f"bigip/{unit}/command-{unit}-{role}.tmsh"].decode() == "save sys config\n"
    for role in ("save-command", "save-on-destroy"):
        assert files[f"bigip/_stack/command-syd-dc1-bigip-{role}.tmsh"].decode() == "save sys config\n"
    tcl = files["bigip/onprem-syd/irule-cpaas-onprem-syd_egress-spiffe-authz.tcl"].decode()
    assert "onprem-syd.cpaas.example-bank.com" in tcl


# ---------------------------------------------------------------------------------------------
# --out: the render removes only what it wrote
# ---------------------------------------------------------------------------------------------


def _render_into(out: Path, capsys: pytest.CaptureFixture[str], stack: str = "dev") -> tuple[int, str]:
    code = render.main(["--stack", stack, "--out", str(out), "--no-validate"])
    return code, capsys.readouterr().err


def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refusals come before any work: evaluating the stack would fail the test."""

    def evaluate(stack: str) -> None:
        raise AssertionError(f"evaluated {stack} before refusing")

    monkeypatch.setattr(render, "evaluate", evaluate)


def test_fails_a_folder_holding_files_no_render_wrote_and_leaves_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "checkout"  # `--out .` in a checkout
    (checkout / ".git").mkdir(parents=True)
    (checkout / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (checkout / "notes.md").write_text("mine\n")
    before = _files(checkout)
    _no_work(monkeypatch)
    code, err = _render_into(checkout, capsys)
    assert code == 2
    assert err == (
        f"render: --out {checkout}: holds files no render wrote (there is no .cpaas-render.json), and "
        "the render removes only its own; name a new or empty folder, or remove this one yourself\n"
    )
    assert _files(checkout) == before


def test_a_second_render_removes_only_the_files_the_first_one_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _render_into(out, capsys, "prod")[0] == 0
    first = _files(out)
    assert json.loads(first[".cpaas-render.json"])["files"] == sorted(set(first) - {".cpaas-render.json"})
    (out / "mine.txt").write_text("mine\n")
    (out / "k8s" / "aws-syd" / "mine.yaml").write_text("mine\n")
    assert _render_into(out, capsys, "dev")[0] == 0
    second = _files(out)
    listed = json.loads(second[".cpaas-render.json"])["files"]
    assert set(second) == {*listed, ".cpaas-render.json", "mine.txt", "k8s/aws-syd/mine.yaml"}
    assert not [f for f in listed if f.startswith(("k8s/aws-syd/", "bigip/"))]  # prod's files are gone
    assert sorted(p.name for p in (out / "k8s").iterdir()) == ["aws-syd", "dev"]  # emptied folders too


@pytest.mark.parametrize("kind", ["file", "under-a-file", "unwritable"])
def test_fails_an_out_path_it_cannot_write_with_exit_2_one_line_before_any_work(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "render.txt"
    target.write_text("mine\n")
    out = {
        "file": target,
        "under-a-file": target / "render",
        "unwritable": Path("/proc/1/render"),  # not writable even for root
    }[kind]
    _no_work(monkeypatch)
    code, err = _render_into(out, capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith(f"render: --out {out}: "), err
    assert target.read_text() == "mine\n"


def test_fails_a_manifest_naming_files_outside_the_folder_and_removes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("mine\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".cpaas-render.json").write_text(json.dumps({"files": ["../precious.txt"]}))
    _no_work(monkeypatch)
    code, err = _render_into(out, capsys)
    assert code == 2 and "is not one a render wrote" in err and len(err.splitlines()) == 1
    assert precious.read_text() == "mine\n"


def test_fails_a_render_folder_holding_a_link_to_a_folder_elsewhere_and_touches_nothing_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, victim = tmp_path / "out", tmp_path / "victim"
    assert _render_into(out, capsys)[0] == 0
    # Someone replaced a folder the render wrote with a link to their own files.
    (victim / "dev").mkdir(parents=True)
    listed = json.loads((out / ".cpaas-render.json").read_text())["files"]
    mine = {p.removeprefix("k8s/"): "mine\n" for p in listed if p.startswith("k8s/dev/")}
    for rel, text in mine.items():
        (victim / rel).parent.mkdir(parents=True, exist_ok=True)
        (victim / rel).write_text(text)
    shutil.rmtree(out / "k8s")
    (out / "k8s").symlink_to(victim, target_is_directory=True)
    _no_work(monkeypatch)
    code, err = _render_into(out, capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "link" in err, err
    assert {str(p.relative_to(victim)): p.read_text() for p in victim.rglob("*") if p.is_file()} == mine


def test_fails_a_missing_schema_folder_with_exit_2_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_work(monkeypatch)
    missing = tmp_path / "no-such-schemas"
    code = render.main(["--stack", "dev", "--out", str(tmp_path / "o"), "--schemas", str(missing)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"render: --schemas {missing}: no such folder; name the schema folder (the one holding "
        "MANIFEST.md), or run `make schemas` and leave it unset\n"
    )
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------
# What a reviewer reads: the verdict, the overviews, graphs GitHub draws, readable diffs
# ---------------------------------------------------------------------------------------------


def test_summary_opens_with_the_verdict_then_one_overview_per_unit_and_the_counts_below(
    renders: dict,
) -> None:
    folder = renders["prod"]
    lines = (folder / "summary.md").read_text().splitlines()
    assert lines[0] == "# Render of stack `prod`"
    assert lines[2] == (
        "**Verdict: passes (exit 0).** Schemas: 0 violations. Policy: 0 violations. "
        "Skipped schema families: none."
    )
    overview = lines.index("## Unit `onprem-syd`: onprem, syd-dc1")
    counts = lines.index("## Resources per unit")
    assert lines.index("## Unit `aws-syd`: aws, ap-southeast-2") < overview < counts
    assert lines[overview + 2 : overview + 5] == [
        "- cluster: kubeconfig from secret `cpaas:kubeconfig-onprem-syd`, Kubernetes 1.34",
        "- CNI: calico-bgp, AS 64512, encapsulation None, BGP to the BIG-IP",
        "- BIG-IP: 10.30.16.10:443, self IPs 10.30.0.245, 10.30.0.246, AS 64513; partitions "
        "`cpaas-onprem-syd-cis` (CIS) and `cpaas-onprem-syd` (Pulumi)",
    ]
    unit = lines[overview:counts]
    assert "| app | kind | FQDN | VIP:port | WAF | GSLB |" in unit
    assert (
        "| bookinfo | http-mesh | bookinfo.apps.example-bank.com | 10.30.17.10:443 | "
        "`/Common/cpaas-onprem-syd-bookinfo-waf-rapid-deployment` (from POLICY_TEMPLATE_RAPID_DEPLOYMENT, "
        "blocking) | global-availability, member 1 of 3 |"
    ) in unit
    assert (
        "| mqtt | tcp | mqtt.apps.example-bank.com | 10.30.17.12:1883 | none | ratio 2, member 3 of 3 |"
        in unit
    )
    assert (
        "- egress: 10.30.17.100:443 to the forward proxy 10.30.18.10:3128; shared SNAT 10.30.17.200" in unit
    )
    assert "| bookinfo | any | 10.30.17.201 (its own) |" in unit
    azure = lines[lines.index("## Unit `azure-mel`: azure, australiasoutheast") : overview]
    assert (
        "- cluster: kubeconfig from stack `example-bank/aks-clusters/prod-mel` output `kubeconfig`, "
        "Kubernetes 1.34" in azure
    )
    assert any("| `/Common/bookinfo-waf` (existing) |" in line for line in azure)
    assert (
        "| bookinfo.apps.example-bank.com | bookinfo | global-availability | onprem-syd, aws-syd, azure-mel |"
        in lines
    )
    assert any(line.startswith("### unit `onprem-syd`: ") for line in lines[counts:])
    assert "| type | count |" not in lines[:counts]


def test_dev_overview_says_there_is_no_bigip_and_why(renders: dict) -> None:
    folder = renders["dev"]
    lines = (folder / "summary.md").read_text().splitlines()
    unit = lines[lines.index("## Unit `dev`: local, local") : lines.index("## Resources per unit")]
    assert unit[2].startswith(
        "- cluster: k3d `rancher/k3s:v1.34.6-k3s1` created by this stack, 1 server, 3 agents"
    )
    assert (
        "- BIG-IP: none; skipped: bigip: not configured, so CIS and every BIG-IP-side resource are skipped"
        in " ".join(unit)
    )
    assert "| mqtt | tcp | - | 172.28.255.12:1883 | none | - |" in unit
    assert "- egress: none" in unit


def _fake_validation(violations: list[str], skipped: set[str]) -> object:
    def validate(rendered: object, stack: object, schema_dir: object) -> tuple[list[str], set[str], object]:
        return violations, skipped, Counter({"kubernetes": 1})

    return validate


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("schema", "Schemas: 1 violation."),
        ("policy", "Policy: 1 violation."),
        ("required-family", "Skipped schema families: `istio-crds` (an error: CPAAS_REQUIRE_SCHEMAS=1)."),
    ],
)
def test_fails_a_render_with_violations_with_exit_1_and_says_so_on_the_first_lines_of_summary_md(
    case: str,
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from policy import rules

    violations = ["k8s/dev/x.yaml: spec.replicas: 'two' is not of type 'integer'"] if case == "schema" else []
    skipped = {"istio-crds"} if case == "required-family" else set()
    monkeypatch.setattr(render, "validate", _fake_validation(violations, skipped))
    monkeypatch.setenv("CPAAS_REQUIRE_SCHEMAS", "1")
    if case == "policy":
        monkeypatch.setattr(
            rules, "check", lambda resources: [("no-plain-secrets", "urn:x", "a secret in plain text")]
        )
    code = render.main(["--stack", "dev", "--out", str(tmp_path), "--policy"])
    capsys.readouterr()
    lines = (tmp_path / "summary.md").read_text().splitlines()
    assert code == 1
    assert lines[2].startswith("**Verdict: FAILS (exit 1).** ") and expected in lines[2], lines[2]
    listed = {
        "schema": f"- schema: {violations[0] if violations else ''}",
        "policy": "- policy: no-plain-secrets: urn:x: a secret in plain text",
        "required-family": "- skipped: schema family `istio-crds`: its objects were NOT validated",
    }[case]
    assert listed in lines[3:8]


def test_a_skipped_schema_family_that_is_not_required_passes_and_still_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(render, "validate", _fake_validation([], {"istio-crds"}))
    monkeypatch.delenv("CPAAS_REQUIRE_SCHEMAS", raising=False)
    code = render.main(["--stack", "dev", "--out", str(tmp_path)])
    capsys.readouterr()
    lines = (tmp_path / "summary.md").read_text().splitlines()
    assert code == 0
    assert lines[2].startswith("**Verdict: passes (exit 0).** ")
    assert "Skipped schema families: `istio-crds` (its objects were NOT validated)." in lines[2]


def test_a_render_without_validation_says_the_schemas_were_not_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render.main(["--stack", "dev", "--out", str(tmp_path), "--no-validate", "--policy"]) == 0
    capsys.readouterr()
    third = (tmp_path / "summary.md").read_text().splitlines()[2]
    assert third == (
        "**Verdict: passes (exit 0).** Schemas: not validated (--no-validate). Policy: 0 violations. "
        "Skipped schema families: none."
    )


@pytest.fixture(scope="module")
def sixteen_units(
    sixteen_prod: tuple[config.StackConfig, engine.Run],
) -> tuple[config.StackConfig, render.Rendered, engine.Run]:
    stack, run = sixteen_prod
    return stack, render.render_files(run, stack, []), run


def _mermaid_edges(text: str) -> int:
    return len(re.findall(r"^\s*\w+ (-->|-\.->)", text, re.M))


def test_every_graph_of_a_16_unit_stack_is_within_mermaids_default_limits(sixteen_units: tuple) -> None:
    """Mermaid does not draw a text over maxTextSize (50000) and refuses a flowchart with more than
    maxEdges (500) edges; GitHub renders with the defaults. Ref: mermaid-js/mermaid@mermaid@11.14.0
    packages/mermaid/src/schemas/config.schema.yaml (maxTextSize, maxEdges)."""
    stack, rendered, run = sixteen_units
    graphs = {path: text for path, text in rendered.files.items() if path.endswith(".mmd")}
    assert set(graphs) == {"graph.mmd", "graph/_stack.mmd", *(f"graph/{u.name}.mmd" for u in stack.units)}
    for path, text in graphs.items():
        assert len(text) <= 50_000, (path, len(text))
        assert _mermaid_edges(text) <= 500, (path, _mermaid_edges(text))
    # Every resource is drawn in exactly one graph/ file (r<n> nodes; x<n> are references).
    drawn = Counter(
        m[1]
        for path, text in graphs.items()
        if path.startswith("graph/")
        for m in re.finditer(r'^\s+r\d+\["([^"<]+)<br/>', text, re.M)
    )
    assert drawn == Counter(r.name for r in run.registrations)


def test_the_stack_graph_draws_units_pki_and_gslb_as_components(renders: dict) -> None:
    folder = renders["prod"]
    text = (folder / "graph.mmd").read_text()
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    labels = re.findall(r'^\s+(\w+)\["([^"]+)"\]', text, re.M)
    names = {label.split("<br/>")[0]: node for node, label in labels}
    assert set(names) == {
        "pki",
        "gslb",
        "aws-syd",
        "azure-mel",
        "onprem-syd",
        "onprem-syd-b",
        "syd-dc1-bigip",
    }
    for unit in ("aws-syd", "azure-mel", "onprem-syd", "onprem-syd-b"):
        assert f"  {names['pki']} --> {names[unit]}" in lines  # the unit's intermediate CA
    for unit in ("aws-syd", "azure-mel", "onprem-syd"):
        assert f'  {names["gslb"]} -.->|"bookinfo, httpbin, mqtt"| {names[unit]}' in lines


def _as3_entry_lines(text: str) -> list[str]:
    """The lines of resources.json's As3 entry (each entry is one `  {` ... `  }` block)."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line == "  {"]
    for start in starts:
        end = next(i for i in range(start, len(lines)) if lines[i] in ("  }", "  },"))
        block = lines[start : end + 1]
        if '    "type": "f5bigip:index/as3:As3",' in block:
            return block
    raise AssertionError("no As3 entry in resources.json")


def test_a_one_address_change_of_a_wide_ip_member_diffs_as_one_line_of_resources_json() -> None:
    raw = raw_stack("prod")
    before = render.render_files(run_build(config.parse_stack(raw), "prod"), config.parse_stack(raw), [])
    raw["units"][0]["apps"][0]["vip"] = "10.10.17.99"  # aws-syd bookinfo: a wide IP member
    changed = render.render_files(run_build(config.parse_stack(raw), "prod"), config.parse_stack(raw), [])
    old = _as3_entry_lines(before.files["resources.json"])
    new = _as3_entry_lines(changed.files["resources.json"])
    diff = [
        line
        for line in difflib.unified_diff(old, new, lineterm="", n=0)
        if line[:1] in "+-" and line[:3] not in ("---", "+++")
    ]
    assert diff == [
        '-                    "address": "10.10.17.10",',
        '+                    "address": "10.10.17.99",',
    ], diff[:6]


def test_resources_json_shows_the_as3_declaration_parsed_and_it_is_what_the_provider_gets(
    renders: dict,
) -> None:
    folder = renders["prod"]
    entries = [r for r in json.loads((folder / "resources.json").read_text()) if r["type"] == render.AS3_TYPE]
    _, run, _ = render.evaluate("prod")
    by_name = {r.name: r for r in run.by_type(render.AS3_TYPE)}
    assert sorted(e["name"] for e in entries) == sorted(by_name) == ["aws-syd-access-as3", "gslb-as3"]
    for entry in entries:
        as3 = by_name[entry["name"]]
        assert isinstance(entry["inputs"]["as3Json"], dict)
        assert json.dumps(entry["inputs"]["as3Json"], sort_keys=True) == as3.inputs["as3Json"]
        assert isinstance(as3.inputs["as3Json"], str)  # the registration itself is untouched


def test_every_rendered_kubernetes_file_reads_back_as_the_object_the_program_registered(
    prod: engine.Run,
) -> None:
    rendered = render.render_files(prod, support.stack("prod"), [])
    assert len(rendered.k8s) > 50
    for path, _unit, obj in rendered.k8s:
        assert yaml.safe_load(rendered.files[path]) == obj, path
