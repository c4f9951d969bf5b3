"""The offline render: exit codes, files, validation, secrets and determinism."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tools import render
from tools.validate import resolve_schema_dir

RESOURCE_KEYS = {"urn", "type", "name", "parent", "provider", "dependencies", "inputs"}


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, Path, str]]:
    out: dict[str, tuple[int, Path, str]] = {}
    for stack in ("dev", "prod"):
        folder = tmp_path_factory.mktemp(stack)
        out[stack] = (render.main(["--stack", stack, "--out", str(folder)]), folder, "")
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_stack_renders_with_zero_violations_and_no_skipped_schema_family(
    stack: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert resolve_schema_dir(None) is not None, "set CPAAS_SCHEMAS or provide ../shared/schemas"
    code = render.main(["--stack", stack, "--out", str(tmp_path), "--policy"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "violation:" not in printed
    assert "policy: 5 rules, 0 violation(s)" in printed
    assert "skipped:" not in printed
    assert "; 0 violation(s)" in printed
    assert printed.strip().splitlines()[-1].startswith("rendered ")


def test_resources_json_lists_every_registration_with_the_stable_keys(renders: dict) -> None:
    _, folder, _ = renders["prod"]
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
    _, folder, _ = renders["prod"]
    seen: set[str] = set()
    for r in json.loads((folder / "resources.json").read_text()):
        for before in [r["parent"], *r["dependencies"]]:
            assert before == "" or before.endswith("::cpaas-prod") or before in seen, (r["name"], before)
        seen.add(r["urn"])


def test_rendered_files_hold_no_secret_value(renders: dict) -> None:
    for stack in ("dev", "prod"):
        _, folder, _ = renders[stack]
        for name, data in _files(folder).items():
            text = data.decode()
            assert "<secret " not in text, name
            assert "PRIVATE KEY" not in text, name


def test_kubernetes_objects_and_helm_releases_are_written_per_unit(renders: dict) -> None:
    _, folder, _ = renders["prod"]
    files = _files(folder)
    for unit in ("aws-syd", "azure-mel", "onprem-syd"):
        assert f"k8s/{unit}/istio-system/peerauthentication-default.yaml" in files
        assert f"helm/{unit}/istiod.yaml" in files
    assert "k8s/onprem-syd/_cluster/bgppeer-bigip-10-30-0-245.yaml" in files
    release = yaml.safe_load(files["helm/onprem-syd/calico.yaml"])
    assert release["chart"] == "tigera-operator" and release["version"] == "v3.32.1"
    assert {"summary.md", "graph.mmd", "resources.json"} <= set(files)


def test_summary_counts_resources_per_unit_and_names_the_longest_chain(renders: dict) -> None:
    _, folder, _ = renders["prod"]
    summary = (folder / "summary.md").read_text()
    assert "## unit `onprem-syd`" in summary
    assert "## Longest dependency chain:" in summary
    assert "onprem-syd-calico-api-ready" in summary


def test_dev_render_says_the_bigip_side_is_skipped(renders: dict) -> None:
    _, folder, _ = renders["dev"]
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
    assert "skipped: schema family" in printed
    assert os.environ["CPAAS_REQUIRE_SCHEMAS"] == "1"


def test_prod_render_writes_the_bigip_side_of_every_unit(renders: dict) -> None:
    _, folder, _ = renders["prod"]
    files = _files(folder)
    for unit in ("aws-syd", "azure-mel", "onprem-syd"):
        prefix = f"bigip/{unit}/"
        assert f"{prefix}irule-cpaas-{unit}_egress-spiffe-authz.tcl" in files
        assert f"{prefix}virtualserver-cpaas-{unit}_egress.json" in files
        assert f"k8s/{unit}/istio-system/serviceentry-bigip-egress.yaml" in files
        assert f"k8s/{unit}/istio-ingress/virtualserver-bookinfo.yaml" in files
        assert f"k8s/{unit}/mqtt/transportserver-mqtt.yaml" in files
    assert "bigip/onprem-syd/bgp.do.json" in files
    assert "bigip/onprem-syd/command-onprem-syd-bgp-apply.tmsh" in files
    # No BGP where the CNI is the cloud's; every unit saves its config (after apply and destroy).
    assert not [
        f
        for f in files
        if f.startswith(("bigip/aws-syd/command-aws-syd-bgp", "bigip/azure-mel/command-azure-mel-bgp"))
    ]
    for unit in ("aws-syd", "azure-mel", "onprem-syd"):
        for role in ("bigip-save-command", "bigip-save-on-destroy"):
            assert files[f"bigip/{unit}/command-{unit}-{role}.tmsh"].decode() == "save sys config\n"
    tcl = files["bigip/onprem-syd/irule-cpaas-onprem-syd_egress-spiffe-authz.tcl"].decode()
    assert "onprem-syd.cpaas.example-bank.com" in tcl
