"""Validation errors as lines a user can act on: `cpaas:<path>: <value, what is allowed, the fix>`.

`format_validation_error` turns each pydantic error into such a line, in cpaas's words (never
pydantic's); the cross-field rules' Problems arrive inside one pydantic error each and become one
line per problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Network
from typing import Any

from pydantic import ValidationError

from components.config import rules
from components.config.types import PATTERN_HINTS

CONFIG_NAMESPACE = "cpaas"
# Where a user looks up a key; error messages point there.
REFERENCE = "docs/config.md"


class ConfigError(Exception):
    """A stack config that cannot be used; `lines` are 'cpaas:<path>: <value and message>'."""

    def __init__(self, lines: list[str], partial: bool = False):
        super().__init__("\n".join(lines))
        self.lines = lines
        # The stack-wide cross-field rules did not run: they need every field to parse.
        self.partial = partial


# Discriminated unions put the tag in the error location; drop it where it follows the union field.
_UNION_FIELDS = {
    "root": "generated, imported",
    "cluster": "k3d, kubeconfig, stackReference",
    "cni": "calico-bgp, cloud-native",
}


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _loc_path(loc: Iterable[Any]) -> str:
    parts: list[str | int] = []
    previous: Any = None
    for part in loc:
        tagged = isinstance(part, str) and previous in _UNION_FIELDS and part != previous
        internal = isinstance(part, str) and (part.startswith("function-") or part == "[key]")
        if not tagged and not internal:
            # A key the user wrote oddly (spaces, newlines) is quoted so the line stays one line.
            odd = isinstance(part, str) and not _PLAIN_KEY.fullmatch(part)
            long = isinstance(part, str) and len(part) > 60
            parts.append(json.dumps(part[:60] + "..." if long else part) if odd or long else part)
        previous = part
    return rules.path(*parts) if parts else ""


def shown(value: Any) -> str:
    """A config value for a message, as the stack file writes it; long text cut to 60
    characters with its size (a pasted 5 MB value is not echoed back)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    if len(text) <= 100:
        return text
    size = len(value) if isinstance(value, str) else len(text)
    return f"{text[:60]}... ({f'{size / 1e6:.1f} MB' if size >= 1_000_000 else f'{size} characters'})"


_RANGES = {
    "asn": "an ASN is 1-4294967295 (private: 64512-65534 or 4200000000-4294967294)",
    "port": "ports are 1-65535",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "below the minimum {}; use {} or more"),
    "greater_than": ("gt", "not above {}; use more than {}"),
    "less_than_equal": ("le", "above the maximum {}; use {} or less"),
    "less_than": ("lt", "not below {}; use less than {}"),
}
_LIST = "is not a list; write a YAML list, e.g. [a, b] or one '- item' per line"
_MAPPING = f"is not a mapping; write its keys below it (see {REFERENCE})"
_WHOLE = "is not a whole number; write digits without quotes, e.g. 443"
_NUMBER = "is not a number; write digits without quotes, e.g. 1.5"
# Pydantic's error types, in words: what is allowed and the fix ({v}: the value, then ctx keys).
_PHRASES = {
    "string_type": "is not text; write it as a string (in quotes if YAML reads it otherwise)",
    "string_unicode": "is not valid text; write it as a string",
    "int_type": _WHOLE,
    "int_parsing": _WHOLE,
    "int_from_float": _WHOLE,
    "bool_type": "is not true or false; write true or false without quotes",
    "bool_parsing": "is not true or false; write true or false without quotes",
    "float_type": _NUMBER,
    "float_parsing": _NUMBER,
    "finite_number": "is not a finite number; write digits, e.g. 1.5",
    "tuple_type": _LIST,
    "list_type": _LIST,
    "set_type": _LIST,
    "frozen_set_type": _LIST,
    "iterable_type": _LIST,
    "model_type": _MAPPING,
    "model_attributes_type": _MAPPING,
    "dict_type": _MAPPING,
    "mapping_type": _MAPPING,
    "literal_error": "is not allowed; use {expected}",
    "string_too_short": "is too short; write at least {min_length} character(s)",
    "string_too_long": "is too long; write at most {max_length} characters",
    "too_short": "has too few items; give at least {min_length}",
    "too_long": "has too many items; give at most {max_length}",
    "ip_v4_address": "is not an IPv4 address; write four numbers 0-255 joined by '.', e.g. 10.0.0.1",
}


def _describe_tag(err: Mapping[str, Any], field: str) -> str:
    ctx = err.get("ctx", {})
    kinds = _UNION_FIELDS.get(field, "the documented kinds")
    if err["type"] == "union_tag_invalid":
        return f"{shown(ctx.get('tag'))} is not a known kind; use one of {kinds}"
    key = str(ctx.get("discriminator", "")).strip("'")
    return f"required key {key} is missing; use one of {kinds}"


def _describe_bound(err: Mapping[str, Any], field: str) -> str:
    value = shown(err.get("input"))
    for key, text in _RANGES.items():
        if field.endswith(key):
            return f"{value} is out of range; {text}"
    name, phrase = _BOUNDS[err["type"]]
    bound = err.get("ctx", {}).get(name)
    return f"{value} is {phrase.format(bound, bound)}"


def _describe_network(value: Any) -> str:
    if isinstance(value, str):
        try:
            fixed = IPv4Network(value, strict=False)
        except ValueError:
            pass
        else:
            return f"{value} has host bits set; use {fixed}"
    return f"{shown(value)} is not an IPv4 CIDR; use e.g. 10.42.0.0/16 (prefix 0-32)"


def explain(err: Mapping[str, Any], path: str = "") -> str:
    """One pydantic error as what is wrong, what is allowed and the fix (never pydantic's words)."""
    kind = err["type"]
    value = err.get("input")
    field = path.rsplit(".", 1)[-1].lower()
    if kind == "extra_forbidden":
        return f"unknown key; remove it or check its spelling against {REFERENCE}"
    if kind == "missing":
        return "required key is missing; add it"
    if kind.startswith("union_tag_"):
        return _describe_tag(err, field)
    if kind in ("value_error", "assertion_error"):
        return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == rules.RULE_ERROR:
        return "\n".join(problem.message for problem in err["ctx"]["problems"])
    if kind == "ip_v4_network":
        return _describe_network(value)
    if kind in _BOUNDS:
        return _describe_bound(err, field)
    if kind == "string_pattern_mismatch":
        pattern = str(err.get("ctx", {}).get("pattern", ""))
        hint = PATTERN_HINTS.get(pattern, f"text matching {pattern}")
        return f"{shown(value)} is not allowed here; write {hint}"
    phrase = _PHRASES.get(kind, f"is not allowed here; see {REFERENCE} for this key")
    return f"{shown(value)} {phrase.format_map(dict(err.get('ctx') or {}))}"


def _line(where: str, message: str) -> str:
    return f"{CONFIG_NAMESPACE}:{where}: {message}" if where else f"{CONFIG_NAMESPACE}:{message}"


def format_validation_error(exc: ValidationError) -> list[str]:
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        where = _loc_path(err["loc"])
        if err["type"] == rules.RULE_ERROR:
            problems: tuple[rules.Problem, ...] = err["ctx"]["problems"]
            lines.extend(_line(problem.at(where), problem.message) for problem in problems)
            continue
        message = explain(err, where)
        value = err.get("input")
        if isinstance(value, str) and len(value) > 100:
            # Validators quote the value they refuse; a pasted blob is cut to its start and size.
            message = message.replace(repr(value), shown(value)).replace(value, shown(value))
        lines.append(_line(where, message))
    return lines
