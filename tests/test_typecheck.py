"""The type checker's configuration: what pyproject.toml tells mypy to skip is never used by the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("components", "tools", "policy", "__main__.py")
# `k8s.core.v1.Secret`, `pulumi_kubernetes.helm.v3`, `from pulumi_kubernetes.meta.v1 import ...`
USE = re.compile(r"\b(?:k8s|pulumi_kubernetes)((?:\.[a-z_][a-z0-9_]*)+)")


def skipped_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    return [
        module
        for override in config.get("overrides", [])
        if override.get("follow_imports") == "skip"
        for module in override["module"]
    ]


def used_kubernetes_modules(text: str) -> set[str]:
    """Every pulumi_kubernetes module path the text names, each prefix included."""
    used = set()
    for match in USE.finditer(text):
        parts = match[1].strip(".").split(".")
        used |= {"pulumi_kubernetes." + ".".join(parts[: i + 1]) for i in range(len(parts))}
    return used


def covered(module: str, pattern: str) -> bool:
    """mypy's override matching: `a.b.*` names a.b and everything under it; else the exact name."""
    if pattern.endswith(".*"):
        return module == pattern[:-2] or module.startswith(pattern[:-1])
    return module == pattern


def source_text() -> str:
    files = [
        p
        for entry in CHECKED
        for p in ([ROOT / entry] if entry.endswith(".py") else (ROOT / entry).rglob("*.py"))
    ]
    return "\n".join(p.read_text() for p in files)


def test_mypy_skips_no_pulumi_kubernetes_module_the_code_uses() -> None:
    skipped = skipped_modules()
    assert any(p.startswith("pulumi_kubernetes.") for p in skipped)  # the list this test guards exists
    used = used_kubernetes_modules(source_text())
    assert {"pulumi_kubernetes.core.v1", "pulumi_kubernetes.helm.v3"} <= used
    clash = sorted(f"{m} (skipped by {p})" for m in used for p in skipped if covered(m, p))
    assert clash == [], (
        "the code uses a module mypy is told to skip; drop it from pyproject.toml: " + ", ".join(clash)
    )


def test_fails_the_check_when_the_code_would_use_a_skipped_api_group() -> None:
    used = used_kubernetes_modules(
        "role = k8s.rbac.v1.Role('r')\nfrom pulumi_kubernetes.batch.v1 import Job\n"
    )
    assert "pulumi_kubernetes.rbac.v1" in used and "pulumi_kubernetes.batch.v1" in used
    assert covered("pulumi_kubernetes.rbac.v1", "pulumi_kubernetes.rbac.*")
    assert covered("pulumi_kubernetes.rbac", "pulumi_kubernetes.rbac.*")
    assert not covered("pulumi_kubernetes.rbacx", "pulumi_kubernetes.rbac.*")
    assert any(covered(m, p) for m in used for p in skipped_modules())
