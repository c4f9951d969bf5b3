"""Session fixtures shared by the test modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.validate import resolve_schema_dir

ROOT = Path(__file__).resolve().parent.parent


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
