"""`make diff` and the pull-request job show the same report: tools.prdiff."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tools import prdiff, render

ROOT = Path(__file__).resolve().parent.parent
GIT_USER = ["-c", "user.name=cpaas test", "-c", "user.email=test@example.invalid"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *GIT_USER, *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding this checkout's files (as they are now) in one commit."""
    copy = tmp_path / "repo"
    listed = _git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    for rel in filter(None, listed):
        source = ROOT / rel
        if source.is_file():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / rel)
    _git(copy, "init", "--quiet")
    _git(copy, "add", "--all")
    _git(copy, "commit", "--quiet", "--message", "base")
    return copy


@pytest.fixture
def temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder tempfile hands out from, to check that nothing is left in it."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    return folder


def _no_temp_left(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir())


def test_make_diff_renders_the_base_in_a_worktree_and_prints_what_the_pr_job_shows(
    repo: Path, temp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack_file = repo / "Pulumi.dev.yaml"
    assert "replicas: 1\n" in stack_file.read_text()
    stack_file.write_text(stack_file.read_text().replace("replicas: 1\n", "replicas: 2\n"))
    code = prdiff.local("dev", "HEAD", repo)
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert out.startswith("# Render of `dev`: exit 0 (base `HEAD`: exit 0)\n\n# Render of stack `dev`\n")
    assert "\n**Verdict: passes (exit 0).** Schemas: 0 violations. Policy: 0 violations." in out
    assert "## Rendered files: changes against the base `HEAD`" in out
    assert "the full diff is in `build/diff/dev.diff`" in out
    assert re.search(r"^-\s+replicaCount: 1$", out, re.M) and re.search(r"^\+\s+replicaCount: 2$", out, re.M)
    assert (repo / "build" / "diff" / "dev.md").read_text() == out
    assert re.search(r"^\+\s+replicaCount: 2$", (repo / "build" / "diff" / "dev.diff").read_text(), re.M)
    # The worktree and the temporary folder are gone; the repository knows no other worktree.
    assert _git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert _no_temp_left(temp) == []
    assert "diff: rendering dev at HEAD (" in err


def test_fails_make_diff_with_a_base_that_is_no_commit_with_exit_2_one_line_and_nothing_left(
    repo: Path, temp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert prdiff.local("dev", "no-such-branch", repo) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"diff: BASE=no-such-branch: not a commit of the repository at {repo}; name a branch, tag "
        "or commit (e.g. BASE=main)\n"
    )
    assert _git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert _no_temp_left(temp) == []


def _sides(folder: Path, head: dict[str, str], base: dict[str, str], rcs: tuple[int, int]) -> None:
    for side, files in (("head", head), ("base", base)):
        for rel, text in files.items():
            (folder / side / "dev" / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / side / "dev" / rel).write_text(text)
    (folder / "head.rc").write_text(f"{rcs[0]}\n")
    (folder / "base.rc").write_text(f"{rcs[1]}\n")


def test_the_report_fits_a_step_summary_and_says_where_the_whole_diff_is(tmp_path: Path) -> None:
    big = "".join(f"line {i} {'x' * 80}\n" for i in range(30_000))  # about 2.6 MB
    _sides(tmp_path, {"summary.md": "# Render of stack `dev`\n", "big.txt": big}, {}, (0, 0))
    text = prdiff.report("dev", tmp_path)
    assert len(text.encode()) <= prdiff.STEP_SUMMARY_LIMIT
    assert text.rstrip().endswith(
        "The diff is cut here to fit a job summary (1 MiB); the full diff is in the artifact `render-dev`."
    )
    assert "\n````\n\nThe diff is cut here" in text  # the code block is closed first
    assert (tmp_path / "render-dev.diff").stat().st_size > 2_000_000


def test_the_report_of_a_failed_render_shows_its_output_and_a_base_that_wrote_nothing(
    tmp_path: Path,
) -> None:
    _sides(tmp_path, {"summary.md": "# Render of stack `dev`\n\n**Verdict: FAILS (exit 1).**\n"}, {}, (1, 2))
    (tmp_path / "head.log").write_text("violation: k8s/dev/x.yaml: bad\n")
    text = prdiff.report("dev", tmp_path)
    assert text.startswith("# Render of `dev`: exit 1 (base branch: exit 2)\n")
    assert "````text\nviolation: k8s/dev/x.yaml: bad\n````" in text
    assert "The base branch did not render dev, so every file shows as added." in text
    assert "**Verdict: FAILS (exit 1).**" in text


def test_the_diff_leaves_out_the_renders_manifest_which_is_no_rendered_file(tmp_path: Path) -> None:
    assert prdiff.MANIFEST == render.MANIFEST
    head = {render.MANIFEST: '{"files": ["a.yaml", "b.yaml"]}\n', "a.yaml": "a: 1\n", "b.yaml": "b: 1\n"}
    _sides(tmp_path, head, {render.MANIFEST: '{"files": ["a.yaml"]}\n', "a.yaml": "a: 1\n"}, (0, 0))
    text = prdiff.report("dev", tmp_path)
    assert "1 file(s) changed" in text
    assert "+b: 1" in text and f"dev/{render.MANIFEST}" not in text
