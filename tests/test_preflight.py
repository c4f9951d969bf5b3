"""`make preflight`: says which tools `make up` needs and where to get the missing ones."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support import ROOT


def _run(stack: str, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", str(ROOT / "tools" / "preflight.sh")],
        env={"PATH": path, "STACK": stack, "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _fake_tools(folder: Path, *names: str) -> str:
    for name in names:
        tool = folder / name
        printed = "v3.272.0" if name == "pulumi" else f"{name} 1.0"
        tool.write_text(f"#!/bin/sh\necho '{printed}'\n")
        tool.chmod(0o755)
    return f"{folder}:/usr/bin:/bin"


def test_fails_with_what_to_install_when_the_dev_tools_are_missing(tmp_path: Path) -> None:
    result = _run("dev", _fake_tools(tmp_path, "kubectl"))
    assert result.returncode == 1
    assert "MISSING  pulumi" in result.stdout and "MISSING  k3d" in result.stdout
    assert "https://k3d.io" in result.stdout
    assert "install what is MISSING" in result.stderr


def test_passes_for_prod_when_pulumi_and_kubectl_are_there(tmp_path: Path) -> None:
    result = _run("prod", _fake_tools(tmp_path, "pulumi", "kubectl"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok       pulumi" in result.stdout and "docker" not in result.stdout


def _k3d(folder: Path, version_line: str) -> None:
    tool = folder / "k3d"
    tool.write_text(f"#!/bin/sh\necho '{version_line}'\necho 'k3s version v1.34.6-k3s1 (default)'\n")
    tool.chmod(0o755)


def test_passes_for_dev_with_k3d_5_5_or_later(tmp_path: Path) -> None:
    path = _fake_tools(tmp_path, "pulumi", "kubectl", "docker")
    _k3d(tmp_path, "k3d version v5.9.0")
    result = _run("dev", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok       k3d      k3d version v5.9.0" in result.stdout


def test_fails_for_dev_with_a_k3d_older_than_5_5_which_cannot_read_the_config(tmp_path: Path) -> None:
    path = _fake_tools(tmp_path, "pulumi", "kubectl", "docker")
    for line in ("k3d version v5.4.9", "k3d version v4.4.8", "k3d version"):
        _k3d(tmp_path, line)
        result = _run("dev", path)
        assert result.returncode == 1, line
        assert f"MISSING  k3d v5.5 or later (found: {line})" in result.stdout


def _pulumi_env(stack: str, **env: str) -> dict[str, str]:
    """The PULUMI_* variables `make up/preview/destroy` give the Pulumi CLI for `stack`."""
    shown = subprocess.run(
        [
            "make",
            "-s",
            "--no-print-directory",
            "--eval",
            "show-env: ; @$(PULUMI_ENV) env",
            "show-env",
            f"STACK={stack}",
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return dict(line.split("=", 1) for line in shown.splitlines() if line.startswith("PULUMI_"))


def test_make_gives_dev_a_local_backend_and_an_empty_passphrase_only_when_none_is_configured() -> None:
    backend = f"file://{ROOT}/.pulumi-state"
    assert _pulumi_env("dev") == {"PULUMI_BACKEND_URL": backend, "PULUMI_CONFIG_PASSPHRASE": ""}
    # Pulumi reads the variable before the file: an empty default would shadow the file.
    assert _pulumi_env("dev", PULUMI_CONFIG_PASSPHRASE_FILE="/run/pp") == {
        "PULUMI_BACKEND_URL": backend,
        "PULUMI_CONFIG_PASSPHRASE_FILE": "/run/pp",
    }
    assert _pulumi_env("dev", PULUMI_CONFIG_PASSPHRASE="s3cret")["PULUMI_CONFIG_PASSPHRASE"] == "s3cret"
    assert _pulumi_env("dev", PULUMI_BACKEND_URL="s3://b")["PULUMI_BACKEND_URL"] == "s3://b"
    assert _pulumi_env("prod") == {}


def test_fails_with_a_pulumi_cli_older_than_the_replacement_trigger_needs(tmp_path: Path) -> None:
    path = _fake_tools(tmp_path, "kubectl")
    for line in ("v3.225.0", "v2.25.2", ""):
        tool = tmp_path / "pulumi"
        tool.write_text(f"#!/bin/sh\necho '{line}'\n")
        tool.chmod(0o755)
        result = _run("prod", path)
        assert result.returncode == 1, line
        assert f"MISSING  Pulumi CLI 3.226 or later (found: {line or 'no version'}" in result.stdout


def test_a_newer_major_version_passes_the_version_checks(tmp_path: Path) -> None:
    path = _fake_tools(tmp_path, "kubectl", "docker")
    (tmp_path / "pulumi").write_text("#!/bin/sh\necho 'v4.1.0'\n")
    (tmp_path / "pulumi").chmod(0o755)
    _k3d(tmp_path, "k3d version v6.0.1")
    result = _run("dev", path)
    assert result.returncode == 0, result.stdout + result.stderr
