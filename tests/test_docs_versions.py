"""docs/versions.md's table of pins says what components/versions.py holds, all of it and nothing
else (issue 15 section 2)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from components import versions
from tests.support import ROOT, run
from tools import versionsdoc

DOC = ROOT / "docs" / "versions.md"
# A version as the table would name one: 3.32.1, v1.34.6-k3s1, 0.0.33.
VERSION = re.compile(r"\bv?\d+(?:\.\d+)+(?:-[0-9A-Za-z.]+)?")


def _leaves(value: object) -> list[str]:
    """Every plain value inside a pin, found without the generator's help."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [leaf for field in dataclasses.astuple(value) for leaf in _leaves(field)]
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in (*_leaves(k), *_leaves(v))]
    if isinstance(value, list | tuple | frozenset | set):
        return [leaf for item in value for leaf in _leaves(item)]
    return [str(value)] if str(value) else []


def _pins() -> dict[str, object]:
    return {
        name: value
        for name, value in vars(versions).items()
        if re.fullmatch(r"[A-Z][A-Z0-9_]*", name) and not callable(value)
    }


def _rows() -> dict[str, str]:
    """The table's rows by the pin its first cell names."""
    rows: dict[str, str] = {}
    for line in DOC.read_text().splitlines():
        if match := re.match(r"^\| `([A-Z][A-Z0-9_]*)` \|(.*)\|$", line):
            assert match[1] not in rows, f"{match[1]} has two rows"
            rows[match[1]] = match[2]
    return rows


def test_every_pin_in_versions_py_has_a_row_with_its_value() -> None:
    rows = _rows()
    assert _pins(), "components/versions.py holds no pins"
    for name, value in _pins().items():
        assert name in rows, f"docs/versions.md has no row for versions.{name}"
        for leaf in _leaves(value):
            assert f"`{leaf}`" in rows[name], f"{name}: {leaf} is not in its row: {rows[name]}"


def test_the_table_names_no_pin_or_version_versions_py_does_not_hold() -> None:
    pins = _pins()
    for name, row in _rows().items():
        assert name in pins, f"docs/versions.md names versions.{name}, which does not exist"
        for version in VERSION.findall(row):
            assert any(version in leaf for leaf in _leaves(pins[name])), f"{name}: {version} is not its pin"


def test_the_table_is_what_the_generator_makes_now() -> None:
    assert versionsdoc.table() in DOC.read_text()


def test_the_generator_check_fails_on_a_stale_table_and_says_how_to_fix_it(tmp_path: Path) -> None:
    stale = tmp_path / "versions.md"
    stale.write_text(DOC.read_text().replace(f"`{versions.ISTIO_VERSION}`", "`0.0.0`", 1))
    result = run(
        [str(ROOT / ".venv/bin/python"), "-m", "tools.versionsdoc", "--check", "--doc", str(stale)], cwd=ROOT
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"versionsdoc: {stale} does not match components/versions.py; run "
        "`.venv/bin/python -m tools.versionsdoc` and commit the result\n"
    )


def test_every_pin_the_prose_names_is_one_versions_py_holds() -> None:
    prose = DOC.read_text().split(versionsdoc.END, 1)[1]
    named = {
        n for span in re.findall(r"`([^`\n]+)`", prose) for n in re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", span)
    }
    assert named, "the prose names no pin"
    assert sorted(named - set(_pins())) == []
