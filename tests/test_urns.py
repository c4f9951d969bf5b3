"""Names of resources are a contract: every URN of each stack, as the render evaluates it, is kept in
tests/snapshots/urns-<stack>.txt. A URN that disappears or appears fails here until the snapshot is
updated on purpose (`make snapshots`). Pulumi deletes a resource whose URN is gone and creates the
new one, unless the renamed resource carries `aliases` naming its old URN."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.support import ROOT
from tools import graph, render

SNAPSHOTS = ROOT / "tests" / "snapshots"
UPDATE = "CPAAS_UPDATE_SNAPSHOTS"
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))


def snapshot_path(stack: str) -> Path:
    return SNAPSHOTS / f"urns-{stack}.txt"


def evaluated(stack: str) -> tuple[list[str], dict[str, str]]:
    """The stack's URNs, sorted, and {old URN: URN of the resource whose aliases name it}."""
    _, run, _ = render.evaluate(stack)
    aliased = {old: reg.urn for reg in run.registrations for old in graph.alias_urns(reg)}
    return sorted(reg.urn for reg in run.registrations), aliased


def changes(snapshot: Sequence[str], now: Sequence[str], aliased: Mapping[str, str]) -> list[str]:
    """One line per URN gone from or new to the snapshot; empty when they are the same."""
    lines = []
    for urn in sorted(set(snapshot) - set(now)):
        if urn in aliased:
            lines.append(f"- gone: {urn} (an alias of {aliased[urn]} names it: Pulumi keeps the resource)")
        else:
            lines.append(
                f"- gone: {urn} (no alias names it: Pulumi would delete it; if it was renamed or moved, "
                "give the new resource `aliases` with its old name or parent)"
            )
    lines += [f"+ new: {urn}" for urn in sorted(set(now) - set(snapshot))]
    return lines


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_keeps_the_urn_its_snapshot_records(stack: str) -> None:
    path = snapshot_path(stack)
    now, aliased = evaluated(stack)
    if os.environ.get(UPDATE) == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text("".join(f"{urn}\n" for urn in now), encoding="utf-8")
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: `make snapshots` writes it"
    found = changes(path.read_text(encoding="utf-8").splitlines(), now, aliased)
    assert found == [], "\n".join(
        [
            f"the URNs of stack {stack} are not the ones {path.relative_to(ROOT)} records:",
            *found,
            "If the change is intended (and every rename carries `aliases`), run `make snapshots` "
            "and commit the snapshot with the change.",
        ]
    )


def test_the_snapshots_cover_every_stack_and_each_lists_its_urns_once_in_order() -> None:
    assert sorted(p.name for p in SNAPSHOTS.glob("urns-*.txt")) == [f"urns-{s}.txt" for s in STACKS]
    assert {"dev", "prod"} <= set(STACKS)
    for stack in STACKS:
        urns = snapshot_path(stack).read_text(encoding="utf-8").splitlines()
        assert urns == sorted(set(urns)) and all(u.startswith(f"urn:pulumi:{stack}::cpaas::") for u in urns)


OLD = "urn:pulumi:prod::cpaas::cpaas:unit:AtomicUnit$cpaas:mesh:Mesh::aws-syd-mesh"
NEW = "urn:pulumi:prod::cpaas::cpaas:unit:AtomicUnit$cpaas:mesh:Mesh::aws-syd-istio"


def test_fails_a_rename_without_an_alias_saying_pulumi_would_delete_the_resource() -> None:
    assert changes([OLD], [NEW], {}) == [
        f"- gone: {OLD} (no alias names it: Pulumi would delete it; if it was renamed or moved, give "
        "the new resource `aliases` with its old name or parent)",
        f"+ new: {NEW}",
    ]


def test_fails_a_rename_with_an_alias_until_the_snapshot_is_updated() -> None:
    assert changes([OLD], [NEW], {OLD: NEW}) == [
        f"- gone: {OLD} (an alias of {NEW} names it: Pulumi keeps the resource)",
        f"+ new: {NEW}",
    ]
    assert changes([OLD, NEW], [NEW, OLD], {}) == []
