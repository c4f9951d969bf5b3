"""The GitHub Actions workflows: linted with actionlint (+ shellcheck) and zizmor, offline, and
checked for the properties the README promises a reviewer.

The linters come from requirements-dev.txt. A missing linter fails these tests: every one of
them ships wheels for Linux (x86_64, aarch64), macOS (arm64) and Windows.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import pki
from tests.support import run, stack
from tools.validate import resolve_schema_dir

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
PR = WORKFLOWS / "pull-request.yml"
DEPLOY = WORKFLOWS / "deploy.yml"
E2E = WORKFLOWS / "e2e.yml"
SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@]+)?@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(-\s+)?uses:\s*(?P<ref>\S+)\s*(?P<comment>#.*)?$")
VERSION_COMMENT = re.compile(r"^# v\d+\.\d+\.\d+$")
# Linters must never reach the network: CI has none.
NO_NETWORK_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"} and not k.startswith("ZIZMOR_")
}


def tool(name: str) -> str:
    """The linter binary installed beside this Python (the venv), else on PATH; fail if absent."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if not found:
        pytest.fail(
            f"{name} is not installed: run `pip install -r requirements-dev.txt` "
            f"(it is pinned there; wheels exist for this platform)"
        )
    return found


def workflow_files() -> list[Path]:
    files = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
    assert files, f"no workflows in {WORKFLOWS}"
    return files


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), path
    # YAML 1.1 reads the bare key `on` as True.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def steps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job_id, step) for job_id, job in doc["jobs"].items() for step in job.get("steps", [])]


def action(step: dict[str, Any]) -> str:
    return str(step.get("uses", "")).split("@", 1)[0]


def stacks() -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))


# ---------------------------------------------------------------------------------------------
# Linters
# ---------------------------------------------------------------------------------------------


def test_actionlint_with_shellcheck_is_clean() -> None:
    actionlint, shellcheck = tool("actionlint"), tool("shellcheck")
    version = subprocess.run([actionlint, "-version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip(), "actionlint -version printed nothing"
    config = str(ROOT / ".github" / "actionlint.yaml")
    # -pyflakes= : no Python in run: steps; an empty value disables it
    argv = [actionlint, "-no-color", "-config-file", config, "-shellcheck", shellcheck, "-pyflakes="]
    result = run([*argv, *map(str, workflow_files())], cwd=ROOT, env=NO_NETWORK_ENV)
    assert result.returncode == 0, f"actionlint found problems:\n{result.stdout}{result.stderr}"


def zizmor(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [tool("zizmor"), "--offline", "--no-progress", "--color=never", *args, str(WORKFLOWS)]
    return run(argv, cwd=ROOT, env=NO_NETWORK_ENV)


def test_zizmor_offline_is_clean() -> None:
    result = zizmor()
    assert result.returncode == 0, f"zizmor found problems:\n{result.stdout}{result.stderr}"


def test_zizmor_auditor_flags_only_the_intended_self_hosted_runners() -> None:
    """The auditor persona also reports what the regular one hides. The only such finding is
    the self-hosted runner of the jobs that must reach the BIG-IPs (README says why)."""
    result = zizmor("--persona=auditor", "--format=json", "--no-exit-codes")
    assert result.returncode == 0, result.stderr
    found = set()
    for finding in json.loads(result.stdout):
        loc = finding["locations"][0]["symbolic"]
        route = [part.get("Key") for part in loc["route"]["route"]]
        found.add((finding["ident"], Path(loc["key"]["Local"]["verbatim_path"]).name, route[1]))
    assert found == {
        ("self-hosted-runner", "pull-request.yml", "preview"),
        ("self-hosted-runner", "deploy.yml", "up"),
    }


# ---------------------------------------------------------------------------------------------
# Structure: pins, permissions, credentials, injection
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(path: Path) -> None:
    for job_id, step in steps(load(path)):
        if "uses" in step:
            assert SHA_PIN.match(step["uses"]), f"{path.name} {job_id}: {step['uses']} is not SHA-pinned"
    lines = [m for line in path.read_text().splitlines() if (m := USES_LINE.match(line))]
    assert lines
    for m in lines:
        assert VERSION_COMMENT.match(m["comment"] or ""), f"{path.name}: `{m[0].strip()}` needs `# vX.Y.Z`"


def test_each_action_has_one_pin_across_workflows() -> None:
    pins: dict[str, set[str]] = {}
    for path in workflow_files():
        for m in (USES_LINE.match(line) for line in path.read_text().splitlines()):
            if m:
                name, sha = m["ref"].split("@")
                pins.setdefault(name, set()).add(f"{sha} {m['comment']}")
    assert {name for name, pin in pins.items() if len(pin) > 1} == set(), pins
    assert {"actions/checkout", "actions/setup-python", "actions/upload-artifact", "pulumi/actions"} <= set(
        pins
    )


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_least_privilege_and_safe_triggers(path: Path) -> None:
    doc = load(path)
    assert doc.get("permissions") == {}, f"{path.name}: the workflow default must be `permissions: {{}}`"
    assert not {"pull_request_target", "workflow_run"} & set(doc["on"]), path.name
    for job_id, job in doc["jobs"].items():
        perms = job.get("permissions")
        assert isinstance(perms, dict), f"{path.name} {job_id}: set permissions per job"
        assert perms.get("contents") == "read", f"{path.name} {job_id}"
        comments = any(s.get("with", {}).get("comment-on-pr") is True for s in job.get("steps", []))
        allowed = {"contents": "read", **({"pull-requests": "write"} if comments else {})}
        assert perms == allowed, f"{path.name} {job_id}: {perms}, expected {allowed}"
        assert isinstance(job.get("timeout-minutes"), int), f"{path.name} {job_id}: no timeout"


@pytest.mark.parametrize("path", workflow_files(), ids=lambda p: p.name)
def test_no_persisted_credentials_and_no_expressions_in_scripts(path: Path) -> None:
    for job_id, step in steps(load(path)):
        if action(step) == "actions/checkout":
            assert step.get("with", {}).get("persist-credentials") is False, f"{path.name} {job_id}"
        # Values reach scripts through env:, never by ${{ }} expansion into the script text.
        assert "${{" not in str(step.get("run", "")), f"{path.name} {job_id}: {step.get('name')}"


def test_every_workflow_runs_one_at_a_time() -> None:
    pr = load(PR)
    assert pr["concurrency"]["cancel-in-progress"] is True
    assert "pull_request.number" in pr["concurrency"]["group"]
    up = load(DEPLOY)["jobs"]["up"]
    # An update in progress is never cancelled; the next one waits.
    assert up["concurrency"]["cancel-in-progress"] is False
    assert up["strategy"]["max-parallel"] == 1
    # The e2e deploy (tests/test_e2e.py): a new push to a PR replaces its run; main's runs queue.
    e2e = load(E2E)["concurrency"]
    assert e2e["group"] == "e2e-${{ github.event.pull_request.number || github.ref }}"
    assert e2e["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


# ---------------------------------------------------------------------------------------------
# What each workflow does
# ---------------------------------------------------------------------------------------------


def pulumi_step(job: dict[str, Any]) -> dict[str, Any]:
    found = [s for s in job["steps"] if action(s) == "pulumi/actions"]
    assert len(found) == 1
    return found[0]


def pulumi_sdk_version() -> str:
    m = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert m, "requirements.txt pins no pulumi"
    return m[1]


def test_pull_request_runs_the_tests_with_required_schemas() -> None:
    doc = load(PR)
    assert doc["on"] == {"pull_request": {"branches": ["main"]}}
    assert doc["env"]["CPAAS_REQUIRE_SCHEMAS"] == "1"
    runs = [s.get("run") for s in doc["jobs"]["test"]["steps"] if "run" in s]
    assert runs == ["make schemas", "make test"]


def test_ci_stops_in_one_line_when_openssl_is_missing(tmp_path: Path) -> None:
    """The iRule tests need openssl (tests/tclstubs.py); CI says so before running anything."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "make"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    done = run(["bash", str(ROOT / ".ci" / "run")], env={"PATH": str(bin_dir)})
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == "ci: openssl is missing; the iRule tests need it: install openssl\n"
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = makefile[makefile.index("\ntest:") + 1 :].split("\n\n")[0]
    assert "command -v openssl" in test_recipe.splitlines()[1], "make test checks for openssl first"


def test_pull_request_renders_every_stack_against_the_base() -> None:
    job = load(PR)["jobs"]["render"]
    assert job["strategy"]["matrix"]["stack"] == stacks()
    text = "\n".join(str(s.get("run", "")) for s in job["steps"])
    assert "git worktree add --detach base HEAD^1" in text
    assert next(s for s in job["steps"] if action(s) == "actions/checkout")["with"]["fetch-depth"] == 2
    # The same tool `make diff` runs: the renders, the diff and the summary are one code path.
    runs = {s.get("name"): " ".join(str(s.get("run", "")).split()) for s in job["steps"]}
    dir_ = '--stack "$STACK" --dir "$RUNNER_TEMP/render"'
    assert runs["Render the PR"] == f".venv/bin/python -m tools.prdiff render --side head {dir_}"
    assert (
        runs["Render the base branch"]
        == f".venv/bin/python -m tools.prdiff render --side base --tree base {dir_}"
    )
    assert runs["Diff against the base and write the job summary"] == (
        f'.venv/bin/python -m tools.prdiff report {dir_} >> "$GITHUB_STEP_SUMMARY"'
    )
    upload = next(s for s in job["steps"] if action(s) == "actions/upload-artifact")
    assert upload["with"]["name"] == "render-${{ matrix.stack }}"
    assert upload["if"] == "${{ !cancelled() }}"


def test_pull_request_previews_prod_and_comments() -> None:
    job = load(PR)["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["prod"]  # dev is a local k3d stack
    assert job["runs-on"][0] == "self-hosted" and "cpaas-prod" in job["runs-on"]
    assert job["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert job["environment"] == "${{ matrix.stack }}-preview"
    step = pulumi_step(job)
    w = step["with"]
    assert w["command"] == "preview"
    assert w["comment-on-pr"] is True
    assert w["stack-name"] == "${{ matrix.stack }}"
    assert w["always-include-summary"] is True and w["refresh"] is True and w["diff"] is True
    assert str(w["pulumi-version"]) == pulumi_sdk_version()
    assert step["env"] == {"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_ACCESS_TOKEN }}"}


def test_merge_to_main_runs_up_behind_an_environment() -> None:
    doc = load(DEPLOY)
    assert doc["on"]["push"] == {"branches": ["main"]}
    assert set(doc["jobs"]) == {"up"}
    job = doc["jobs"]["up"]
    assert job["environment"] == "${{ matrix.stack }}"
    assert job["strategy"]["matrix"]["stack"] == ["prod"]
    assert job["runs-on"][0] == "self-hosted" and "cpaas-prod" in job["runs-on"]
    w = pulumi_step(job)["with"]
    assert w["command"] == "up"
    assert w["stack-name"] == "${{ matrix.stack }}"
    assert str(w["pulumi-version"]) == pulumi_sdk_version()


def test_deploy_also_runs_weekly_so_each_prod_certificate_meets_three_runs_in_its_renewal_window() -> None:
    """A certificate is renewed by an update inside the last third of its life (pki.renewal_hours);
    merges alone may not come that often. The weekly run waits for the same approval."""
    on = load(DEPLOY)["on"]
    assert set(on) == {"push", "schedule"}
    [entry] = on["schedule"]
    minute, hour, day, month, weekday = entry["cron"].split()
    assert (day, month) == ("*", "*") and weekday in set("0123456") and minute.isdigit() and hour.isdigit()
    prod = stack("prod").pki
    assert prod is not None
    specs = pki.plan(prod, [pki.UnitTrust("u", "u.example", egress=True, apps=(("a", "a.example"),))])
    assert min(s.early_renewal_hours for s in specs) >= 3 * 7 * 24


def test_deploy_keeps_updating_the_other_units_when_one_fails() -> None:
    """`make up` passes --continue-on-error so one unit's failure leaves the others' updates
    running; CI must do the same. pulumi/actions v7.0.0 takes it as its `continue-on-error`
    input (action.yml; src/config.ts passes it to the Automation API's up, which adds the flag).
    The step-level `continue-on-error` of GitHub Actions is another thing (a failed update would
    turn green), so it must not be set."""
    step = pulumi_step(load(DEPLOY)["jobs"]["up"])
    assert step["with"].get("continue-on-error") is True
    assert "continue-on-error" not in step
    makefile = (ROOT / "Makefile").read_text()
    assert "pulumi up --stack $(STACK) --continue-on-error" in makefile


def test_make_diff_runs_the_pr_jobs_steps_locally() -> None:
    """`make diff STACK=... BASE=REV` renders REV (a temporary git worktree) and the working tree
    with tools.prdiff, as the render job does, and prints the same report (tests/test_prdiff.py)."""
    makefile = (ROOT / "Makefile").read_text()
    target = re.search(r"^diff: (.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert target, "no diff target in the Makefile"
    assert "## " in target[1]
    assert target[2].strip() == "$(PY) -m tools.prdiff local --stack $(STACK) --base $(BASE)"
    assert re.search(r"^BASE \?= HEAD$", makefile, re.M)
    assert re.search(r"^\.PHONY:.* diff( |$)", makefile, re.M)


# ---------------------------------------------------------------------------------------------
# The render job's scripts, run here as GitHub would run them
# ---------------------------------------------------------------------------------------------


def committed_tree(dest: Path) -> None:
    """The committed HEAD of this repo, as the base branch; the work tree is the PR."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "HEAD"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")


def test_render_job_scripts_write_the_summary_the_diff_and_the_artifact(tmp_path: Path) -> None:
    job = load(PR)["jobs"]["render"]
    named = {s.get("name"): s for s in job["steps"]}
    work = tmp_path / "workspace"
    work.mkdir()
    for entry in ("tools", "components"):  # what `python -m tools.render` imports
        (work / entry).symlink_to(ROOT / entry)
    (work / ".venv").symlink_to(Path(sys.prefix))
    base = work / "base"
    base.mkdir()
    committed_tree(base)
    (base / ".venv").symlink_to(Path(sys.prefix))
    # A change on the PR side: the base had two NGINX replicas, the PR has one.
    stack_file = base / "Pulumi.dev.yaml"
    assert "replicas: 1\n" in stack_file.read_text()
    stack_file.write_text(stack_file.read_text().replace("replicas: 1\n", "replicas: 2\n"))
    temp, summary = tmp_path / "runner-temp", tmp_path / "step-summary.md"
    temp.mkdir()
    env = {**os.environ, "RUNNER_TEMP": str(temp), "GITHUB_STEP_SUMMARY": str(summary), "STACK": "dev"}
    # Both renders find the schemas as CI's do (there: `make schemas` fills the cache); the
    # base tree here has no sibling shared/ folder.
    schemas = resolve_schema_dir(None)
    assert schemas is not None
    env["CPAAS_SCHEMAS"] = str(schemas)
    for name in (
        "Render the PR",
        "Render the base branch",
        "Diff against the base and write the job summary",
    ):
        step = named[name]
        cwd = work / step.get("working-directory", ".")
        argv = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]]
        result = run(argv, cwd=cwd, env=env, timeout=300)
        assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"
    text = summary.read_text()
    assert text.startswith("# Render of `dev`: exit 0 (base branch: exit 0)\n")
    assert "\n# Render of stack `dev`\n\n**Verdict: passes (exit 0).** " in text  # the render's summary.md
    assert "## Rendered files: changes against the base branch" in text
    diff = (temp / "render" / "render-dev.diff").read_text()
    assert re.search(r"^-\s+replicaCount: 2$", diff, re.M), diff[:2000]
    assert re.search(r"^\+\s+replicaCount: 1$", diff, re.M), diff[:2000]
    assert "````diff\n" + diff[:200] in text
    # What the upload step names exists.
    assert (temp / "render" / "head" / "dev" / "summary.md").is_file()
    assert (temp / "render" / "head" / "dev" / "resources.json").is_file()
