"""Saving the BIG-IP's running configuration after Pulumi changes it.

The f5bigip provider writes through iControl REST into the running configuration and never
saves it, so without a save the objects would be gone after a reboot. AS3 (GSLB, and CIS's own
declarations) saves by itself (`persist`, default true); everything else needs `save sys config`.

Two commands per unit, both re-run by a replacement trigger built from what cpaas sends, never
from what the device returns (a failed object's outputs are unknown, and an unknown trigger
stops the whole update, other units included):

- `ConfigSave` saves after the unit's objects are created or updated. Trigger: the unit's config,
  what the cpaas code that writes to the BIG-IP sends (`code_digest`: not its comments), and the
  certificates it uploads.
- `BigipDevice.save_on_destroy` sits under every object, so it is deleted after them: on destroy,
  on removing the unit, and, because a new trigger replaces it and the old copy is deleted at
  the end of the update after every object removed or replaced in that update, whenever the
  unit's config or that code changes.

Ref: https://github.com/F5Networks/terraform-provider-bigip/issues/1111
Ref: https://clouddocs.f5.com/cli/tmsh-reference/latest/modules/sys/sys_save.html
Ref: https://www.pulumi.com/docs/iac/concepts/options/replacementtrigger/
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from typing import Any

import pulumi
import pulumi_f5bigip as f5bigip

from components import config
from components.bigip.tmsh_check import CheckArgs, output_check

SAVE = "save sys config"


def digest(values: Sequence[Any]) -> str:
    return hashlib.sha256(json.dumps(list(values), sort_keys=True, default=str).encode()).hexdigest()


def code_files() -> list[tuple[str, str]]:
    """(path, text) of the cpaas code that writes to the BIG-IP: this package's Python and iRules."""
    files: list[tuple[str, str]] = []
    todo = [("", resources.files(__package__))]
    while todo:
        prefix, folder = todo.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                if entry.name != "__pycache__":
                    todo.append((f"{prefix}{entry.name}/", entry))
            elif entry.name.endswith((".py", ".tcl")):
                files.append((f"{prefix}{entry.name}", entry.read_text(encoding="utf-8")))
    return sorted(files)


def _syntax(node: Any) -> Any:
    """A syntax tree as plain data: node names and fields, no positions, no empty fields (so
    that a Python release adding an empty field does not move the digest)."""
    if isinstance(node, ast.AST):
        fields = {key: _syntax(value) for key, value in ast.iter_fields(node) if value not in (None, [])}
        return [type(node).__name__, fields]
    if isinstance(node, list):
        return [_syntax(item) for item in node]
    return node


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


# Each build asks for every unit; parsing the same text again gives the same form (read only).
@functools.lru_cache(maxsize=128)
def sent_form(path: str, text: str) -> Any:
    """What a file of that code adds to what the BIG-IP receives. An iRule is sent as written,
    comments included. Python is the syntax tree without comments, docstrings or layout: a
    comment edit sends nothing new, so it must not save every device again.

    Why the code and not the objects' registered inputs: the save-on-destroy's trigger is needed
    before any object is registered (they all depend on it), and several inputs are Outputs
    (another object's name as the device returned it, certificates) that a trigger must never
    wait on. The code that turns the config into those inputs, with the config, determines them.
    """
    if not path.endswith(".py"):
        return text
    return _syntax(_without_docstrings(ast.parse(text, filename=path)))


def code_digest(files: Iterable[tuple[str, str]] | None = None) -> str:
    """Changes with what that code sends, so an upgrade that changes BIG-IP objects without a
    config change still saves. `files`: (path, text) pairs in place of `code_files()`."""
    return _code_digest(tuple(code_files() if files is None else files))


# Every unit of every build asks; the sent forms' JSON is most of a build's hashing (read only).
@functools.lru_cache(maxsize=32)
def _code_digest(files: tuple[tuple[str, str], ...]) -> str:
    return digest([(path, sent_form(path, text)) for path, text in files])


# Unit fields no BIG-IP object is made from (no code in this package reads them): a change to
# them alone saves no device (tests/test_plan.py: an Istio patch bump only updates Helm releases).
NOT_SENT: dict[str, Any] = {"mesh": {"istio_version"}}


def unit_digest(unit: config.Unit, *sent: Any) -> str:
    """What the unit asks of its BIG-IP, as far as it is known before deployment: its config
    (less NOT_SENT), the code and provider version that turn it into objects, and anything else
    `sent` (such as tmsh commands built from constants outside this package)."""
    dumped = unit.model_dump(mode="json", exclude=NOT_SENT)
    return digest([dumped, code_digest(), metadata.version("pulumi_f5bigip"), *sent])


@dataclass(frozen=True)
class SaveArgs:
    # Every object Pulumi manages on the device (the provider comes from opts).
    objects: tuple[pulumi.CustomResource, ...]
    # Changes exactly when the objects are meant to change: see the module docstring.
    trigger: pulumi.Input[str]
    # Steps that check what the device answered (the BGP tmsh output, tmsh_check.py): the save
    # depends on them, so it is skipped (--continue-on-error) or never started when one fails.
    # Dependencies, not inputs: nothing the device returns reaches the save's inputs or trigger.
    checks: tuple[pulumi.Resource, ...] = ()


class ConfigSave(pulumi.ComponentResource):
    def __init__(self, name: str, args: SaveArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:bigip:ConfigSave", name, None, opts)
        if not args.objects:
            raise ValueError(f"{name}: nothing to save; give the objects Pulumi manages on the device")
        # The trigger's own dependencies do not order the command: depends_on does.
        self.command = f5bigip.Command(
            f"{name}-command",
            commands=[SAVE],
            when="apply",
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*args.objects, *args.checks], replacement_trigger=args.trigger
            ),
        )
        # `save sys config` prints tmsh errors like any other command: the same check fails the step.
        self.check = output_check(
            f"{name}-check",
            CheckArgs(self.command, (SAVE,), f"{name}: {SAVE}"),
            pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"saves": len(args.objects)})
