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
        tool.write_text(f"#!/bin/sh\necho '{name} 1.0'\n")
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
