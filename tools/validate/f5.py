"""F5 declarations: AS3 and DO against F5's schemas, with F5's custom formats."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, FormatChecker
from jsonschema.protocols import Validator as JsonValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tools import fastschema
from tools.validate.core import Checks, Schema, Violation, compile_json


def _ip_parts(text: str, route_domain: bool, prefix: str) -> bool:
    """IPv4/IPv6 with an optional %route-domain and a prefix that is "optional", "required" or "none"."""
    addr, slash, length = text.partition("/")
    if slash and (prefix == "none" or not length.isdigit() or length != str(int(length))):
        return False
    if not slash and prefix == "required":
        return False
    addr, percent, rd = addr.partition("%")
    if percent and (not route_domain or not rd.isdigit() or int(rd) > 65535 or rd != str(int(rd))):
        return False
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return not slash or int(length) <= ip.max_prefixlen


def _not_string_or(check: Callable[[str], bool]) -> Callable[[object], bool]:
    return lambda value: not isinstance(value, str) or check(value)


_F5_BIGIP = re.compile(r"^/[^\x00-\x1f\x7f\"#'*<>?\[\\\]{|}]+$")
_F5_NAME = r"[A-Za-z][0-9A-Za-z_]{0,63}"
_F5_POINTER = re.compile(rf"^(?:@|\d+|(?:\d*/)?(?:(?:@|\d+|{_F5_NAME})/)*(?:\d+|{_F5_NAME}))?#?$")
_F5_LABEL = re.compile(r"^[^\x00-\x1f\x7f\"#&*<>?\[\\\]`]{0,64}$")
_F5_REMARK = re.compile(r"^[^\x00-\x1f\x7f\"\\]{0,64}$")
_F5_BASE64 = re.compile(r"^(?:[0-9A-Za-z+/_-]*|[0-9A-Za-z+/_-]+={1,2})$")


def f5_format_checker() -> FormatChecker:
    """Draft-7 formats plus F5's custom ones, re-implemented from their documented behaviour.

    Ref: https://github.com/F5Networks/f5-appsvcs-extension/blob/v3.56.0/src/lib/adcParserFormats.js
    Ref: https://github.com/F5Networks/f5-declarative-onboarding/blob/v1.45.0/src/schema/latest/formats.js
      f5ip / f5ipv4 / f5ipv6  "" or an address with optional %route-domain (0-65535) and /prefix
      ipWithOptionalPrefix    "" or an address with optional /prefix, no route domain
      ipWithRequiredPrefix    "" or an address with /prefix, no route domain
      f5bigip                 absolute BIG-IP path "/Partition/name": no control chars, quotes, #*<>?[\\]{|}
      f5pointer               AS3 pointer: "", "@", digits, or N/-relative or /-absolute name paths, then "#"?
      f5label                 0-64 chars, no control chars and none of "#&*<>?[\\]`
      f5remark                0-64 chars, no control chars, double quote or backslash
      f5base64                base64 / base64url alphabet with optional "=" / "==" padding
    """
    checker = FormatChecker(formats=())
    checker.checkers.update(Draft7Validator.FORMAT_CHECKER.checkers)

    def ip(route_domain: bool, prefix: str, version: int | None = None) -> Callable[[str], bool]:
        def check(text: str) -> bool:
            if text == "":
                return True
            if not _ip_parts(text, route_domain, prefix):
                return False
            bare = text.partition("/")[0].partition("%")[0]
            return version is None or ipaddress.ip_address(bare).version == version

        return check

    custom: dict[str, Callable[[str], bool]] = {
        "f5ip": ip(True, "optional"),
        "f5ipv4": ip(True, "optional", 4),
        "f5ipv6": ip(True, "optional", 6),
        "ipWithOptionalPrefix": ip(False, "optional"),
        "ipWithRequiredPrefix": ip(False, "required"),
        "f5bigip": lambda s: _F5_BIGIP.match(s) is not None,
        "f5pointer": lambda s: _F5_POINTER.match(s) is not None,
        "f5label": lambda s: _F5_LABEL.match(s) is not None,
        "f5remark": lambda s: _F5_REMARK.match(s) is not None,
        "f5base64": lambda s: _F5_BASE64.match(s) is not None,
    }
    for name, check in custom.items():
        checker.checks(name)(_not_string_or(check))
    return checker


def _compile_f5(family: str, entry: Path, others: list[Path]) -> Schema:
    checker = fastschema.memo(("f5-formats",), f5_format_checker)
    # DO files $ref each other by relative name; registering every file under its $id makes
    # those resolve locally. A registry without `retrieve` never fetches.
    resources: list[tuple[str, Resource[Any]]] = []
    for path in others:
        resource = Resource.from_contents(fastschema.load_json(path), default_specification=DRAFT7)
        uri = resource.id()
        if uri:
            resources.append((uri, resource))

    def explain() -> JsonValidator:
        registry: Registry[Any] = Registry().with_resources(resources)
        return Draft7Validator(fastschema.load_json(entry), registry=registry, format_checker=checker)

    registered = fastschema.register([(uri, r.contents) for uri, r in resources], "Draft7Validator")
    fast = compile_json("Draft7Validator", entry, registered, checker)
    return Schema(f"{family} schema {entry.name}", fast, explain)


class F5Checks(Checks):
    def as3(self, declaration: dict[str, Any], file: str) -> list[Violation]:
        schema = self._f5_schema("as3", "f5/as3-schema.json", ())
        if schema is None:
            return []
        return self._check(schema, declaration, file)

    def do(self, declaration: dict[str, Any], file: str) -> list[Violation]:
        schema = self._f5_schema("do", "f5/do/do.schema.json", ("f5/do/*.schema.json",))
        if schema is None:
            return []
        return self._check(schema, declaration, file)

    def _f5_schema(self, family: str, entry: str, others: tuple[str, ...]) -> Schema | None:
        if self.schema_dir is None or not (self.schema_dir / entry).is_file():
            self.skipped.add(family)
            return None
        self.checked[family] += 1
        entry_path = self.schema_dir / entry
        other_paths = [path for pattern in others for path in sorted(self.schema_dir.glob(pattern))]
        key = ("f5", family, *(fastschema.file_key(p) for p in (entry_path, *other_paths)))
        return fastschema.memo(key, lambda: _compile_f5(family, entry_path, other_paths))
