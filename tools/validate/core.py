"""What every part of the validation shares: the schema folder, violations and their wording,
a schema compiled once and checked twice (jsonschema-rs decides, jsonschema explains), and the
Checks base class the per-family checks (kubernetes, crd, helm, f5) extend."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml
from jsonschema import FormatChecker
from jsonschema.exceptions import ValidationError, relevance
from jsonschema.protocols import Validator as JsonValidator
from referencing.exceptions import Unresolvable

from tools import fastschema
from tools.schemas import default_cache_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_VAR = "CPAAS_SCHEMAS"

YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAX_MESSAGE = 400
# Disk cache entries are made by this package's code from files read with this YAML library.
CODE = f"{fastschema.digest_files(*sorted(Path(__file__).parent.glob('*.py')))} yaml {yaml.__version__}"


def resolve_schema_dir(cli_dir: str | None) -> Path | None:
    """--schemas DIR, else $CPAAS_SCHEMAS, else ../shared/schemas next to the repo, else the cache.

    Explicit choices (argument, environment) are returned even if missing, so a typo shows up as
    every family being skipped instead of silently falling through to another folder.
    """
    if cli_dir:
        return Path(cli_dir).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    shared = REPO_ROOT.parent / "shared" / "schemas"
    if shared.is_dir():
        return shared
    cache = default_cache_dir()
    if (cache / "MANIFEST.md").is_file():
        return cache
    return None


@dataclass(frozen=True, order=True)
class Violation:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


# ---------------------------------------------------------------------------------------------
# Error formatting
# ---------------------------------------------------------------------------------------------


def path_text(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def clipped(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _leaves(error: ValidationError) -> list[ValidationError]:
    """For oneOf/anyOf, the errors of the branch that was meant instead of "not valid under any".

    Branches failing a `const` on the object itself (AS3/DO `"class": {"const": ...}`, a
    discriminator) were not meant; among the rest, the branch holding the deepest error wins
    (as in jsonschema's best_match), and all of that branch's errors are reported.
    """
    if not error.context:
        return [error]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    meant = [
        sub
        for subs in branches.values()
        if not any(e.validator == "const" and len(e.relative_path) <= 1 for e in subs)
        for sub in subs
    ]
    chosen = min(meant or error.context, key=relevance)
    return [leaf for sub in branches[chosen.relative_schema_path[0]] for leaf in _leaves(sub)]


def violations(validator: JsonValidator, instance: Any, file: str) -> list[Violation]:
    found: set[Violation] = set()
    try:
        for error in validator.iter_errors(instance):
            for leaf in _leaves(error):
                found.add(Violation(file, path_text(leaf.absolute_path), clipped(leaf.message)))
    except Unresolvable as exc:
        found.add(Violation(file, "(root)", f"unresolvable $ref {exc} (remote references are never fetched)"))
    return sorted(found)


# ---------------------------------------------------------------------------------------------
# Schemas compiled once per process
# ---------------------------------------------------------------------------------------------


class Schema:
    """One schema twice: `fast` (jsonschema-rs) decides, the jsonschema validator from `explain`
    (built at the first rejection) gives the violations. `fast` is None where jsonschema-rs could not
    compile the schema (`slow_reason`); jsonschema then decides alone."""

    def __init__(
        self,
        name: str,
        fast: jsonschema_rs.Validator | str,
        explain: Callable[[], JsonValidator],
        first_error_only: bool = False,
    ) -> None:
        self.name = name
        self.fast = None if isinstance(fast, str) else fast
        self.slow_reason = fast if isinstance(fast, str) else None
        self._explain = explain
        self._validator: JsonValidator | None = None
        self.first_error_only = first_error_only

    def report(self, instance: Any, file: str) -> list[Violation]:
        if self._validator is None:
            self._validator = self._explain()
        if not self.first_error_only:
            return violations(self._validator, instance, file)
        # kubernetes_validate.validate() raises the first error of iter_errors(), as validate() does.
        error = next(iter(self._validator.iter_errors(instance)), None)
        return [] if error is None else [Violation(file, path_text(error.path), clipped(error.message))]


def compile_json(
    draft: str, path: Path, resources: fastschema.Resources, checker: FormatChecker
) -> jsonschema_rs.Validator | str:
    """The JSON schema file `path` compiled (prepared from the disk cache when it can be), or why not."""
    key = "\0".join(("json", *map(str, fastschema.file_key(path)), CODE))
    try:
        prepared = fastschema.cached(key, lambda: fastschema.prepare(fastschema.load_json(path)))
    except fastschema.NotPreparedError as exc:
        return str(exc)
    if isinstance(prepared, str):  # never cached for a JSON file: prepare() returns or raises
        return prepared
    return fastschema.compile_fast(draft, prepared, resources, checker)


class Checks:
    """The state and the check every family shares; see Validator for what the fields mean."""

    def __init__(self, schema_dir: Path | None, reference: bool = False) -> None:
        self.schema_dir = Path(schema_dir) if schema_dir is not None else None
        self.reference = reference
        self.skipped: set[str] = set()
        self.checked: Counter[str] = Counter()
        self.notes: list[str] = []
        self.disagreements: list[str] = []
        self._noted: set[str] = set()

    def _check(self, schema: Schema, instance: Any, file: str) -> list[Violation]:
        if self.reference:
            return schema.report(instance, file)
        if schema.fast is None:
            self._note(f"{schema.name}: checked by jsonschema only ({schema.slow_reason})")
            return schema.report(instance, file)
        if not fastschema.plain_json(instance):
            return schema.report(instance, file)
        if schema.fast.is_valid(instance):
            return []
        found = schema.report(instance, file)
        if not found:
            self.disagreements.append(f"{file}: jsonschema-rs rejects, jsonschema accepts ({schema.name})")
        return found

    def _note(self, note: str) -> None:
        if note not in self._noted:
            self._noted.add(note)
            self.notes.append(note)
