"""The offline plan: the steps `pulumi up` would take from one render of a stack to the program now.

    python -m tools.plan --stack prod [--base REV] [--json FILE] [--replace URN ...]

The base is the stack rendered at git revision REV (default HEAD) with the code and stack files
of REV, in a temporary git worktree: its resources.json stands in for the stack's state (urn,
type, inputs, parent, provider, dependencies, and the options when REV records them). The head
is the working tree's program run as `pulumi preview` runs it against that state: each
registration, in program order, is matched with its old entry (by URN, or an alias), and
decided same, create, update or replace; what the provider computes for a created or replaced
resource is unknown to the resources registered after it, as in a real preview (a replaced
key's PEM is unknown in the certificate that uses it).

Steps come in the engine's order (Ref: pulumi/pulumi v3.259.0 pkg/resource/deploy/):
- creates, updates and replacements as the program registers them (deployment_executor.go
  handleSingleEvent: each registration's steps run as one chain, step_executor.go); the plan
  orders registrations after their parent, dependencies and provider, ties by URN
  (program_order), as the arrival order varies run to run;
- a replacement creates the new resource where it registers and deletes the old one at the end
  with the other deletes (step_generator.go continueStepsFromDiff: CreateReplacement, Replace,
  "the delete step is generated later on"); a delete-before-replace (a defined
  deleteBeforeReplace option, else the provider's answer: tools/replace_rules.py) deletes first,
  and before that the resources that depend on it and are replaced too, dependents first
  (calculateDependentReplacements);
- the deletes after everything else (deployment_executor.go performPostSteps: GenerateDeletes,
  then ScheduleDeletes' antichains run one after another): a resource goes after every resource
  that depends on it, its children and the resources its provider serves (step_generator.go
  ScheduleDeletes; pkg/resource/graph/dependency_graph.go DependenciesOf: dependencies,
  provider, parent, a component dependency's children); within an antichain (deleted in
  parallel), by URN.
Unchanged resources are left out. Exit 0 with or without changes, 2 for invalid config or a
REV that is no commit (one line each).

What it cannot know: the providers' own diff (server-side defaults, normalisation: this plan
compares rendered inputs, tools/replace_rules.py says which paths replace), drift between the
state and the devices, secrets' values (masked in renders: a secret that changes but stays
known is not seen), and values only providers compute.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format

from components import config
from components.platform import DeployInputs
from tools import engine, graph, prdiff, replace_rules, stackfile
from tools import sdk_internals as sdk

ROOT = Path(__file__).resolve().parent.parent
OPS = ("create", "update", "replace", "delete")
CREATE_REPLACEMENT = "create-replacement"
DELETE_REPLACED = "delete-replaced"


@dataclass(frozen=True)
class Step:
    urn: str
    type: str
    op: str  # one of OPS
    reasons: tuple[str, ...] = ()
    # A replacement is two steps: its creation (where the program registers it) and the old
    # resource's deletion (first for delete-before-replace, else at the end).
    phase: str = ""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "urn": self.urn,
            "type": self.type,
            "op": self.op,
            "reasons": list(self.reasons),
        }
        if self.phase:
            out["phase"] = self.phase
        return out


@dataclass(frozen=True)
class Res:
    """A resource as the plan compares it: an old state entry or a new registration."""

    urn: str
    type: str
    parent: str = ""
    provider: str = ""  # "urn::id"
    dependencies: tuple[str, ...] = ()
    inputs: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def custom(self) -> bool:
        return not self.type.startswith("cpaas:")

    @property
    def provider_urn(self) -> str:
        return self.provider.rsplit("::", 1)[0] if self.provider else ""

    @staticmethod
    def of_entry(entry: Mapping[str, Any]) -> Res:
        """A resources.json entry (an old render's lacks `options`: none recorded)."""
        return Res(
            urn=entry["urn"],
            type=entry["type"],
            parent=entry.get("parent") or "",
            provider=entry.get("provider") or "",
            dependencies=tuple(entry.get("dependencies") or ()),
            inputs=entry.get("inputs") or {},
            options=entry.get("options") or {},
        )


@dataclass(frozen=True)
class Decision:
    op: str  # "same" or one of create, update, replace
    reasons: tuple[str, ...] = ()
    delete_first: bool = False


def counts(steps: Iterable[Step]) -> dict[str, int]:
    """Resources per op (a replacement's deletion is part of its replace)."""
    out = dict.fromkeys(OPS, 0)
    for step in steps:
        if step.phase != DELETE_REPLACED:
            out[step.op] += 1
    return out


def counts_text(steps: Iterable[Step]) -> str:
    """ "1 to create, 0 to update, ...": resources per op."""
    return ", ".join(f"{n} to {op}" for op, n in counts(steps).items())


# ---------------------------------------------------------------------------------------------
# Deciding one resource
# ---------------------------------------------------------------------------------------------


def _path_parts(path: str) -> list[str]:
    return [p for p in path.replace("[", ".").replace("]", "").split(".") if p]


def _contains(outer: str, inner: str) -> bool:
    """A property path contains another (replaceOnChanges "spec" contains "spec.x"; "*" all)."""
    a, b = _path_parts(outer), _path_parts(inner)
    return len(a) <= len(b) and all(x in ("*", y) for x, y in zip(a, b, strict=False))


def _ignored(new: Mapping[str, Any], old: Mapping[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """The new inputs with the old values at `ignoreChanges` paths (what the engine diffs).
    Ref: pulumi/pulumi v3.259.0 pkg/resource/deploy/step_generator.go processIgnoreChanges."""
    out: dict[str, Any] = json.loads(json.dumps(new))
    for path in paths:
        parts = _path_parts(path)
        src: Any = old
        dst: Any = out
        for part in parts[:-1]:
            src = src.get(part) if isinstance(src, dict) else None
            dst = dst.setdefault(part, {}) if isinstance(dst, dict) else None
        if not parts or not isinstance(dst, dict):
            continue
        if isinstance(src, dict) and parts[-1] in src:
            dst[parts[-1]] = src[parts[-1]]
        else:
            dst.pop(parts[-1], None)
    return out


def delete_before_replace(options: Mapping[str, Any]) -> bool | None:
    """The deleteBeforeReplace option when the program sets it, else None (the provider decides)."""
    if not options.get("deleteBeforeReplaceDefined") and not options.get("deleteBeforeReplace"):
        return None
    return bool(options.get("deleteBeforeReplace"))


def trigger_replaces(new: Any, old: Any) -> bool:
    """Ref: pulumi/pulumi v3.259.0 step_generator.go shouldTriggerReplace: unknown on either
    side replaces, no trigger on either side does not, else replace when they differ."""
    text = json.dumps([new, old])
    if engine.UNKNOWN in text:
        return True
    if new is None or old is None:
        return False
    return bool(new != old)


class Planner:
    """Decides each registration against the old state, in registration order."""

    def __init__(self, old: Iterable[Res], targets: Iterable[str] = ()):
        self.old: dict[str, Res] = {r.urn: r for r in old}
        self.targets = frozenset(targets)  # `pulumi up --replace URN`
        self.matched: dict[str, str] = {}  # new urn -> old urn
        self.aliased: dict[str, str] = {}  # old urn -> new urn (renames)
        self.new: dict[str, Res] = {}
        self.decisions: dict[str, Decision] = {}

    def match(self, new: Res, alias_urns: Sequence[str] = ()) -> Res | None:
        for urn in (new.urn, *alias_urns, *self._inherited(new, alias_urns)):
            if urn in self.old and urn not in self.matched.values():
                if urn != new.urn:
                    self.aliased[urn] = new.urn
                self.matched[new.urn] = urn
                return self.old[urn]
        return None

    def _inherited(self, new: Res, alias_urns: Sequence[str]) -> list[str]:
        """The aliases a child inherits from a parent that was found by an alias: its own URN
        and each of its aliases, moved under the parent's old URN, and a name that starts with
        the parent's name renamed as the parent was.
        Ref: pulumi/pulumi v3.259.0 pkg/resource/deploy/step_generator.go (generateAliases,
        inheritedChildAlias)."""
        parent_alias = self.matched.get(new.parent, new.parent)
        if not new.parent or parent_alias == new.parent:
            return []
        parent_name, alias_name = new.parent.rsplit("::", 1)[1], parent_alias.rsplit("::", 1)[1]
        stack_project, qualified = parent_alias.rsplit("::", 2)[0], parent_alias.split("::")[2]
        out = []
        for urn in (new.urn, *alias_urns):
            type_, name = urn.split("::")[2].rsplit("$", 1)[-1], urn.rsplit("::", 1)[1]
            if name.startswith(parent_name):
                name = alias_name + name[len(parent_name) :]
            out.append(f"{stack_project}::{qualified}${type_}::{name}")
        return out

    def read(self, new: Res, alias_urns: Sequence[str] = ()) -> None:
        """A read resource: matched, never a step."""
        self.new[new.urn] = new
        self.match(new, alias_urns)
        self.decisions[new.urn] = Decision("same")

    def decide(self, new: Res, alias_urns: Sequence[str] = ()) -> Decision:
        self.new[new.urn] = new
        old = self.match(new, alias_urns)
        decision = Decision("create") if old is None else self._diff(new, old)
        self.decisions[new.urn] = decision
        return decision

    def _provider_reasons(self, new: Res, old: Res) -> list[str]:
        """Ref: step_generator.go providerChanged: a new provider reference replaces the
        resource only when the provider itself is replaced (DiffConfig says so)."""
        if new.provider == old.provider:
            return []
        urn = new.provider_urn
        if self.aliased.get(old.provider_urn) == urn or old.provider_urn == urn:
            replaced = self.decisions.get(urn, Decision("same")).op == "replace"
            return [f"its provider {urn} is replaced"] if replaced else []
        before, after = self.old.get(old.provider_urn), self.new.get(urn)
        if before is None or after is None or before.type != after.type:
            return [f"it moves to another provider ({urn})"]
        why = replace_rules.replace_reasons(after.type, dict(before.inputs), dict(after.inputs))
        return (
            [f"it moves to provider {urn}, which differs from the old one: {'; '.join(why)}"] if why else []
        )

    def _provider_inputs(self, new: Res) -> Mapping[str, Any]:
        """The config of the provider that diffs `new`: its new inputs, as the engine configures
        an updated provider before the resources it serves register (Ref: pulumi/pulumi v3.259.0
        pkg/resource/deploy/providers/registry.go Update); none for a default provider."""
        provider = self.new.get(new.provider_urn)
        return provider.inputs if provider is not None else {}

    def _diff(self, new: Res, old: Res) -> Decision:
        inputs = _ignored(new.inputs, old.inputs, new.options.get("ignoreChanges") or ())
        changed = replace_rules.changed_paths(dict(old.inputs), inputs)
        reasons = self._provider_reasons(new, old)
        if new.urn in self.targets:
            # Ref: step_generator.go diff: isTargetedReplace blames the id.
            reasons.append("targeted: `pulumi up --replace`")
        if trigger_replaces(new.options.get("replacementTrigger"), old.options.get("replacementTrigger")):
            reasons.append("its replacementTrigger changes")
        if changed and new.custom:
            reasons += replace_rules.replace_reasons(
                new.type, dict(old.inputs), inputs, provider=self._provider_inputs(new)
            )
            on = new.options.get("replaceOnChanges") or ()
            reasons += [f"replaceOnChanges {p}: {c} changes" for p in on for c in changed if _contains(p, c)]
        if reasons:
            return self._replace(new, old, reasons)
        return Decision("update", tuple(changed)) if changed else Decision("same")

    def _replace(self, new: Res, old: Res, reasons: list[str]) -> Decision:
        option = delete_before_replace(new.options)
        first = (
            option if option is not None else replace_rules.deletes_first(new.type, new.inputs, old.inputs)
        )
        if first:
            how = "the deleteBeforeReplace option" if option else "the provider asks for it"
            reasons.append(f"deletes the old one first ({how})")
        if old.options.get("protect") or new.options.get("protect"):
            reasons.append("protected: `pulumi up` stops here until the protect option is removed")
        return Decision("replace", tuple(dict.fromkeys(reasons)), first)

    def deleted(self) -> list[Res]:
        """Old resources no registration matched, in the old state's order."""
        taken = set(self.matched.values())
        return [r for urn, r in self.old.items() if urn not in taken]


# ---------------------------------------------------------------------------------------------
# Running the program against the old state
# ---------------------------------------------------------------------------------------------


class PlanMocks(engine.StateMocks):
    """StateMocks whose computed outputs are unknown exactly for what is created or replaced; a
    same or updated resource answers its old outputs, as providers do in a preview (Ref:
    pulumi/pulumi-command v1.2.1 provider/pkg/provider/local/commandController.go Update: in a
    preview, the old outputs with the new inputs).

    The SDK sends registrations from a thread pool, and the monitor calls `new_resource` in the
    thread that decided: the decision in hand is per thread."""

    def __init__(self, planner: Planner, stack_outputs: Mapping[str, Mapping[str, Any]] | None = None):
        super().__init__(stack_outputs)
        self.planner = planner
        self._local = threading.local()

    @property
    def current(self) -> Decision | None:
        return getattr(self._local, "decision", None)

    @current.setter
    def current(self, decision: Decision | None) -> None:
        self._local.decision = decision

    def unknown_outputs(self, args: pulumi.runtime.MockResourceArgs) -> bool:
        return self.current is not None and self.current.op in ("create", "replace")


class PlanMonitor(engine.RecordingMonitor):
    def ReadResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        # A read (a StackReference) is read again on every update: no step of the four kinds.
        mocks = self.mocks
        if isinstance(mocks, PlanMocks):
            mocks.planner.read(*_as_res(self, request, request.properties))
        return super().ReadResource(request)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        mocks = self.mocks
        if request.type != "pulumi:pulumi:Stack" and isinstance(mocks, PlanMocks):
            mocks.current = mocks.planner.decide(*_as_res(self, request, request.object))
        try:
            return super().RegisterResource(request)
        finally:
            if isinstance(mocks, PlanMocks):
                mocks.current = None


def _unknown_secrets(value: Any) -> Any:
    """A secret whose value is not known yet as plain unknown: a render masks every secret as
    "[secret]", so a secret that becomes unknown (a replaced key's PEM) would look unchanged."""
    if isinstance(value, dict):
        if value.get(sdk.SIG_KEY) == sdk.SECRET_SIG and value.get("value") == sdk.UNKNOWN_VALUE:
            return sdk.UNKNOWN_VALUE
        return {k: _unknown_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unknown_secrets(v) for v in value]
    return value


def _as_res(monitor: engine.RecordingMonitor, request: Any, props: Any) -> tuple[Res, list[str]]:
    from tools import render

    urn = monitor.make_urn(request.parent, request.type, request.name)
    raw = _unknown_secrets(json_format.MessageToDict(props, preserving_proto_field_name=True))
    custom = bool(getattr(request, "custom", True))
    reg = engine.registration(request, urn, raw, custom=custom, read=False)
    # resources.json's form (an AS3 declaration parsed), as the base has it.
    return Res.of_entry(render.resource_entry(reg)), graph.alias_urns(reg)


def plan_between(
    old_entries: Iterable[Mapping[str, Any]],
    head: config.StackConfig,
    stack_name: str = "test",
    *,
    inputs: Callable[[], DeployInputs],
    stack_outputs: Mapping[str, Mapping[str, Any]],
    project: str = "cpaas",
    replace: Iterable[str] = (),
) -> list[Step]:
    """The plan from an old state (resources.json entries) to `head` built under the plan's
    mocks. `inputs` makes the DeployInputs inside the run (the old render must have used the
    same); `stack_outputs`: what StackReferences answer; `replace`: URNs replaced as
    `pulumi up --replace URN` does."""
    from components.platform import build

    return plan_program(
        old_entries,
        lambda: build(head, inputs()),
        stack_name,
        stack_outputs=stack_outputs,
        project=project,
        replace=replace,
    )


def plan_program(
    old_entries: Iterable[Mapping[str, Any]],
    program: Callable[[], Mapping[str, Any] | None],
    stack_name: str = "test",
    *,
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    project: str = "cpaas",
    replace: Iterable[str] = (),
) -> list[Step]:
    """The plan from an old state to any program (plan_between runs cpaas's)."""
    planner = Planner((Res.of_entry(e) for e in old_entries), replace)
    mocks = PlanMocks(planner, stack_outputs)
    run = engine.run(
        program, project=project, stack=stack_name, mocks=mocks, preview=True, monitor=PlanMonitor
    )
    return schedule(
        planner, program_order([planner.new[r.urn] for r in run.registrations if r.urn in planner.new])
    )


def program_order(news: Sequence[Res]) -> list[Res]:
    """A registration order: a resource after its parent, its dependencies and its provider (the
    SDK registers one only once they are registered), ties by URN. The arrival order itself
    varies run to run (the SDK registers from several threads)."""
    by_urn = {r.urn: r for r in news}
    before = {r.urn: {u for u in (r.parent, r.provider_urn, *r.dependencies) if u in by_urn} for r in news}
    done: list[Res] = []
    placed: set[str] = set()
    pending = sorted(by_urn)
    while pending:
        ready = [u for u in pending if before[u] <= placed] or pending[:1]
        done += [by_urn[u] for u in ready]
        placed.update(ready)
        pending = [u for u in pending if u not in placed]
    return done


def plan_entries(
    old_entries: Iterable[Mapping[str, Any]], new_entries: Iterable[Mapping[str, Any]]
) -> list[Step]:
    """The plan between two renders' resources.json: no unknowns reach the new side, so a
    resource that changes only through another's replacement (a certificate signed by a
    replaced key) is not seen; plan_between sees it."""
    planner = Planner(Res.of_entry(e) for e in old_entries)
    order = program_order([Res.of_entry(e) for e in new_entries])
    for res in order:
        name = res.urn.rsplit("::", 1)[-1]
        reg = engine.Registration(
            res.urn, res.type, name, res.parent, res.provider, [], True, {}, options=dict(res.options)
        )
        planner.decide(res, graph.alias_urns(reg))
    return schedule(planner, order)


# ---------------------------------------------------------------------------------------------
# Ordering the steps as the engine does
# ---------------------------------------------------------------------------------------------


def _dependencies_of(res: Res, index: Mapping[str, int], olds: Mapping[str, Res]) -> set[str]:
    """Ref: pkg/resource/graph/dependency_graph.go DependenciesOf: dependencies, provider and
    parent; a component dependency brings its children registered before `res`."""
    urns = {*res.dependencies, res.provider_urn} - {""}
    out = {*urns, res.parent} - {""}
    for urn in urns:
        dep = olds.get(urn)
        if dep is not None and not dep.custom:
            out |= {
                c.urn for c in olds.values() if _under_parent(c, urn, olds) and index[c.urn] < index[res.urn]
            }
    return out


def _under_parent(res: Res, parent: str, olds: Mapping[str, Res]) -> bool:
    cur = olds.get(res.parent)
    while cur is not None:
        if cur.urn == parent:
            return True
        cur = olds.get(cur.parent)
    return False


def schedule_deletes(condemned: Sequence[Res], olds: Mapping[str, Res]) -> list[list[Res]]:
    """Ref: step_generator.go ScheduleDeletes: antichains, each after every resource that
    depends on one of its members."""
    index = {urn: i for i, urn in enumerate(olds)}
    left = {r.urn: r for r in condemned}
    deps = {r.urn: _dependencies_of(r, index, olds) for r in condemned}
    chains: list[list[Res]] = []
    while left:
        ready = sorted(u for u in left if not (deps[u] & set(left)))
        if not ready:  # a cycle cannot happen in a valid state; keep going in state order
            ready = [min(left, key=index.__getitem__)]
        chains.append([left.pop(u) for u in ready])
    chains.reverse()
    return chains


def _input_dependencies(res: Res) -> set[str]:
    """What the resource's inputs come from (propertyDependencies), when the state records it;
    else every dependency."""
    recorded = res.options.get("propertyDependencies")
    if recorded is None:
        return set(res.dependencies)
    return {u for urns in recorded.values() for u in urns}


def _dependents_replaced(root: Res, planner: Planner) -> list[Res]:
    """The old resources that depend (dependencies, provider) on `root` or on another of these,
    and are replaced too, in dependency order (step_generator.go calculateDependentReplacements:
    its replace set; the plan takes the replacement decided when each registered, with inputs
    unknown where they come from a replaced resource, in place of the provider's diff of the
    old inputs with those unknowns)."""
    olds = list(planner.old.values())
    start = [r.urn for r in olds].index(root.urn)
    replaced = {o for n, o in planner.matched.items() if planner.decisions[n].op == "replace"}
    found: list[Res] = []
    replace_set = {root.urn}
    for cand in olds[start + 1 :]:
        if cand.urn in replaced and {*_input_dependencies(cand), cand.provider_urn} & replace_set:
            replace_set.add(cand.urn)
            found.append(cand)
    return found


def _replace_steps(new: Res, decision: Decision, planner: Planner, deleted: set[str]) -> list[Step]:
    old = planner.old[planner.matched[new.urn]]
    create = Step(new.urn, new.type, "replace", decision.reasons, CREATE_REPLACEMENT)
    if not decision.delete_first:
        return [create]
    steps: list[Step] = []
    for dep in reversed(_dependents_replaced(old, planner)):
        if dep.urn not in deleted:
            deleted.add(dep.urn)
            why = f"replaced, and depends on {new.urn}, which is deleted before its replacement"
            steps.append(Step(dep.urn, dep.type, "replace", (why,), DELETE_REPLACED))
    if old.urn not in deleted:
        deleted.add(old.urn)
        steps.append(
            Step(
                old.urn, old.type, "replace", ("deleted before its replacement is created",), DELETE_REPLACED
            )
        )
    return [*steps, create]


def _delete_reasons(res: Res, replaced: bool) -> tuple[str, ...]:
    why = (
        ["replaced: the old one goes after the creates and updates"]
        if replaced
        else ["no longer in the program"]
    )
    if res.options.get("read") or res.type == "pulumi:pulumi:StackReference":
        why.append("read, not managed: only dropped from the state")
    if res.options.get("retainOnDelete"):
        why.append("retainOnDelete: removed from the state only; the object stays")
    if res.options.get("protect") and not replaced:
        why.append("protected: `pulumi up` stops here until the protect option is removed")
    return tuple(why)


def schedule(planner: Planner, order: Sequence[Res]) -> list[Step]:
    """Every step in execution order (see the module docstring)."""
    steps: list[Step] = []
    deleted: set[str] = set()  # old URNs already deleted (delete-before-replace)
    for new in order:
        decision = planner.decisions[new.urn]
        if decision.op == "replace":
            steps += _replace_steps(new, decision, planner, deleted)
        elif decision.op in ("create", "update"):
            steps.append(Step(new.urn, new.type, decision.op, decision.reasons))
    replaced = {
        planner.matched[u]
        for u, d in planner.decisions.items()
        if d.op == "replace" and planner.matched[u] not in deleted
    }
    condemned = [*planner.deleted(), *(planner.old[u] for u in replaced)]
    for chain in schedule_deletes(condemned, planner.old):
        for res in chain:
            is_replaced = res.urn in replaced
            op, phase = ("replace", DELETE_REPLACED) if is_replaced else ("delete", "")
            steps.append(Step(res.urn, res.type, op, _delete_reasons(res, is_replaced), phase))
    return steps


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


def text(steps: Sequence[Step], title: str) -> str:
    lines = [title, "", f"{counts_text(steps)} ({len(steps)} steps)", ""]
    if not steps:
        return "\n".join([*lines, "No changes: `pulumi up` would leave every resource as it is.", ""])
    width = len(str(len(steps)))
    for i, step in enumerate(steps, 1):
        label = {CREATE_REPLACEMENT: "replace (create new)", DELETE_REPLACED: "replace (delete old)"}.get(
            step.phase, step.op
        )
        lines.append(f"{i:>{width}}. {label:<20} {step.urn}")
        head = "changes" if step.op == "update" else "why"
        if step.reasons:
            lines.append(f"{'':>{width}}  {'':<20} {head}: {', '.join(step.reasons)}")
    return "\n".join([*lines, ""])


def as_json(stack: str, base: str, steps: Sequence[Step]) -> dict[str, Any]:
    return {"stack": stack, "base": base, "steps": [s.as_json() for s in steps]}


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


class PlanError(Exception):
    """One line: what is wrong and the fix (exit 2)."""


def base_entries(stack: str, rev: str, root: Path) -> tuple[list[dict[str, Any]], str]:
    """resources.json of `stack` rendered at `rev` with that revision's code, and the commit.
    A revision where the stack does not render is an empty state (the note says so)."""
    with prdiff.checkout(root, rev, "plan") as (tree, commit):
        print(f"plan: rendering {stack} at {rev} ({commit[:12]})", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="cpaas-plan-") as out:
            command = [sys.executable, "-m", "tools.render", "--stack", stack, "--out", out, "--no-validate"]
            done = subprocess.run(command, cwd=tree, capture_output=True, text=True, check=False)
            path = Path(out) / "resources.json"
            if done.returncode != 0 or not path.is_file():
                where = f"{rev} ({commit[:12]})"
                print(
                    f"plan: stack {stack} does not render at {where}: planning from an empty state",
                    file=sys.stderr,
                )
                return [], commit
            return json.loads(path.read_text(encoding="utf-8")), commit


def plan_stack(
    stack_name: str, rev: str, root: Path | None = None, replace: Iterable[str] = ()
) -> tuple[list[Step], str]:
    """The plan of `stack_name` from its render at `rev` to the working tree at `root`."""
    from tools import render

    root = root or ROOT
    checked = stackfile.read(stackfile.stack_path(stack_name, root), stack_name)
    old, commit = base_entries(stack_name, rev, root)
    steps = plan_between(
        old,
        checked.stack,
        stack_name,
        inputs=lambda: render.deploy_inputs(checked)[0],
        stack_outputs=render.stack_outputs(checked.stack, root),
        replace=replace,
    )
    return steps, commit


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.plan", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument(
        "--base", default="HEAD", help="the git revision whose render is the state (default HEAD)"
    )
    parser.add_argument("--json", help="also write the plan as JSON to this file")
    parser.add_argument(
        "--replace",
        action="append",
        default=[],
        metavar="URN",
        help="as `pulumi up --replace URN` (repeatable)",
    )
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    args = _parser().parse_args(list(argv) if argv is not None else None)
    try:
        steps, commit = plan_stack(args.stack, args.base, replace=args.replace)
    except stackfile.StackFileError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        print(f"plan: stack {args.stack} has {exc.count()}; no plan", file=sys.stderr)
        return 2
    except prdiff.CheckoutError as exc:
        print(f"plan: {exc}", file=sys.stderr)
        return 2
    title = (
        f"Plan for stack `{args.stack}`: from its render at {args.base} ({commit[:12]}) to the working tree"
    )
    sys.stdout.write(text(steps, title))
    if args.json:
        Path(args.json).write_text(
            json.dumps(as_json(args.stack, args.base, steps), indent=2) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
