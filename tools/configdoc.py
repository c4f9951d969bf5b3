"""Write docs/config.md, the stack file reference, from the config models.

    python -m tools.configdoc            # (make docs) write docs/config.md
    python -m tools.configdoc --check    # exit 1 when docs/config.md is stale

One section per model, at the config path where it first appears: each key (the camelCase
alias), its type, default, description (the model's Field descriptions) and what it allows
(Literal values, bounds, patterns, and the docstrings of the constrained types' validators); then
the model's rules and, at the end, the stack-wide rules (their docstrings, components.config.rules).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import textwrap
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from components import config
from components.config import rules
from components.config.types import PATTERN_HINTS

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "config.md"
WIDTH = 110
_BASIC: dict[Any, str] = {str: "text", int: "integer", float: "number", bool: "true/false"}
_ADDRESSES: dict[Any, str] = {IPv4Address: "IPv4 address", IPv4Network: "IPv4 CIDR"}


@dataclass
class Shape:
    """A type in words: what it is and what it allows."""

    kind: str
    allowed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Section:
    model: type[config.Model]
    path: str  # where the model first appears, e.g. units[].mesh; "" for the stack itself
    tag: str = ""  # the discriminator value that selects it, e.g. "source: k3d"

    @property
    def title(self) -> str:
        where = f"`{self.path}`" if self.path else "The `cpaas:` keys"
        return f"{where} ({self.tag})" if self.tag else where

    @property
    def anchor(self) -> str:
        return slug(self.title)


# What GitHub drops from a heading's text to make its id (then each whitespace character is '-').
# Ref: Flet/github-slugger@b94b733063c5889f9ceaf4e2bc65bdbd0dbf1a37 index.js (specials, slugger)
_SPECIALS = re.compile(r"[\u2000-\u206F\u2E00-\u2E7F\\'!\"#$%&()*+,./:;<=>?@\[\]^`{|}~\u2019]")


def slug(heading: str) -> str:
    """The id GitHub gives a heading of this text (unique in the page: no heading repeats here)."""
    return re.sub(r"\s", "-", _SPECIALS.sub("", heading.lower().strip()))


def _sections() -> list[Section]:
    """Every model reachable from StackConfig, depth first in field order, each once."""
    found: dict[type[config.Model], Section] = {}

    def visit(section: Section) -> None:
        found[section.model] = section
        for name, info in section.model.model_fields.items():
            key = info.alias or name
            base = f"{section.path}.{key}" if section.path else key
            for model, tag, many in _models_in(info.annotation, info.discriminator):
                if model not in found:
                    visit(Section(model, f"{base}[]" if many else base, tag))

    visit(Section(config.StackConfig, ""))
    return list(found.values())


def _models_in(tp: Any, discriminator: Any, many: bool = False) -> Iterator[tuple[Any, str, bool]]:
    """(model, the tag that selects it, whether it sits in a list) for the models `tp` holds."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        info = next((m for m in tp.__metadata__ if isinstance(m, FieldInfo) and m.discriminator), None)
        yield from _models_in(args[0], info.discriminator if info else discriminator, many)
    elif origin in (Union, types.UnionType):
        for arg in args:
            yield from _models_in(arg, discriminator, many)
    elif origin is tuple or origin is Mapping:
        for arg in args:
            if arg is not Ellipsis:
                yield from _models_in(arg, None, True)
    elif inspect.isclass(tp) and issubclass(tp, BaseModel):
        tag = f"{discriminator}: {_tag(tp, discriminator)}" if isinstance(discriminator, str) else ""
        yield tp, tag, many


def _tag(model: type[BaseModel], discriminator: str) -> str:
    return str(get_args(model.model_fields[discriminator].annotation)[0])


def _constraints(metadata: list[Any], text: bool) -> list[str]:
    """Bounds, lengths, patterns and validator docstrings, in words."""
    out: list[str] = []
    low = high = None
    for item in metadata:
        if isinstance(item, FieldInfo):
            out += _constraints(list(item.metadata), text)
        elif isinstance(item, annotated_types.Ge | annotated_types.Gt):
            low = f"{item.ge}" if isinstance(item, annotated_types.Ge) else f"more than {item.gt}"
        elif isinstance(item, annotated_types.Le | annotated_types.Lt):
            high = f"{item.le}" if isinstance(item, annotated_types.Le) else f"less than {item.lt}"
        elif isinstance(item, annotated_types.MinLen | annotated_types.MaxLen):
            out.append(_length(item, text))
        elif getattr(item, "pattern", None):
            out.append(PATTERN_HINTS.get(item.pattern, f"text matching `{item.pattern}`"))
        elif _documented(getattr(item, "func", None)):
            out.append(_uncapitalised(" ".join(item.func.__doc__.split()).removesuffix(".")))
    if low is not None or high is not None:
        out.insert(0, f"{low}-{high}" if low and high else f"at least {low}" if low else f"at most {high}")
    return out


def _uncapitalised(text: str) -> str:
    """'A DNS-1123 label' as 'a DNS-1123 label', an acronym kept."""
    return text[0].lower() + text[1:] if text[1:2].islower() or text[1:2] == " " else text


def _length(item: Any, text: bool) -> str:
    unit = "characters" if text else "items"
    if isinstance(item, annotated_types.MinLen):
        return f"at least {item.min_length} {unit}"
    return f"at most {item.max_length} {unit}"


def _documented(func: Any) -> bool:
    """A validator of the config package that says what it accepts."""
    return inspect.isfunction(func) and func.__module__.startswith("components.config") and bool(func.__doc__)


def _merge_lengths(allowed: list[str]) -> list[str]:
    low = next((a for a in allowed if a.startswith("at least ") and a.endswith("characters")), None)
    high = next((a for a in allowed if a.startswith("at most ") and a.endswith("characters")), None)
    if low is None or high is None:
        return allowed
    merged = f"{low.split()[2]}-{high.split()[2]} characters"
    return [merged if a == low else a for a in allowed if a != high]


def describe(tp: Any, metadata: list[Any] | None = None, links: Mapping[Any, Section] | None = None) -> Shape:
    """`tp` (with a field's own `metadata`) in words."""
    links = links or {}
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return describe(args[0], [*tp.__metadata__, *(metadata or [])], links)
    shape = _describe_bare(tp, origin, args, links)
    shape.allowed = _merge_lengths(shape.allowed + _constraints(metadata or [], shape.kind == "text"))
    return shape


def _describe_bare(tp: Any, origin: Any, args: tuple[Any, ...], links: Mapping[Any, Section]) -> Shape:
    if origin is Literal:
        kind = _BASIC.get(type(args[0]), "text")
        return Shape(kind, ["one of " + ", ".join(f"`{a}`" for a in args)])
    if origin in (Union, types.UnionType):
        return _describe_union([a for a in args if a is not type(None)], links)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = describe(args[0], None, links)
        return Shape(f"list of {item.kind}", [f"each item: {a}" for a in item.allowed])
    if origin is tuple:
        items = [describe(a, None, links) for a in args]
        return Shape(f"[{', '.join(i.kind for i in items)}]", [f"each item: {a}" for a in items[0].allowed])
    if origin is Mapping:
        key, value = (describe(a, None, links) for a in args)
        allowed = [f"keys: {a}" for a in key.allowed] + [f"values: {a}" for a in value.allowed]
        return Shape(f"mapping of {key.kind} to {value.kind}", allowed)
    if inspect.isclass(tp) and issubclass(tp, BaseModel):
        section = links.get(tp)
        return Shape(f"[mapping](#{section.anchor})" if section else "mapping")
    return Shape(_BASIC.get(tp) or _ADDRESSES.get(tp) or str(getattr(tp, "__name__", tp)))


def _describe_union(options: list[Any], links: Mapping[Any, Section]) -> Shape:
    if len(options) == 1:
        return describe(options[0], None, links)
    sections = [s for s in (links.get(o) for o in options) if s]
    if len(sections) == len(options):
        key = sections[0].tag.partition(": ")[0]
        kinds = ", ".join(f"[{s.tag.partition(': ')[2]}](#{s.anchor})" for s in sections)
        return Shape(f"mapping by `{key}`: {kinds}")
    shapes = [describe(o, None, links) for o in options]
    return Shape(" or ".join(s.kind for s in shapes), [a for s in shapes for a in s.allowed])


def default_text(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    return f"default {_yaml(value)}"


def _yaml(value: Any) -> str:
    """A default as the stack file would write it."""
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "its keys' defaults"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple | list):
        return f"`[{', '.join(str(v) for v in value)}]`"
    if isinstance(value, Mapping):
        return "`{}`" if not value else f"`{dict(value)}`"
    return f"`{value}`"


def _summary(rule: Any) -> str:
    return " ".join((rule.__doc__ or "").split())


def _wrapped(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(
        text, WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    )


def _field_lines(name: str, info: FieldInfo, links: Mapping[Any, Section]) -> list[str]:
    shape = describe(info.annotation, list(info.metadata), links)
    text = f"- `{info.alias or name}`: {shape.kind}, {default_text(info)}. {info.description}"
    if shape.allowed:
        text += f" Allowed: {'; '.join(shape.allowed)}."
    return _wrapped(text)


def _section_lines(section: Section, links: Mapping[Any, Section]) -> list[str]:
    model = section.model
    lines = [f"## {section.title}", ""]
    lines += [*_paragraphs(inspect.cleandoc(model.__doc__ or "")), ""]
    for name, info in model.model_fields.items():
        lines += _field_lines(name, info, links)
    checks = [*getattr(model, "checked_before", ()), *model.checked_by]
    if checks and model is not config.StackConfig:
        lines += ["", "Rules:", ""]
        lines += [line for rule in checks for line in _wrapped(f"- {_summary(rule)}")]
    return [*lines, ""]


def _paragraphs(text: str) -> list[str]:
    """Prose re-wrapped to the page width; fenced blocks, tables and lists kept as written."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        keep = block.startswith(("```", "|", "- "))
        out += [*(block.splitlines() if keep else _wrapped(" ".join(block.split()), "")), ""]
    return out[:-1]


def render() -> str:
    """docs/config.md's text."""
    sections = _sections()
    links = {s.model: s for s in sections}
    lines = [
        "# Stack file reference",
        "",
        "<!-- Generated by `make docs` (tools/configdoc.py) from components/config/: edit the",
        "     models' descriptions and docstrings, not this file. tests/test_configdoc.py fails when it",
        "     is stale. -->",
        "",
        *_paragraphs(inspect.cleandoc(config.__doc__ or "")),
        "",
        "## Contents",
        "",
        *(f"- [{s.title}](#{s.anchor})" for s in sections),
        f"- [Cross-field rules](#{slug('Cross-field rules')})",
        "",
    ]
    for section in sections:
        lines += _section_lines(section, links)
    lines += ["## Cross-field rules", ""]
    lines += _paragraphs(
        "Checked once every key parses, over the whole stack; an error names every problem they find, "
        "one line each, with paths from the stack's root."
    )
    lines += [""] + [line for rule in rules.STACK_RULES for line in _wrapped(f"- {_summary(rule)}")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.configdoc", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/config.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is stale; run make docs", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
