"""Session fixtures shared by the test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import configuration

from tests.support import run_build, stack
from tools import engine
from tools.validate import resolve_schema_dir

ROOT = Path(__file__).resolve().parent.parent

# Hypothesis keeps its example database under .hypothesis/ in the working folder; the suite writes
# nothing into the checkout, so it goes to the user's cache (HYPOTHESIS_STORAGE_DIRECTORY wins).
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    configuration.set_hypothesis_home_dir(Path.home() / ".cache" / "cpaas" / "hypothesis")


@pytest.fixture(scope="session")
def schema_dir() -> Path:
    """The upstream schema folder, found as the renderer finds it. Missing: a skip, or with
    CPAAS_REQUIRE_SCHEMAS=1 (CI) a failure, so CI can never pass without validating."""
    path = resolve_schema_dir(None)
    if path is None or not (path / "MANIFEST.md").is_file():
        message = (
            f"no schema folder at {path}: `make test` finds or fetches them; else set CPAAS_SCHEMAS "
            "to a copy or run `make schemas`"
        )
        if os.environ.get("CPAAS_REQUIRE_SCHEMAS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def prod() -> engine.Run:
    """The prod stack (three units) built under the recording mock engine, once per test module."""
    return run_build(stack("prod"), "prod")


@pytest.fixture(scope="module")
def dev() -> engine.Run:
    """The dev stack built under the recording mock engine, once per test module."""
    return run_build(stack("dev"), "dev")
