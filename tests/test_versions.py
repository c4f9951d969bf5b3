"""Where charts and images come from: every pin in components/versions.py, none from a host its
publisher retires."""

from __future__ import annotations

import json

import pytest

from components import demo, versions
from tests.support import run_build, stack
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
