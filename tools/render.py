"""Offline render: the same build(stack) as __main__.py, under the SDK's mock engine.

    python -m tools.render --stack prod [--out DIR] [--schemas DIR] [--no-validate] [--policy]

Writes resources.json, k8s/<unit>/*.yaml, helm/<unit>/<release>.yaml, summary.md, graph.mmd
and validates what it wrote against the upstream schemas. Exit 0 clean, 1 violations (or a
required schema family missing), 2 bad stack config (nothing written).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components import config
from components.bigip import routing
from components.gslb import OUTPUT_NAME, UnitRef
from components.platform import DeployInputs, build
from tools import engine

ROOT = Path(__file__).resolve().parent.parent
UNIT_TYPE = "cpaas:unit:AtomicUnit"
HELM_TYPE = "kubernetes:helm.sh/v3:Release"
AS3_TYPE = "f5bigip:index/as3:As3"
NOT_K8S_OBJECTS = {HELM_TYPE, "kubernetes:yaml/v2:ConfigFile", "kubernetes:helm.sh/v4:Chart"}


class StackFileError(Exception):
    """The stack file cannot be read or names unknown keys; lines carry config paths."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass
class StackFile:
    name: str
    project: str
    raw: dict[str, Any]  # structured cpaas: keys, prefix stripped
    secure: set[str]  # cpaas: keys given as `secure:` values
    plain: dict[str, str]  # other cpaas: scalar keys


def read_stack_file(stack: str, root: Path | None = None) -> StackFile:
    root = root or ROOT
    project_file = root / "Pulumi.yaml"
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        known = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise StackFileError([f"{stack_file.name}: no such stack file; known stacks: {', '.join(known)}"])
    try:
        project = yaml.safe_load(project_file.read_text())["name"]
        doc = yaml.safe_load(stack_file.read_text()) or {}
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        # One line: YAML errors span several with a caret drawing.
        raise StackFileError([f"{stack_file.name}: cannot read: {' '.join(str(exc).split())}"]) from None
    if not isinstance(doc, dict):
        raise StackFileError([f"{stack_file.name}: a stack file is a mapping with a 'config' key"])
    entries = doc.get("config") or {}
    if not isinstance(entries, dict):
        raise StackFileError([f"{stack_file.name}: 'config' must be a mapping"])
    structured = set(config.config_keys())
    raw: dict[str, Any] = {}
    secure: set[str] = set()
    plain: dict[str, str] = {}
    for full_key, value in entries.items():
        namespace, _, key = str(full_key).partition(":")
        if namespace != config.CONFIG_NAMESPACE:
            continue  # other providers' config (aws:region, ...) is not ours to check
        if isinstance(value, dict) and set(value) == {"secure"}:
            secure.add(key)
        elif key in structured:
            raw[key] = value
        else:
            plain[key] = str(value)
    return StackFile(stack, project, raw, secure, plain)


def deploy_inputs(stack: config.StackConfig, sf: StackFile) -> tuple[DeployInputs, list[str]]:
    """Placeholders for deploy-time values; secrets stay secret (marked as such)."""
    import pulumi

    notes: list[str] = []
    secrets: dict[str, Any] = {}
    for key in stack.secret_keys():
        if key not in sf.secure:
            notes.append(
                f"secret `cpaas:{key}` is not in the stack file (set it with `pulumi config set --secret`)"
            )
        secrets[key] = pulumi.Output.secret(f"<secret {key}>")
    values: dict[str, Any] = {}
    for key in stack.plain_keys():
        if key in sf.plain:
            values[key] = sf.plain[key]
        else:
            notes.append(f"`cpaas:{key}` is not in the stack file (set it with `pulumi config set`)")
            values[key] = engine.mock_pem("CERTIFICATE", key)
    unknown = set(sf.plain) - set(stack.plain_keys())
    unknown |= sf.secure - set(stack.secret_keys())
    if unknown:
        allowed = ", ".join(config.config_keys() + stack.secret_keys() + stack.plain_keys())
        raise StackFileError(
            [
                f"cpaas:{k}: unknown config key; nothing in the stack refers to it (known: {allowed})"
                for k in sorted(unknown)
            ]
        )
    files = {key: f"<file holding cpaas:{key}>" for key in values}
    return DeployInputs(secrets=secrets, values=values, files=files), notes


# ---------------------------------------------------------------------------------------------
# Rendering the recorded registrations
# ---------------------------------------------------------------------------------------------


@dataclass
class Rendered:
    files: dict[str, str] = field(default_factory=dict)  # relative path -> text
    k8s: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (file, unit, object)
    helm: list[tuple[str, str, str, dict[str, Any]]] = field(
        default_factory=list
    )  # file, unit, chart, values
    declarations: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # file, as3|do, body


def stable_order(regs: list[engine.Registration]) -> list[engine.Registration]:
    """A deterministic registration order: parents and dependencies first, ties by URN.

    The SDK registers from several threads, so the raw arrival order can vary run to run.
    """
    by_urn = {r.urn: r for r in regs}
    before: dict[str, set[str]] = {
        r.urn: {d for d in [r.parent, *r.dependencies] if d in by_urn} for r in regs
    }
    first_seen = {r.urn: i for i, r in enumerate(regs)}
    done: list[engine.Registration] = []
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


def unit_of(reg: engine.Registration, by_urn: Mapping[str, engine.Registration]) -> str:
    cur: engine.Registration | None = reg
    while cur is not None:
        if cur.type == UNIT_TYPE:
            return cur.name
        cur = by_urn.get(cur.parent)
    return "_stack"


def k8s_object(reg: engine.Registration) -> dict[str, Any] | None:
    if not reg.type.startswith("kubernetes:") or reg.type in NOT_K8S_OBJECTS:
        return None
    obj = dict(reg.inputs)
    if "apiVersion" not in obj or "kind" not in obj:
        return None
    ordered: dict[str, Any] = {k: obj.pop(k) for k in ("apiVersion", "kind", "metadata") if k in obj}
    ordered.update(sorted(obj.items()))
    return ordered


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-").lower()


def render_files(run: engine.Run, stack: config.StackConfig, notes: list[str]) -> Rendered:
    out = Rendered()
    regs = stable_order(run.registrations)
    by_urn = {r.urn: r for r in regs}
    out.files["resources.json"] = json.dumps([r.as_json() for r in regs], indent=2, sort_keys=True) + "\n"
    for reg in regs:
        unit = unit_of(reg, by_urn)
        obj = k8s_object(reg)
        if obj is not None:
            meta = obj.get("metadata") or {}
            ns = meta.get("namespace", "_cluster")
            path = (
                f"k8s/{unit}/{_slug(ns)}/{_slug(obj['kind'])}-{_slug(str(meta.get('name', reg.name)))}.yaml"
            )
            out.files[path] = yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)
            out.k8s.append((path, unit, obj))
        elif reg.type == AS3_TYPE:
            _render_as3(out, reg)
        elif reg.type.startswith("f5bigip:"):
            _render_bigip(out, unit, reg)
        elif reg.type == HELM_TYPE:
            release = reg.inputs.get("name") or reg.name
            chart = str(reg.inputs.get("chart", ""))
            doc = {
                "release": release,
                "chart": chart,
                "repository": (reg.inputs.get("repositoryOpts") or {}).get("repo", ""),
                "version": reg.inputs.get("version"),
                "namespace": reg.inputs.get("namespace"),
                "skipCrds": bool(reg.inputs.get("skipCrds", False)),
                "values": reg.inputs.get("values") or {},
            }
            path = f"helm/{unit}/{_slug(str(release))}.yaml"
            out.files[path] = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
            out.helm.append((path, unit, chart.rsplit("/", 1)[-1], doc["values"]))
    for path, declaration in do_declarations(stack).items():
        out.files[path] = json.dumps(declaration, indent=2, sort_keys=True) + "\n"
        out.declarations.append((path, "do", declaration))
    out.files["summary.md"] = summary(run, regs, by_urn, stack, notes)
    out.files["graph.mmd"] = graph(regs, by_urn)
    return out


def _render_bigip(out: Rendered, unit: str, reg: engine.Registration) -> None:
    """One JSON per BIG-IP object (what the f5bigip provider will send), iRules as .tcl."""
    kind = reg.type.rsplit(":", 1)[-1]
    label = str(reg.inputs.get("name") or reg.name).strip("/").replace("/", "_")
    base = f"bigip/{unit}/{_slug(kind)}-{_slug(label)}"
    doc = {"type": reg.type, "resource": reg.name, "inputs": reg.inputs}
    out.files[f"{base}.json"] = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    if kind == "IRule":
        out.files[f"{base}.tcl"] = str(reg.inputs.get("irule", "")).rstrip() + "\n"
    if kind == "Command":
        out.files[f"{base}.tmsh"] = "\n".join(reg.inputs.get("commands", [])) + "\n"


def _render_as3(out: Rendered, reg: engine.Registration) -> None:
    """The GSLB AS3 declaration (the As3 resource's `as3Json`), written and queued for validation.

    Text that is not JSON (a secret or unknown placeholder) is validated as is, so it fails loudly.
    """
    text = reg.inputs.get("as3Json")
    try:
        body: Any = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        body = text
    path = "bigip/gslb/as3.json"
    out.files[path] = json.dumps(body, indent=2, sort_keys=True) + "\n"
    out.declarations.append((path, "as3", body))


def do_declarations(stack: config.StackConfig) -> dict[str, dict[str, Any]]:
    """DO form of each unit's BGP peering (for DO-onboarded BIG-IPs), validated with the rest."""
    return {
        f"bigip/{u.name}/bgp.do.json": routing.do_declaration(u)
        for u in stack.units
        if u.bigip is not None and u.uses_calico
    }


def longest_chain(regs: list[engine.Registration]) -> list[engine.Registration]:
    """Longest path over dependency edges (the critical path of a deployment)."""
    by_urn = {r.urn: r for r in regs}
    best: dict[str, tuple[int, str]] = {}
    for reg in regs:  # regs are in dependency order
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


def summary(
    run: engine.Run,
    regs: list[engine.Registration],
    by_urn: Mapping[str, engine.Registration],
    stack: config.StackConfig,
    notes: list[str],
) -> str:
    per_unit: dict[str, Counter[str]] = defaultdict(Counter)
    for reg in regs:
        per_unit[unit_of(reg, by_urn)][reg.type] += 1
    lines = [
        f"# Render of stack `{stack.environment}`",
        "",
        f"{len(regs)} resources in {len(stack.units)} unit(s).",
        "",
    ]
    for unit in [*(u.name for u in stack.units), "_stack"]:
        counts = per_unit.get(unit, Counter())
        title = "stack-wide (PKI, GSLB)" if unit == "_stack" else f"unit `{unit}`"
        lines += [f"## {title}: {sum(counts.values())} resources", "", "| type | count |", "|---|---|"]
        lines += [f"| `{t}` | {n} |" for t, n in sorted(counts.items())]
        lines.append("")
        if unit != "_stack":
            for item in (run.outputs.get("units") or {}).get(unit, {}).get("skipped", []):
                lines.append(f"- skipped: {item}")
            lines.append("")
    chain = longest_chain(regs)
    lines += [f"## Longest dependency chain: {len(chain)} resources", ""]
    lines += [f"{i + 1}. `{r.type}` {r.name}" for i, r in enumerate(chain)]
    lines.append("")
    if notes:
        lines += ["## Deploy-time values (placeholders in this render)", ""]
        lines += [f"- {n}" for n in notes]
        lines.append("")
    return "\n".join(lines)


def graph(regs: list[engine.Registration], by_urn: Mapping[str, engine.Registration]) -> str:
    ids = {r.urn: f"r{i}" for i, r in enumerate(regs)}
    lines = ["flowchart LR"]
    groups: dict[str, list[engine.Registration]] = defaultdict(list)
    for reg in regs:
        groups[unit_of(reg, by_urn)].append(reg)
    for unit in sorted(groups):
        lines.append(f"  subgraph {_slug(unit) or 'stack'}[{unit}]")
        for reg in groups[unit]:
            short = reg.type.rsplit(":", 1)[-1]
            lines.append(f'    {ids[reg.urn]}["{reg.name}<br/><i>{short}</i>"]')
        lines.append("  end")
    for reg in regs:
        for dep in reg.dependencies:
            if dep in ids:
                lines.append(f"  {ids[dep]} --> {ids[reg.urn]}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def validate(
    rendered: Rendered, stack: config.StackConfig, schema_dir: Path | None
) -> tuple[list[str], set[str], Counter[str]]:
    from tools.validate import Validator

    validator = Validator(schema_dir)
    versions = {u.name: u.cluster.kubernetes_version for u in stack.units}
    default_version = max(versions.values())
    violations: list[str] = []
    for path, unit, obj in rendered.k8s:
        violations += [str(v) for v in validator.k8s_object(obj, versions.get(unit, default_version), path)]
    for path, _unit, chart, values in rendered.helm:
        violations += [str(v) for v in validator.helm_values(chart, values, path)]
    for path, kind, body in rendered.declarations:
        check = validator.do if kind == "do" else validator.as3
        violations += [str(v) for v in check(body, path)]
    return sorted(violations), set(validator.skipped), Counter(validator.checked)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def stack_outputs(stack: config.StackConfig, root: Path | None = None) -> dict[str, dict[str, Any]]:
    """What the StackReferences of `stack` answer under mocks: a placeholder kubeconfig for
    cluster references, and for GSLB unit stacks the `gslbRefs` their own stack files describe
    (found as Pulumi.<last segment of the stack name>.yaml beside this one)."""
    refs: dict[str, dict[str, Any]] = {
        u.cluster.stack: {u.cluster.output: f"<kubeconfig from stack {u.cluster.stack}>"}
        for u in stack.units
        if isinstance(u.cluster, config.StackReferenceCluster)
    }
    for unit_name, stack_name in (stack.gslb.unit_stacks if stack.gslb else {}).items():
        local = stack_name.rsplit("/", 1)[-1]
        try:
            other = config.parse_stack(read_stack_file(local, root).raw)
            unit = other.unit(unit_name)
        except (StackFileError, config.ConfigError, KeyError):
            raise StackFileError(
                [
                    f"cpaas:gslb.unitStacks.{unit_name}: {stack_name} has no readable stack file "
                    f"Pulumi.{local}.yaml with unit {unit_name} here; the render needs it to stand "
                    "in for the stack's gslbRefs output"
                ]
            ) from None
        refs.setdefault(stack_name, {}).setdefault(OUTPUT_NAME, {})[unit_name] = UnitRef.of(unit).as_output()
    return refs


def run_stack(
    stack: config.StackConfig, sf: StackFile, stack_name: str, root: Path | None = None
) -> tuple[engine.Run, list[str]]:
    """build(stack) under mocks with placeholder deploy-time values; returns the run and notes."""
    holder: dict[str, Any] = {}

    def program() -> dict[str, Any]:
        inputs, holder["notes"] = deploy_inputs(stack, sf)
        return build(stack, inputs)

    mocks = engine.StateMocks(stack_outputs=stack_outputs(stack, root))
    run = engine.run(program, project=sf.project, stack=stack_name, mocks=mocks)
    return run, holder.get("notes", [])


def evaluate(stack_name: str) -> tuple[config.StackConfig, engine.Run, list[str]]:
    """Read and validate the stack file, then run build() under mocks. Raises on bad config."""
    sf = read_stack_file(stack_name)
    try:
        stack = config.parse_stack(sf.raw)
    except config.ConfigError as exc:
        raise StackFileError(exc.lines) from None
    run, notes = run_stack(stack, sf, stack_name)
    return stack, run, notes


def write(out_dir: Path, rendered: Rendered) -> None:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    for rel, text in sorted(rendered.files.items()):
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.render", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--out", help="output folder (default build/render/<stack>)")
    parser.add_argument("--schemas", help="schema folder (default $CPAAS_SCHEMAS, ../shared/schemas, cache)")
    parser.add_argument("--no-validate", action="store_true", help="skip schema validation")
    parser.add_argument(
        "--policy", action="store_true", help="also run the policy pack's rules (policy/) over the render"
    )
    return parser


def _report_validation(violations: list[str], skipped: set[str], checked: Counter[str]) -> int:
    for line in violations:
        print(f"violation: {line}")
    require = os.environ.get("CPAAS_REQUIRE_SCHEMAS") == "1"
    for family in sorted(skipped):
        print(
            f"skipped: schema family {family!r} not found; its objects were NOT validated"
            + (" (CPAAS_REQUIRE_SCHEMAS=1: error)" if require else "")
        )
    checked_text = ", ".join(f"{k} {v}" for k, v in sorted(checked.items()))
    print(f"validated: {checked_text}; {len(violations)} violation(s)")
    return 1 if violations or (require and skipped) else 0


def _report_policy(run: engine.Run) -> int:
    """The policy pack's rules over what was registered (the CLI's `--policy-pack`, offline)."""
    from policy import rules

    found = rules.check(rules.from_render(r.as_json() for r in stable_order(run.registrations)))
    for rule, urn, message in found:
        print(f"policy: {rule}: {urn}: {message}")
    count = len(rules.RESOURCE_RULES) + len(rules.STACK_RULES)
    print(f"policy: {count} rules, {len(found)} violation(s)")
    return 1 if found else 0


def main(argv: Iterable[str] | None = None) -> int:
    args = _parser().parse_args(list(argv) if argv is not None else None)
    started = time.perf_counter()
    try:
        stack, run, notes = evaluate(args.stack)
    except StackFileError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        print(
            f"render: stack {args.stack} has {len(exc.lines)} config error(s); nothing written",
            file=sys.stderr,
        )
        return 2
    evaluated = time.perf_counter()
    rendered = render_files(run, stack, notes)

    status = 0
    validation: tuple[list[str], set[str], Counter[str]] | None = None
    if not args.no_validate:
        from tools.validate import resolve_schema_dir

        validation = validate(rendered, stack, resolve_schema_dir(args.schemas))
    validated = time.perf_counter()

    out_dir = Path(args.out) if args.out else ROOT / "build" / "render" / args.stack
    write(out_dir, rendered)
    written = time.perf_counter()

    if validation is not None:
        status |= _report_validation(*validation)
    if args.policy:
        status |= _report_policy(run)
    print(f"wrote {len(rendered.files)} files to {out_dir}")
    print(
        f"rendered {len(run.registrations)} resources for {len(stack.units)} units in "
        f"{written - started:.2f} s (evaluate {evaluated - started:.2f} s, "
        f"validate {validated - evaluated:.2f} s, write {written - validated:.2f} s)"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
