"""JSON Schema validators compiled once per process with jsonschema-rs, accepting what jsonschema accepts.

tools.validate decides with these and explains a rejection with the jsonschema validator of the same
schema, whose messages and paths it has always printed. For the two to accept the same values, the
parts where jsonschema-rs would judge differently are handed back to Python:

- `pattern`: jsonschema tests `re.search(pattern, value)` (Python regex); jsonschema-rs uses ECMA-262
  regex, which differs in `$`, `.`, `\\s`, `\\d`, `\\w` and case folding. Every `pattern` is renamed to
  a custom keyword that runs exactly jsonschema's test. `patternProperties` keep jsonschema-rs regex:
  each one in the pinned schemas (`^.*$` and anchored character classes; a test lists them) sits
  beside `additionalProperties: false` and matches no more keys in ECMA than in Python (`$` and `.`
  take less there), so jsonschema-rs can only reject more, and a rejection is re-checked by jsonschema.
- `format`: each format name in the schema is checked by the same FormatChecker the jsonschema
  validator gets (or not at all without one), never by jsonschema-rs's own format validators.

Nothing is fetched: every resource a schema refers to is registered up front; a schema whose `$ref`s
cannot all be resolved that way gets no compiled validator (compile_fast returns the reason).

Across processes, a prepared schema (the JSON text jsonschema-rs compiles, e.g. a CRD's schema
converted from its YAML) is kept in $CPAAS_SCHEMA_CACHE (default ~/.cache/cpaas/prepared; empty:
off) under a key naming everything it was made from (the source's content digest, or its path,
size and mtime, and a digest of the code that made it), so a new render skips the YAML.
Ref: jsonschema 4.26.0, jsonschema/_keywords.py (pattern: re.search; format: FormatChecker.check)
Ref: jsonschema-rs 0.61.2 (PyPI README: custom keywords, `formats`, `validate_formats`, `offline`)
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import jsonschema_rs
import orjson
from jsonschema import FormatChecker

T = TypeVar("T")
PATTERN_KEYWORD = "x-cpaas-python-pattern"
# Values compared as data: renaming a key inside them would change what they accept.
_DATA_KEYWORDS = frozenset({"enum", "const"})

CACHE_ENV = "CPAAS_SCHEMA_CACHE"
_MEMO: dict[Hashable, Any] = {}


def memo(key: Hashable, build: Callable[[], T]) -> T:
    """build() once per process for `key` (keys carry file size and mtime where files are read).

    The cyclic GC is paused while building: parsing and compiling allocate large acyclic trees,
    and each collection they trigger would walk everything the process holds (a render's
    resources) for nothing."""
    if key not in _MEMO:
        enabled = gc.isenabled()
        gc.disable()
        try:
            _MEMO[key] = build()
        finally:
            if enabled:
                gc.enable()
    value: T = _MEMO[key]
    return value


def clear() -> None:
    """Forget every compiled schema and parsed file (tests that count parses start from here)."""
    _MEMO.clear()


def digest_files(*paths: Path) -> str:
    """sha256 over the files' bytes: part of every disk cache key made by the code they hold."""
    hashed = hashlib.sha256()
    for path in (Path(__file__), *paths):
        hashed.update(path.read_bytes())
    return hashed.hexdigest()


def file_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


def read_json(path: Path) -> Any:
    raw = path.read_bytes()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # e.g. integers beyond 64 bits, which json accepts
        return json.loads(raw)


def load_json(path: Path) -> Any:
    """Parsed once per process and kept; callers must not mutate the result. Documents needed
    only once (to build a registry) are read with read_json and not kept: the cyclic GC walks
    whatever the process keeps, on every collection."""
    return memo(("json", *file_key(path)), lambda: read_json(path))


_SCALARS = frozenset({str, int, float, bool, type(None)})


def plain_json(node: Any) -> bool:
    """Only dicts with string keys, lists, strings, numbers, booleans and None. jsonschema-rs reads
    a tuple as an array (jsonschema does not) and refuses other keys and types, so anything else
    is left to jsonschema."""
    stack = [node]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            if not all(type(key) is str for key in item):
                return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind not in _SCALARS:
            return False
    return True


class _PythonPattern:
    """jsonschema's `pattern`: a string must contain a match of the Python regex."""

    def __init__(self, parent_schema: dict[str, Any], value: str, schema_path: list[str | int]) -> None:
        self.search = re.compile(value).search

    def validate(self, instance: Any) -> None:
        if isinstance(instance, str) and self.search(instance) is None:
            raise ValueError("does not match")


def python_patterns(node: Any, formats: set[str]) -> Any:
    """A copy of `node` with each string-valued `pattern` key renamed to PATTERN_KEYWORD; adds the
    `format` names it meets to `formats`. Every object is walked (schemas hide under unknown keys
    that a `$ref` may point into), except `enum` and `const` values. A property *named* `pattern`
    has a schema (object or boolean) as its value, never a string, so it is left alone."""
    if isinstance(node, list):
        return [python_patterns(item, formats) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DATA_KEYWORDS:
            out[key] = value
        elif key == "pattern" and isinstance(value, str):
            out[PATTERN_KEYWORD] = value
        else:
            if key == "format" and isinstance(value, str):
                formats.add(value)
            out[key] = python_patterns(value, formats)
    return out


class NotPreparedError(ValueError):
    """The schema holds something jsonschema-rs cannot be given as JSON text (the reason)."""


@dataclass(frozen=True)
class Prepared:
    """A schema as jsonschema-rs gets it: JSON text with each `pattern` renamed (python_patterns),
    the format names it uses, and remarks made while preparing it (e.g. dropped patterns)."""

    text: str
    formats: frozenset[str]
    notes: tuple[str, ...] = ()


def prepare(schema: Any, notes: Iterable[str] = ()) -> Prepared:
    formats: set[str] = set()
    fixed = python_patterns(schema, formats)
    try:
        text = orjson.dumps(fixed)
    except TypeError as exc:  # e.g. an integer beyond 64 bits
        raise NotPreparedError(str(exc)) from None
    # YAML can hold what JSON cannot (dates, non-string keys); such a schema stays in Python.
    if orjson.loads(text) != fixed:
        raise NotPreparedError("the schema holds values JSON cannot carry")
    return Prepared(text.decode(), frozenset(formats), tuple(notes))


def _cache_dir() -> Path | None:
    value = os.environ.get(CACHE_ENV)
    if value == "":
        return None
    return Path(value) if value else Path.home() / ".cache" / "cpaas" / "prepared"


def cached(key: str, produce: Callable[[], Prepared | str]) -> Prepared | str:
    """produce() unless the disk cache holds its result under `key`, which must name everything
    the result depends on (input digests, the code's digest). A str result (an error message for
    the caller) is cached too. Unreadable entries are remade; an unwritable cache is skipped."""
    folder = _cache_dir()
    if folder is None:
        return produce()
    path = folder / f"{hashlib.sha256(key.encode()).hexdigest()}.json"
    with contextlib.suppress(OSError, orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        entry = orjson.loads(path.read_bytes())
        if "error" in entry:
            return str(entry["error"])
        return Prepared(entry["text"], frozenset(entry["formats"]), tuple(entry["notes"]))
    result = produce()
    if isinstance(result, str):
        entry = {"error": result}
    else:
        entry = {"text": result.text, "formats": sorted(result.formats), "notes": list(result.notes)}
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(orjson.dumps(entry))
            os.replace(temporary, path)  # readers see the whole entry or none
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    return result


_RS_CLASS: dict[str, type[jsonschema_rs.Validator]] = {
    "Draft7Validator": jsonschema_rs.Draft7Validator,
    "Draft201909Validator": jsonschema_rs.Draft201909Validator,
    "Draft202012Validator": jsonschema_rs.Draft202012Validator,
}
_RS_DRAFT = {"Draft7Validator": jsonschema_rs.Draft7, "Draft202012Validator": jsonschema_rs.Draft202012}


@dataclass(frozen=True)
class Resources:
    """Documents a schema `$ref`s, converted and registered once, shareable by many schemas."""

    registry: jsonschema_rs.Registry | None
    formats: frozenset[str]


NO_RESOURCES = Resources(None, frozenset())


def register(resources: Iterable[tuple[str, Any]], draft: str = "Draft7Validator") -> Resources:
    """`resources` (URI, contents), whose own `$schema`-less documents follow `draft`."""
    formats: set[str] = set()
    converted = [(uri, python_patterns(contents, formats)) for uri, contents in resources]
    if not converted:
        return NO_RESOURCES
    return Resources(jsonschema_rs.Registry(converted, draft=_RS_DRAFT[draft]), frozenset(formats))


def compile_fast(
    draft: str, schema: Any, resources: Resources = NO_RESOURCES, checker: FormatChecker | None = None
) -> jsonschema_rs.Validator | str:
    """jsonschema-rs validator for `schema` (a Prepared one or a parsed one) under `draft` (named as
    jsonschema's validator class is), resolving `$ref`s only in `resources`; or why it could not
    be compiled."""
    formats = set(resources.formats)
    if isinstance(schema, Prepared):
        formats |= schema.formats
        fixed: Any = schema.text
    else:
        fixed = python_patterns(schema, formats)
    bridged: dict[str, Callable[..., bool]] | None = None
    if checker is not None:
        bridged = {name: partial(checker.conforms, format=name) for name in formats}
    try:
        return _RS_CLASS[draft](
            fixed,
            formats=bridged,
            validate_formats=checker is not None,
            registry=resources.registry,
            keywords={PATTERN_KEYWORD: _PythonPattern},
            offline=True,
        )
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError, re.error) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
