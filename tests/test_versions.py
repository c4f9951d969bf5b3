"""Where charts and images come from: every pin in components/versions.py, none from a host its
publisher retires."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from components import demo, versions
from tests.support import ROOT, run_build, stack
from tools import engine

# Istio leaves GCP in December 2026: charts leave istio-release.storage.googleapis.com and
# gcr.io/istio-release/charts, images leave gcr.io/istio-release and registry.istio.io/release.
# Ref: https://github.com/istio/istio.io/blob/0305f3f657119380cc2f31b35e76f6793e5a1458/content/en/blog/2026/retirement-of-gcp/index.md
RETIRED_HOSTS = ("istio-release.storage.googleapis.com", "gcr.io/istio-release", "registry.istio.io")


@pytest.fixture(scope="module", params=["dev", "prod"])
def run(request: pytest.FixtureRequest) -> engine.Run:
    return run_build(stack(request.param), request.param)


def test_no_chart_or_image_comes_from_a_host_its_publisher_retires(run: engine.Run) -> None:
    for reg in run.registrations:
        text = json.dumps(reg.inputs)
        for host in RETIRED_HOSTS:
            assert host not in text, f"{reg.name} uses {host}"


def test_istios_charts_come_from_its_blob_repository_at_the_pinned_version() -> None:
    assert versions.ISTIO_REPO == "https://blob.istio.io/istio-release/charts"
    for chart in (versions.ISTIO_BASE, versions.ISTIOD, versions.ISTIO_GATEWAY):
        assert (chart.repo, chart.version) == (versions.ISTIO_REPO, versions.ISTIO_VERSION)
    assert {c.repo for c in versions.istio_charts("1.30.9")} == {versions.ISTIO_REPO}


def test_bookinfo_images_are_pinned_in_versions_and_come_from_docker_hub() -> None:
    assert versions.BOOKINFO_HUB == "docker.io/istio"
    assert demo.bookinfo_image("reviews", "v3") == (
        f"{versions.BOOKINFO_HUB}/examples-bookinfo-reviews-v3:{versions.BOOKINFO_TAG}"
    )


# A pin as written in code: a dotted version (v3.32.1, 1.45.0, 0.0.33, 1.20.3-rc.1) or a commit.
# Not an IPv4 address: four dotted numbers are left alone.
_PIN = re.compile(r"(?<![\w.])v?\d+\.\d+\.\d+(?:-[\w.]+)?(?![\w.])|\b[0-9a-f]{40}\b")


def _literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the file's string constants, docstrings left out (they may name versions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def test_no_component_holds_a_version_or_commit_pin_of_its_own() -> None:
    """Issue 15: pins live in components/versions.py only, the config models' defaults included."""
    found = [
        f"{path.relative_to(ROOT)}:{line}: {pin}"
        for path in sorted((ROOT / "components").rglob("*.py"))
        if path.name != "versions.py"
        for line, text in _literals(path)
        for pin in _PIN.findall(text)
    ]
    assert not found, "pins outside components/versions.py (move them there): " + "; ".join(found)


def test_the_schemas_make_schemas_fetches_are_those_of_the_pinned_as3_and_do_versions() -> None:
    """tools/schemas.py names upstream files by version: they must follow components/versions.py."""
    text = (ROOT / "tools" / "schemas.py").read_text()
    as3 = set(re.findall(r"f5-appsvcs-extension/[0-9a-f]{40}/schema/([\d.]+)/", text))
    assert as3 == {versions.AS3_SCHEMA_VERSION}
