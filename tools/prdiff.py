"""What the pull-request job shows for a stack's render, on GitHub and locally (`make diff`).

    python -m tools.prdiff render --stack S --dir D --side head|base [--tree T]
    python -m tools.prdiff report --stack S --dir D [--base-label TEXT] [--full-diff TEXT]
    python -m tools.prdiff local --stack S [--base REV]

`render` renders the checkout T (default: this one) with its own code into D/<side>/S, keeping
its output in D/<side>.log and its exit code in D/<side>.rc. `report` diffs D/base/S against
D/head/S into D/render-S.diff and prints the job summary: the exit codes, the render's
summary.md, then the diff, cut to fit a step summary. The PR job runs these three; `local` runs
the same three with the base checked out from REV into a temporary git worktree (removed
afterwards), prints the report and keeps it in build/diff/S.md (the diff in build/diff/S.diff).

Exit codes: `render --side head` and `local` give the render's (0 clean, 1 violations, 2 bad
config); a base that cannot render is compared against nothing (0); 2 when REV is no commit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ".cpaas-render.json"  # tools.render's list of the files it wrote: not a rendered file
RENDER_FLAGS = ("--policy",)  # as `make render`: the verdict covers the policy pack too
# A step summary over 1 MiB is not shown at all (the runner refuses the whole file).
# Ref: actions/runner@v2.336.0 src/Runner.Worker/FileCommandManager.cs (AttachmentSizeLimit).
STEP_SUMMARY_LIMIT = 1024 * 1024
HEADROOM = 16 * 1024  # the cut note, and what the runner may add around the file
LOG_TAIL = 200


def render(stack: str, folder: Path, side: str, tree: Path, echo: bool = False) -> int:
    """Render `tree` with its own tools.render into folder/<side>/<stack>; returns its exit code."""
    out = folder / side / stack
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if not env.get("CPAAS_SCHEMAS"):
        from tools.validate import resolve_schema_dir

        found = resolve_schema_dir(None)  # both sides validate against the same schema files
        if found is not None:
            env["CPAAS_SCHEMAS"] = str(found)
    command = [sys.executable, "-m", "tools.render", "--stack", stack, "--out", str(out), *RENDER_FLAGS]
    with (
        (folder / f"{side}.log").open("w", encoding="utf-8") as log,
        subprocess.Popen(
            command, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()
    (folder / f"{side}.rc").write_text(f"{proc.returncode}\n", encoding="utf-8")
    out.mkdir(parents=True, exist_ok=True)  # a side that wrote nothing is compared as empty
    return proc.returncode


def _read(path: Path, missing: str) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return missing


def _diff(stack: str, folder: Path) -> str:
    for side in ("head", "base"):
        (folder / side / stack).mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["diff", "-ruN", "-x", MANIFEST, f"base/{stack}", f"head/{stack}"],
        cwd=folder,
        capture_output=True,
        check=False,
    )
    if result.returncode > 1:
        raise RuntimeError(f"diff failed: {result.stderr.decode(errors='replace').strip()}")
    (folder / f"render-{stack}.diff").write_bytes(result.stdout)
    return result.stdout.decode("utf-8", errors="replace")


def _failed(head_rc: str, folder: Path) -> list[str]:
    if head_rc == "0":
        return []
    log = _read(folder / "head.log", "(no output)").splitlines()[-LOG_TAIL:]
    return [
        "The render failed (1: schema or policy violations, or a required schema family missing; "
        "2: invalid stack config). Its output:",
        "",
        "````text",
        *log,
        "````",
        "",
    ]


def _entries(path: Path) -> list[dict[str, Any]] | None:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, list) else None


def plan_section(stack: str, folder: Path, base_label: str) -> list[str]:
    """The plan between the two renders' resources.json (tools.plan.plan_entries): counts per
    op, then every replace and delete with its reasons."""
    from tools import plan

    head = _entries(folder / "head" / stack / "resources.json")
    if head is None:
        return []
    old = _entries(folder / "base" / stack / "resources.json") or []
    steps = [s for s in plan.plan_entries(old, head) if s.phase != plan.DELETE_REPLACED]
    counts = plan.counts_text(steps)
    lines = [
        f"## Plan: what `pulumi up` would do, from the {base_label}'s render to this one",
        "",
        f"{counts}. This is the plan between the two renders' `resources.json`: a resource that "
        "changes only through another's replacement (a value unknown until deploy) is not in it; "
        f"`make plan STACK={stack}` runs the program against the base's render and shows those too.",
        "",
    ]
    for step in steps:
        if step.op in ("replace", "delete"):
            lines.append(f"- {step.op} `{step.urn}`: {'; '.join(step.reasons)}")
    return [*lines, ""] if len(lines) > 4 else lines


def _cut(diff: str, budget: int) -> tuple[str, bool]:
    data = diff.encode("utf-8")
    if len(data) <= budget:
        return diff, False
    kept = data[: max(budget, 0)]
    return kept[: kept.rfind(b"\n") + 1].decode("utf-8", errors="ignore"), True


def report(stack: str, folder: Path, base_label: str = "base branch", full_diff: str = "") -> str:
    """The job summary for `stack` from folder/{head,base}/<stack>, at most STEP_SUMMARY_LIMIT bytes."""
    full_diff = full_diff or f"the artifact `render-{stack}`"
    head_rc = _read(folder / "head.rc", "not run")
    base_rc = _read(folder / "base.rc", "not run")
    diff = _diff(stack, folder)
    lines = [f"# Render of `{stack}`: exit {head_rc} ({base_label}: exit {base_rc})", ""]
    lines += _failed(head_rc, folder)
    if base_rc != "0" and not any((folder / "base" / stack).iterdir()):
        lines += [f"The {base_label} did not render {stack}, so every file shows as added.", ""]
    summary = folder / "head" / stack / "summary.md"
    if summary.is_file():
        lines += [summary.read_text(encoding="utf-8"), ""]
    lines += plan_section(stack, folder, base_label)
    lines += [f"## Rendered files: changes against the {base_label}", ""]
    if not diff:
        return "\n".join([*lines, "No rendered file changes.", ""])
    files = sum(1 for line in diff.splitlines() if line.startswith("diff "))
    lines += [f"{files} file(s) changed; the full diff is in {full_diff}.", "", "````diff"]
    head = "\n".join(lines) + "\n"
    body, cut = _cut(diff, STEP_SUMMARY_LIMIT - HEADROOM - len(head.encode("utf-8")))
    tail = ["````"]
    if cut:
        tail += ["", f"The diff is cut here to fit a job summary (1 MiB); the full diff is in {full_diff}."]
    return head + body + ("" if body.endswith("\n") or not body else "\n") + "\n".join(tail) + "\n"


# ---------------------------------------------------------------------------------------------
# make diff: the same three steps, the base from a git worktree
# ---------------------------------------------------------------------------------------------


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)


class CheckoutError(Exception):
    """REV names no commit, or it cannot be checked out: one line."""


@contextlib.contextmanager
def checkout(root: Path, rev: str, what: str = "diff") -> Iterator[tuple[Path, str]]:
    """(a temporary git worktree of `rev`, its commit), removed afterwards."""
    found = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if found.returncode != 0:
        raise CheckoutError(
            f"BASE={rev}: not a commit of the repository at {root}; name a branch, tag or "
            "commit (e.g. BASE=main)"
        )
    commit = found.stdout.strip()
    work = Path(tempfile.mkdtemp(prefix=f"cpaas-{what}-"))
    try:
        tree = work / "base"
        added = _git(root, "worktree", "add", "--detach", "--quiet", str(tree), commit)
        if added.returncode != 0:
            raise CheckoutError(f"cannot check out {rev}: {added.stderr.strip()}")
        try:
            yield tree, commit
        finally:
            _git(root, "worktree", "remove", "--force", str(tree))
            # A remove that failed (or an earlier run that was killed) leaves a record behind.
            _git(root, "worktree", "prune")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def local(stack: str, rev: str, root: Path = ROOT) -> int:
    """Render `stack` at `rev` and in the working tree at `root`; print what the PR job shows."""
    work = Path(tempfile.mkdtemp(prefix="cpaas-diff-"))
    try:
        try:
            with checkout(root, rev) as (tree, commit):
                print(f"diff: rendering {stack} at {rev} ({commit[:12]})", file=sys.stderr)
                render(stack, work / "render", "base", tree)
        except CheckoutError as exc:
            print(f"diff: {exc}", file=sys.stderr)
            return 2
        print(f"diff: rendering {stack} in the working tree", file=sys.stderr)
        code = render(stack, work / "render", "head", root)
        keep = root / "build" / "diff"
        text = report(stack, work / "render", f"base `{rev}`", f"`build/diff/{stack}.diff`")
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / "render" / f"render-{stack}.diff", keep / f"{stack}.diff")
        (keep / f"{stack}.md").write_text(text, encoding="utf-8")
        sys.stdout.write(text)
        return code
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.prdiff", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("render", help="render a checkout into DIR/<side>/STACK")
    one.add_argument("--side", choices=["head", "base"], required=True)
    one.add_argument("--tree", default=str(ROOT), help="the checkout to render (default: this one)")
    two = sub.add_parser("report", help="diff DIR/base against DIR/head and print the job summary")
    two.add_argument("--base-label", default="base branch")
    two.add_argument("--full-diff", default="", help="where the reader finds the whole diff")
    three = sub.add_parser("local", help="make diff: render BASE and the working tree, print the report")
    three.add_argument("--base", default="HEAD", help="a branch, tag or commit (default HEAD)")
    for p in (one, two, three):
        p.add_argument("--stack", required=True)
    for p in (one, two):
        p.add_argument("--dir", required=True, help="the folder both renders and the diff go to")
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    args = _parser().parse_args(list(argv) if argv is not None else None)
    if args.command == "render":
        code = render(args.stack, Path(args.dir), args.side, Path(args.tree), echo=args.side == "head")
        return code if args.side == "head" else 0
    if args.command == "report":
        sys.stdout.write(report(args.stack, Path(args.dir), args.base_label, args.full_diff))
        return 0
    return local(args.stack, args.base)


if __name__ == "__main__":
    sys.exit(main())
