"""The resource graph of one run: parent and dependency edges between recorded registrations.

Used by the render (its order and critical path), the await checks (tools.awaits), the engine's
Run and the tests, so each walk is written once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.engine import Registration

UNIT_TYPE = "cpaas:unit:AtomicUnit"


def stable_order(regs: Sequence[Registration]) -> list[Registration]:
    """A deterministic registration order: parents and dependencies first, ties by URN.

    The SDK registers from several threads, so the raw arrival order can vary run to run.
    """
    by_urn = {r.urn: r for r in regs}
    before: dict[str, set[str]] = {
        r.urn: {d for d in [r.parent, *r.dependencies] if d in by_urn} for r in regs
    }
    first_seen = {r.urn: i for i, r in enumerate(regs)}
    done: list[Registration] = []
    placed: set[str] = set()
    pending = sorted(by_urn)
    while pending:
        ready = [u for u in pending if before[u] <= placed]
        if not ready:  # a cycle cannot happen in a valid program; fall back to arrival order
            ready = sorted(pending, key=first_seen.__getitem__)[:1]
        for urn in ready:
            done.append(by_urn[urn])
            placed.add(urn)
        pending = [u for u in pending if u not in placed]
    return done


def longest_chain(regs: Sequence[Registration]) -> list[Registration]:
    """Longest path over dependency edges (the critical path of a deployment); `regs` in
    stable_order."""
    by_urn = {r.urn: r for r in regs}
    best: dict[str, tuple[int, str]] = {}
    for reg in regs:
        deps = [d for d in reg.dependencies if d in best]
        if deps:
            top = max(deps, key=lambda d: (best[d][0], d))
            best[reg.urn] = (best[top][0] + 1, top)
        else:
            best[reg.urn] = (1, "")
    if not best:
        return []
    end = max(best, key=lambda u: (best[u][0], u))
    chain = []
    cur = end
    while cur:
        chain.append(by_urn[cur])
        cur = best[cur][1]
    return list(reversed(chain))


def ancestors(reg: Registration, by_urn: Mapping[str, Registration]) -> list[Registration]:
    """reg's parents, nearest first (the root Stack is not recorded)."""
    out: list[Registration] = []
    cur = by_urn.get(reg.parent)
    while cur is not None:
        out.append(cur)
        cur = by_urn.get(cur.parent)
    return out


def unit_of(reg: Registration, by_urn: Mapping[str, Registration]) -> str | None:
    """The name of the AtomicUnit reg is (or sits under); None for stack-wide resources."""
    for cur in (reg, *ancestors(reg, by_urn)):
        if cur.type == UNIT_TYPE:
            return cur.name
    return None


def upstream(reg: Registration, by_urn: Mapping[str, Registration]) -> frozenset[str]:
    """URNs `reg` waits for, directly or through other dependencies."""
    seen: set[str] = set()
    todo = list(reg.dependencies)
    while todo:
        urn = todo.pop()
        if urn not in seen:
            seen.add(urn)
            todo.extend(by_urn[urn].dependencies if urn in by_urn else ())
    return frozenset(seen)


def alias_urns(reg: Registration) -> list[str]:
    """The URNs reg's `aliases` option names: the URNs it had before a rename or a move. A spec
    alias leaves out what did not change (name, type, stack, project, parent)."""
    stack, project, qualified, name = reg.urn.removeprefix("urn:pulumi:").split("::", 3)
    type_ = qualified.rsplit("$", 1)[-1]
    out: list[str] = []
    for alias in reg.options.get("aliases", ()):
        if "urn" in alias:
            out.append(alias["urn"])
            continue
        spec = alias.get("spec", {})
        parent = "" if spec.get("noParent") else spec.get("parentUrn") or reg.parent
        chain = parent.split("::")[2] if parent else ""
        chain = "" if chain == "pulumi:pulumi:Stack" else chain
        typed = spec.get("type") or type_
        out.append(
            "urn:pulumi:"
            + "::".join(
                [
                    spec.get("stack") or stack,
                    spec.get("project") or project,
                    f"{chain}${typed}" if chain else typed,
                    spec.get("name") or name,
                ]
            )
        )
    return out
