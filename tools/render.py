"""Offline render: the same build(stack) as __main__.py, under the SDK's mock engine.

    python -m tools.render --stack prod [--out DIR] [--schemas DIR] [--no-validate] [--policy] [--preview]

Writes resources.json, k8s/<unit>/*.yaml, helm/<unit>/<release>.yaml, bigip/..., summary.md
(verdict first, then one overview per unit: tools.review), graph.mmd and graph/<unit>.mmd, and
validates what it wrote against the upstream schemas. The stack file is read and checked
by tools.stackfile, as __main__.py's config is. The output folder gets a manifest
(.cpaas-render.json) of the files written; the next render removes those and nothing else, and
a non-empty folder without one is refused. Exit 0 clean, 1 schema or policy violations (or a
required schema family missing), 2 bad stack config or arguments (nothing written).

--preview runs the program as `pulumi preview` does for a new stack: what only a provider
computes (PEMs, command output, a Release's status, ids) is unknown ("[unknown]"), and the
program's applies on it do not run. Validation checks what is known and lists each unknown
value it could not check (summary.md's verdict, and the output).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from components import config
from components.bigip import routing
from components.gslb import OUTPUT_NAME, UnitRef
from components.platform import DeployInputs, build
from tools import engine, graph, review, stackfile
from tools.graph import longest_chain, stable_order

ROOT = Path(__file__).resolve().parent.parent
HELM_TYPE = "kubernetes:helm.sh/v3:Release"
# libyaml's emitter where PyYAML has it: a fraction of the pure-Python one's time; long quoted strings
# fold at other places, the data is the same (tests/test_render.py reads every rendered file back).
_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
AS3_TYPE = review.AS3_TYPE
NOT_K8S_OBJECTS = {HELM_TYPE, "kubernetes:yaml/v2:ConfigFile", "kubernetes:helm.sh/v4:Chart"}


# The stack file is read and checked by tools.stackfile, as __main__.py reads its config.
StackFileError = stackfile.StackFileError


def deploy_inputs(checked: stackfile.Checked) -> tuple[DeployInputs, list[str]]:
    """Placeholders for deploy-time values; secrets stay secret (marked as such)."""
    import pulumi

    stack = checked.stack
    notes: list[str] = []
    secrets: dict[str, Any] = {}
    for key in stack.secret_keys():
        if key not in checked.secrets:
            notes.append(
                f"secret `cpaas:{key}` is not in the stack file (set it with `pulumi config set --secret`)"
            )
        secrets[key] = pulumi.Output.secret(f"<secret {key}>")
    values: dict[str, Any] = {}
    for key in stack.plain_keys():
        if key in checked.values:
            values[key] = checked.values[key]
        else:
            notes.append(f"`cpaas:{key}` is not in the stack file (set it with `pulumi config set`)")
            values[key] = engine.mock_pem("CERTIFICATE", key)
    # Committed certificate files (trustedCertFile, mesh.jwks.trustedCaFile), as __main__.py reads them.
    files: dict[str, Any] = {}
    for path in stack.trust_files():
        if (ROOT / path).is_file():
            files[path] = (ROOT / path).read_text(encoding="utf-8")
        else:
            notes.append(
                f"`{path}` is not in the project (commit the certificate "
                f"{stack.trust_files()[path]} names there)"
            )
            files[path] = engine.mock_pem("CERTIFICATE", path)
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
    facts: review.Facts | None = None  # what summary.md is written from (again, with the verdict)
    preview: bool = False  # rendered from a preview run (tools.render --preview)
    unchecked: set[str] = field(default_factory=set)  # preview: "file: path" validation could not check


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


def resource_entry(reg: engine.Registration) -> dict[str, Any]:
    """A resources.json entry. The AS3 declaration, a JSON string input, is shown parsed so that a
    one-address change diffs as one line; the provider gets `json.dumps(it, sort_keys=True)`.
    `options` holds the resource options an offline plan needs (tools.engine records them)."""
    entry = reg.as_json()
    entry["options"] = {key: reg.options[key] for key in sorted(reg.options)}
    text = reg.inputs.get("as3Json") if reg.type == AS3_TYPE else None
    if isinstance(text, str):
        try:
            body = json.loads(text)
        except ValueError:
            return entry
        if isinstance(body, dict) and json.dumps(body, sort_keys=True) == text:
            entry["inputs"] = {**reg.inputs, "as3Json": body}
    return entry


def render_files(run: engine.Run, stack: config.StackConfig, notes: list[str]) -> Rendered:
    out = Rendered()
    regs = stable_order(run.registrations)
    by_urn = {r.urn: r for r in regs}
    units = {r.urn: graph.unit_of(r, by_urn) or review.STACK for r in regs}
    out.files["resources.json"] = (
        json.dumps([resource_entry(r) for r in regs], indent=2, sort_keys=True) + "\n"
    )
    for reg in regs:
        unit = units[reg.urn]
        obj = k8s_object(reg)
        if obj is not None:
            meta = obj.get("metadata") or {}
            ns = meta.get("namespace", "_cluster")
            path = (
                f"k8s/{unit}/{_slug(ns)}/{_slug(obj['kind'])}-{_slug(str(meta.get('name', reg.name)))}.yaml"
            )
            out.files[path] = yaml.dump(obj, Dumper=_DUMPER, sort_keys=False, default_flow_style=False)
            out.k8s.append((path, unit, obj))
        elif reg.type == AS3_TYPE:
            _render_as3(out, unit, reg)
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
            out.files[path] = yaml.dump(doc, Dumper=_DUMPER, sort_keys=False, default_flow_style=False)
            out.helm.append((path, unit, chart.rsplit("/", 1)[-1], doc["values"]))
    for path, declaration in do_declarations(stack).items():
        out.files[path] = json.dumps(declaration, indent=2, sort_keys=True) + "\n"
        out.declarations.append((path, "do", declaration))
    graphs = review.graphs(regs, by_urn, units, stack, run.outputs)
    out.files.update(graphs)
    out.facts = review.Facts(
        stack, run.outputs, regs, units, longest_chain(regs), notes, review.over_limits(graphs)
    )
    out.files["summary.md"] = review.summary(out.facts, None)
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


def _render_as3(out: Rendered, unit: str, reg: engine.Registration) -> None:
    """An AS3 declaration (the As3 resource's `as3Json`), written and queued for validation: the
    GSLB one at bigip/gslb/as3.json, a unit's (its imported access profiles) under its BIG-IP.

    Text that is not JSON (a secret or unknown placeholder) is validated as is, so it fails loudly.
    """
    text = reg.inputs.get("as3Json")
    try:
        body: Any = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        body = text
    path = "bigip/gslb/as3.json" if unit == review.STACK else f"bigip/{unit}/as3-{_slug(reg.name)}.json"
    out.files[path] = json.dumps(body, indent=2, sort_keys=True) + "\n"
    out.declarations.append((path, "as3", body))


def do_declarations(stack: config.StackConfig) -> dict[str, dict[str, Any]]:
    """DO form of each BGP instance (for DO-onboarded BIG-IPs), validated with the rest: a unit's
    own BIG-IP's, and a shared device's (a peer group per unit)."""
    out = {
        f"bigip/{u.name}/bgp.do.json": routing.do_declaration(u)
        for u in stack.units
        if u.bigip is not None and u.bigip.device is None and u.uses_calico
    }
    for device in stack.bigip_devices:
        units = stack.units_on(device.name)
        if any(u.uses_calico for u in units):
            out[f"bigip/{device.name}/bgp.do.json"] = routing.device_do_declaration(device, units)
    return out


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
        found = validator.k8s_object(obj, versions.get(unit, default_version), path)
        violations += _known(rendered, path, obj, found)
    for path, _unit, chart, values in rendered.helm:
        violations += _known(rendered, path, values, validator.helm_values(chart, values, path))
    for path, kind, body in rendered.declarations:
        check = validator.do if kind == "do" else validator.as3
        violations += _known(rendered, path, body, check(body, path))
    return sorted(violations), set(validator.skipped), Counter(validator.checked)


def marked_paths(value: Any, marker: str, parts: tuple[Any, ...] = ()) -> list[str]:
    """Where a rendered value is `marker` ("[unknown]", "[secret]"), as the validator writes paths."""
    from tools.validate.core import path_text

    if value == marker:
        return [path_text(parts)]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in marked_paths(v, marker, (*parts, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in marked_paths(v, marker, (*parts, i))]
    return []


def _known(rendered: Rendered, file: str, value: Any, found: Iterable[Any]) -> list[str]:
    """The violations about known values. In a preview, a value unknown until deploy cannot be
    checked, nor can a secret (a secret that is not known yet shows as "[secret]" whole, its
    shape unknown too): violations at or under them are left out, and they are listed."""
    if not rendered.preview:
        return [str(v) for v in found]
    unknown = marked_paths(value, engine.UNKNOWN)
    secret = marked_paths(value, engine.SECRET)
    rendered.unchecked.update(f"{file}: {p}" for p in unknown)
    kept: list[str] = []
    for violation in found:
        hit = [p for p in [*unknown, *secret] if _under(violation.path, p)]
        if hit:
            rendered.unchecked.update(f"{file}: {p}" for p in hit)
        else:
            kept.append(str(violation))
    return kept


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith((f"{prefix}.", f"{prefix}["))


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
            unit = stackfile.read(stackfile.stack_path(local, root), local).stack.unit(unit_name)
        except (StackFileError, KeyError):
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
    checked: stackfile.Checked,
    stack_name: str,
    root: Path | None = None,
    project: str = "cpaas",
    preview: bool = False,
) -> tuple[engine.Run, list[str]]:
    """build(stack) under mocks with placeholder deploy-time values; returns the run and notes.
    `preview`: provider-computed outputs unknown, as `pulumi preview` of a new stack sees them."""
    holder: dict[str, Any] = {}

    def program() -> dict[str, Any]:
        inputs, holder["notes"] = deploy_inputs(checked)
        return build(checked.stack, inputs)

    mocks = engine.StateMocks(stack_outputs=stack_outputs(checked.stack, root))
    run = engine.run(program, project=project, stack=stack_name, mocks=mocks, preview=preview)
    return run, holder.get("notes", [])


def _project(root: Path) -> str:
    try:
        doc = stackfile.load_yaml(stackfile.read_text(root / "Pulumi.yaml"), "Pulumi.yaml")
        return str(doc["name"])
    except (KeyError, TypeError):
        raise StackFileError(["Pulumi.yaml: no project name; it needs name: cpaas"]) from None


def check(stack_name: str) -> stackfile.Checked:
    """Read and check the stack file, as `evaluate` does first. Raises on bad config."""
    return stackfile.read(stackfile.stack_path(stack_name, ROOT), stack_name)


def evaluate(
    stack_name: str, preview: bool = False, checked: stackfile.Checked | None = None
) -> tuple[config.StackConfig, engine.Run, list[str]]:
    """Read and check the stack file (unless `checked` is its check already), then run build()
    under mocks (as `pulumi preview` sees it with `preview`). Raises on bad config."""
    checked = checked or check(stack_name)
    run, notes = run_stack(checked, stack_name, ROOT, _project(ROOT), preview)
    return checked.stack, run, notes


# ---------------------------------------------------------------------------------------------
# The output folder: only what a render wrote is ever removed
# ---------------------------------------------------------------------------------------------

MANIFEST = ".cpaas-render.json"


class OutDirError(Exception):
    """--out names a folder the render must not or cannot write: one line."""


def _listed(out: Path) -> list[str]:
    """The files the manifest of a previous render lists, each checked to stay inside `out`."""
    refused = OutDirError(
        f"--out {out}: its {MANIFEST} is not one a render wrote; remove the folder yourself or name another"
    )
    try:
        doc = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise refused from None
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise refused
    for rel in files:
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts or rel == MANIFEST or "\\" in rel:
            raise refused
    return list(files)


def _no_links_inside(out: Path) -> None:
    """A link inside a previous render could send its removals and writes elsewhere."""
    for folder, dirs, files in os.walk(out):
        for entry in (*dirs, *files):
            if (Path(folder) / entry).is_symlink():
                link = Path(folder) / entry
                raise OutDirError(
                    f"--out {out}: {link.relative_to(out)} is a link, which a render never writes; "
                    "remove the link, or name another folder"
                )


def previous_render(out: Path) -> list[str]:
    """What a previous render wrote into `out` (nothing for a new or empty folder). Raises
    OutDirError, before any work, for a file, a folder it cannot write, or a folder holding
    files no render wrote."""
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise OutDirError(f"--out {out}: is a file, not a folder; name a folder")
        if not os.access(out, os.W_OK | os.X_OK):
            raise OutDirError(f"--out {out}: cannot write into this folder; name one you can write")
        if (out / MANIFEST).is_file():
            _no_links_inside(out)
            return _listed(out)
        try:
            empty = next(out.iterdir(), None) is None
        except OSError as exc:
            raise OutDirError(
                f"--out {out}: cannot read this folder ({exc.strerror}); name another"
            ) from None
        if not empty:
            raise OutDirError(
                f"--out {out}: holds files no render wrote (there is no {MANIFEST}), and the render "
                "removes only its own; name a new or empty folder, or remove this one yourself"
            )
        return []
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutDirError(f"--out {out}: {parent} is a file, so the folder cannot be made; name a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutDirError(
            f"--out {out}: cannot create it, {parent} is not writable; name a folder you can write"
        )
    return []


def _write_manifest(out: Path, files: Iterable[str]) -> None:
    doc = {"files": sorted(files), "writtenBy": "python -m tools.render"}
    tmp = out / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, out / MANIFEST)


def _prune(folder: Path, out: Path) -> None:
    """Remove `folder` and its parents up to `out` while they are empty."""
    while folder != out and out in folder.parents and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def write(out_dir: Path, rendered: Rendered, previous: Iterable[str] = ()) -> None:
    """Write the render; of what is there, remove only the files `previous` (the last render's
    manifest) lists. The manifest lists old and new files until the new ones are written, so
    an interrupted render leaves nothing unlisted behind."""
    old, new = set(previous), set(rendered.files)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_manifest(out_dir, old | new)
    root = out_dir.resolve()

    def inside(path: Path) -> Path:
        if root not in path.parent.resolve().parents and path.parent.resolve() != root:
            raise OutDirError(
                f"--out {out_dir}: {path} leads outside it through a link; nothing more written"
            )
        return path

    for rel in sorted(old - new):
        path = inside(out_dir / rel)
        if path.is_file() or path.is_symlink():
            path.unlink()
            _prune(path.parent, out_dir)
    for rel, text in sorted(rendered.files.items()):
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        inside(path)
        if path.is_symlink():
            path.unlink()  # never write through a link to somewhere else
        path.write_text(text)
    _write_manifest(out_dir, new)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.render", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--out", help="output folder (default build/render/<stack>)")
    parser.add_argument("--schemas", help="schema folder (default $CPAAS_SCHEMAS, ../shared/schemas, cache)")
    parser.add_argument("--no-validate", action="store_true", help="skip schema validation")
    parser.add_argument(
        "--policy", action="store_true", help="also run the policy pack's rules (policy/) over the render"
    )
    parser.add_argument(
        "--preview",
        action="store_true",
        help="as `pulumi preview` sees a new stack: provider-computed outputs unknown, not checked",
    )
    return parser


def _report_validation(
    violations: list[str], skipped: set[str], checked: Counter[str], require: bool
) -> None:
    for line in violations:
        print(f"violation: {line}")
    for family in sorted(skipped):
        print(
            f"skipped: schema family {family!r} not found; its objects were NOT validated"
            + (" (CPAAS_REQUIRE_SCHEMAS=1: error)" if require else "")
        )
    checked_text = ", ".join(f"{k} {v}" for k, v in sorted(checked.items()))
    print(f"validated: {checked_text}; {len(violations)} violation(s)")


def _policy(run: engine.Run) -> list[str]:
    """The policy pack's rules over what was registered (the CLI's `--policy-pack`, offline):
    `rule: urn: message` per violation."""
    from policy import rules

    found = rules.check(rules.from_render(r.as_json() for r in stable_order(run.registrations)))
    return [f"{rule}: {urn}: {message}" for rule, urn, message in found]


def _report_policy(found: list[str]) -> None:
    from policy import rules

    for line in found:
        print(f"policy: {line}")
    count = len(rules.RESOURCE_RULES) + len(rules.STACK_RULES)
    print(f"policy: {count} rules, {len(found)} violation(s)")


def _verdict(
    validation: tuple[list[str], set[str], Counter[str]] | None,
    policy: list[str] | None,
    unknown: list[str] | None = None,
) -> review.Verdict:
    """The render's exit code and what summary.md says first: one source for both."""
    found = tuple(policy) if policy is not None else None
    unknowns = tuple(unknown) if unknown is not None else None
    if validation is None:
        return review.Verdict(policy=found, unknown=unknowns)
    violations, skipped, _ = validation
    require = os.environ.get("CPAAS_REQUIRE_SCHEMAS") == "1"
    return review.Verdict(tuple(violations), tuple(sorted(skipped)), require, found, unknowns)


def _schema_dir(args: argparse.Namespace) -> Path | None:
    """The schema folder; OutDirError when --schemas or $CPAAS_SCHEMAS names no folder."""
    from tools.validate import ENV_VAR, resolve_schema_dir

    path = resolve_schema_dir(args.schemas)
    named = f"--schemas {args.schemas}" if args.schemas else f"${ENV_VAR} {os.environ.get(ENV_VAR)}"
    if (args.schemas or os.environ.get(ENV_VAR)) and not (path and path.is_dir()):
        raise OutDirError(
            f"{named}: no such folder; name the schema folder (the one holding MANIFEST.md), "
            "or run `make schemas` and leave it unset"
        )
    return path


def _refuse(lines: list[str], summary: str) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    print(summary, file=sys.stderr)
    return 2


def main(argv: Iterable[str] | None = None) -> int:
    args = _parser().parse_args(list(argv) if argv is not None else None)
    started = time.perf_counter()
    out_dir = Path(args.out) if args.out else ROOT / "build" / "render" / args.stack
    try:
        previous = previous_render(out_dir)
        schema_dir = None if args.no_validate else _schema_dir(args)
    except OutDirError as exc:
        # The default folder under build/ may hold a render from before the manifest.
        hint = "" if args.out else " (`make clean` removes build/)"
        return _refuse([], f"render: {exc}{hint}")
    try:
        stack, run, notes = evaluate(args.stack, args.preview)
    except StackFileError as exc:
        return _refuse(exc.lines, f"render: stack {args.stack} has {exc.count()}; nothing written")
    evaluated = time.perf_counter()
    rendered = render_files(run, stack, notes)
    rendered.preview = args.preview

    validation = None if args.no_validate else validate(rendered, stack, schema_dir)
    policy = _policy(run) if args.policy else None
    unknown = sorted(rendered.unchecked) if args.preview else None
    verdict = _verdict(validation, policy, unknown)
    if rendered.facts is not None:
        rendered.files["summary.md"] = review.summary(rendered.facts, verdict)
    validated = time.perf_counter()

    write(out_dir, rendered, previous)
    written = time.perf_counter()

    if validation is not None:
        _report_validation(*validation, require=verdict.skipped_is_error)
    if policy is not None:
        _report_policy(policy)
    for where in unknown or ():
        print(f"unknown until deploy, not checked: {where}")
    if unknown is not None:
        print(f"preview: {len(unknown)} value(s) unknown until deploy")
    print(f"wrote {len(rendered.files)} files to {out_dir}")
    print(
        f"rendered {len(run.registrations)} resources for {len(stack.units)} units in "
        f"{written - started:.2f} s (evaluate {evaluated - started:.2f} s, "
        f"validate {validated - evaluated:.2f} s, write {written - validated:.2f} s)"
    )
    return verdict.exit_code


if __name__ == "__main__":
    sys.exit(main())
