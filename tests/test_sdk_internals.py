"""The private Pulumi SDK symbols the engine relies on (tools/sdk_internals.py) are there, with the
shape it needs, in the pinned SDK; an upgrade that changes one fails here by name."""

from __future__ import annotations

import importlib

import pytest

from tools import sdk_internals


def test_every_sdk_internal_the_engine_uses_has_the_shape_it_relies_on() -> None:
    found = sdk_internals.problems()
    assert found == [], "\n".join(found)


def test_the_installed_sdk_is_the_one_requirements_pins() -> None:
    assert sdk_internals.installed() == sdk_internals.pinned(), (
        "run `make venv` after changing requirements.txt"
    )


@pytest.mark.parametrize("internal", sdk_internals.INTERNALS, ids=lambda i: i.symbol)
def test_fails_naming_the_symbol_and_the_pinned_version_when_an_upgrade_removes_it(
    internal: sdk_internals.Internal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(importlib.import_module(internal.module), internal.name)
    [line] = sdk_internals.problems()
    assert line.startswith(f"{internal.symbol}: missing;")
    assert f"requirements.txt pins {sdk_internals.pinned()}" in line


@pytest.mark.parametrize(
    ("internal", "changed"),
    [
        (sdk_internals.RUN_PULUMI_FUNC, lambda func: None),  # no longer a coroutine function
        (sdk_internals.SYNC_AWAIT, lambda awaitable, loop: None),  # a new required argument
        (sdk_internals.WIRE[1], "another-signature"),
        (sdk_internals.REGISTER_REQUEST, sdk_internals.READ_REQUEST.load()),  # fields we record gone
        (sdk_internals.SETTINGS_, object()),
    ],
    ids=lambda v: v.symbol if isinstance(v, sdk_internals.Internal) else "",
)
def test_fails_naming_the_symbol_when_an_upgrade_changes_its_shape(
    internal: sdk_internals.Internal, changed: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importlib.import_module(internal.module), internal.name, changed)
    [line] = sdk_internals.problems()
    assert line.startswith(f"{internal.symbol}: changed shape; cpaas needs {internal.expected}.")
    assert f"requirements.txt pins {sdk_internals.pinned()}" in line


def test_loading_a_missing_symbol_raises_an_import_error_that_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    internal = sdk_internals.SYNC_AWAIT
    monkeypatch.delattr(importlib.import_module(internal.module), internal.name)
    with pytest.raises(ImportError, match=r"^pulumi\.runtime\.sync_await\._sync_await: missing;"):
        internal.load()
