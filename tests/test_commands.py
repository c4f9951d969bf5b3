"""The commands README.md, docs/ and CHANGELOG.md show run as written in a fresh shell, and
`make test` works on a fresh clone (issue 13 items 5 and 6)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT, run

# Every page a reader copies commands from: the README, the reference in docs/, the rollout notes.
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "CHANGELOG.md"]
# A fresh shell: no venv activated, no PYTHONPATH, only the system's tools on PATH.
FRESH = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
COMMAND = re.compile(r"^(make|\.venv/bin/python|python3?|pulumi|kubectl)\b")


def _commands() -> list[str]:
    """Every command the pages show: shell lines in fenced blocks, and code spans that start
    with a command (one per span; `[...]` options dropped)."""
    found: list[str] = []
    for page in PAGES:
        text = page.read_text()
        for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M):
            if lang in ("", "sh", "bash", "shell"):
                found += [line.strip() for line in body.splitlines() if COMMAND.match(line.strip())]
        outside = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
        found += [span for span in re.findall(r"`([^`\n]+)`", outside) if COMMAND.match(span)]
    return sorted({re.sub(r"\s*\[[^]]*\]", "", c).strip() for c in found})


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), flags=re.M))


def test_no_page_shows_a_command_that_needs_an_activated_venv() -> None:
    bare = [c for c in _commands() if re.match(r"python3? ", c)]
    assert bare == [], "use a make target or .venv/bin/python -m ...: " + ", ".join(bare)


def test_every_make_command_the_pages_show_names_a_target_of_the_makefile() -> None:
    makes = [shlex.split(c) for c in _commands() if c.startswith("make")]
    assert {"make", "render", "up", "replicate", "bench", "test"} <= {w for m in makes for w in m[:2]}
    missing = [" ".join(m) for m in makes if len(m) > 1 and "=" not in m[1] and m[1] not in _make_targets()]
    assert missing == []


def test_every_venv_module_the_pages_show_runs_in_a_fresh_shell() -> None:
    modules = sorted({c.split()[2] for c in _commands() if c.startswith(".venv/bin/python -m ")})
    assert {"tools.render", "tools.replicate", "tools.bench"} <= set(modules)
    for module in modules:
        result = run([".venv/bin/python", "-m", module, "--help"], cwd=ROOT, env=FRESH)
        assert result.returncode == 0, f"{module}: {result.stderr}"


@pytest.mark.parametrize(
    ("target", "module"),
    [
        ("replicate", "tools.replicate --stack prod --unit onprem-syd --name onprem-mel"),
        ("bench", "tools.bench --sizes 1"),
    ],
)
def test_the_make_targets_run_the_venv_module_with_the_given_args(target: str, module: str) -> None:
    args = module.split(" ", 1)[1]
    shown = _make("-n", target, f"ARGS={args}").stdout
    assert f".venv/bin/python -m {module}" in shown


def _make(*args: str, path: str = FRESH["PATH"]) -> subprocess.CompletedProcess[str]:
    # -o: never rebuild the venv from a test, whatever the requirement files' times.
    return run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", *args],
        cwd=ROOT,
        env={**FRESH, "PATH": path},
    )


def _fake_pulumi(folder: Path) -> Path:
    """A pulumi CLI on a backend without the stack: `stack select` fails; calls are logged."""
    log = folder / "calls.log"
    tool = folder / "pulumi"
    tool.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'case "$1 $2" in\n'
        '  "version "*) echo v3.272.0 ;;\n'
        '  "stack select") echo "error: no stack named \'$3\' found" >&2; exit 255 ;;\n'
        "esac\n"
    )
    tool.chmod(0o755)
    kubectl = folder / "kubectl"
    kubectl.write_text("#!/bin/sh\necho 'Client Version: v1.34.0'\n")
    kubectl.chmod(0o755)
    return log


def test_make_up_for_a_stack_the_backend_lacks_says_to_init_it_and_what_to_set(tmp_path: Path) -> None:
    log = _fake_pulumi(tmp_path)
    result = _make("up", "STACK=prod", path=f"{tmp_path}:{FRESH['PATH']}")
    assert result.returncode != 0
    assert "pulumi stack init prod" in result.stderr
    for line in (
        "pulumi config set --secret -s prod cpaas:bigipPassword-aws-syd",
        "pulumi config set --secret -s prod cpaas:kubeconfig-aws-syd < kubeconfig",
        "pulumi config set --secret -s prod cpaas:bigipPassword-gslb",
    ):
        assert line in result.stderr, result.stderr
    assert result.stderr.startswith("The backend has no stack prod (or you are not logged in: pulumi login).")
    assert not [c for c in log.read_text().splitlines() if c.startswith(("up", "stack init"))]


def test_the_prod_deploy_steps_create_the_stack_before_setting_its_secrets() -> None:
    page = (ROOT / "docs" / "operations.md").read_text()
    deploy = page[page.index("## Deploy") : page.index("## Reaching the dev apps")]
    assert "pulumi stack init prod" in deploy
    assert deploy.index("pulumi stack init prod") < deploy.index("set the secrets")


# ---------------------------------------------------------------------------------------------
# Item 6: a fresh clone without ../shared
# ---------------------------------------------------------------------------------------------


def test_make_test_finds_or_fetches_the_schemas_before_the_suite_and_then_requires_them() -> None:
    recipe = _make("-n", "test").stdout.splitlines()
    ensure = [i for i, line in enumerate(recipe) if "-m tools.schemas --if-missing" in line]
    suite = [i for i, line in enumerate(recipe) if "-m pytest" in line]
    assert ensure and suite and ensure[0] < suite[0], recipe
    assert "CPAAS_REQUIRE_SCHEMAS=1" in recipe[suite[0]]


def _fresh_clone(tmp_path: Path) -> Path:
    """A checkout with no ../shared beside it (only what tools.schemas needs)."""
    clone = tmp_path / "clone" / "cpaas"
    for part in ("tools", "components"):
        shutil.copytree(ROOT / part, clone / part, ignore=shutil.ignore_patterns("__pycache__"))
    return clone


def _ensure(clone: Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    argv = [
        str(ROOT / ".venv/bin/python"),
        "-m",
        "tools.schemas",
        "--if-missing",
        "--base-url",
        "http://127.0.0.1:9",
    ]
    return run(argv, cwd=clone, env={**FRESH, "HOME": str(home), **env})


def test_fails_offline_on_a_fresh_clone_in_one_line_that_says_how_to_point_at_a_copy(tmp_path: Path) -> None:
    result = _ensure(_fresh_clone(tmp_path), tmp_path / "home")
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("schemas: no schema folder here") and "set CPAAS_SCHEMAS to a copy" in line, line
    assert not (tmp_path / "home" / ".cache" / "cpaas" / "schemas" / "MANIFEST.md").exists()


def test_an_existing_schema_folder_is_used_without_fetching(tmp_path: Path, schema_dir: Path) -> None:
    result = _ensure(_fresh_clone(tmp_path), tmp_path / "home", CPAAS_SCHEMAS=str(schema_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"schemas: using {schema_dir}\n"


def test_fails_a_cpaas_schemas_folder_without_a_manifest_in_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _ensure(_fresh_clone(tmp_path), tmp_path / "home", CPAAS_SCHEMAS=str(empty))
    assert result.returncode == 1
    assert result.stderr == (
        f"schemas: CPAAS_SCHEMAS={empty} holds no MANIFEST.md; point it at a complete copy of the "
        "schema folder\n"
    )
