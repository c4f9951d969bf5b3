"""The one reader of a stack's `cpaas:` config: the render, tools.replicate, __main__ and the
tests all go through `check`, so deploy and render refuse exactly the same things.

Both sources are first brought to what Pulumi hands a program (the "wire"): a flat mapping of
full keys (`cpaas:units`) to text, plus the set of keys whose values are secrets.

- At deploy, the Pulumi SDK holds that mapping (`wire_from_runtime`).
- For a stack file, `read_file` does what the Pulumi CLI does before it runs the program: read
  the YAML (duplicate keys refused, as yaml.v3 does; YAML 1.2 scalars as yaml.v3 resolves them,
  so `yes` is text, not true), parse the keys, and turn each value into text: strings stay as
  they are, everything else becomes JSON with Go's number formatting.

`check(wire, stack)` then decodes the structured keys, validates them with the models, and
checks every other `cpaas:` key against the secret and certificate keys the stack names. It
reports every problem of the stack at once, each on one line that names the key and the fix.

    python -m tools.stackfile --stack prod --new-stack   # what a new backend stack needs
"""

from __future__ import annotations

import argparse
import base64
import binascii
import decimal
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components import config

NS = config.CONFIG_NAMESPACE
ROOT = Path(__file__).resolve().parent.parent
# A stack file is a few kB (16 units: 30-60 kB); anything near this is not one.
MAX_FILE_BYTES = 1 << 20
# Values after alias expansion, and nesting depth: a 16-unit stack has about 2600 and 7.
MAX_NODES = 100_000
MAX_DEPTH = 64
MAX_LINES = 100  # problems shown


class StackFileError(Exception):
    """A stack config that cannot be used: one line per problem.

    `partial`: the stack-wide cross-field rules did not run, because some fields do not parse.
    """

    def __init__(self, lines: list[str], partial: bool = False):
        self.total = len(lines)
        if len(lines) > MAX_LINES:  # a list of 100000 wrong items is not 100000 lines to read
            lines = [*lines[:MAX_LINES], f"... and {len(lines) - MAX_LINES} more like these"]
        super().__init__("\n".join(lines))
        self.lines = lines
        self.partial = partial

    def count(self) -> str:
        """'3 config error(s)', with what did not run yet."""
        later = " (the cross-field rules run once these are fixed)" if self.partial else ""
        return f"{self.total} config error(s){later}"


@dataclass(frozen=True)
class Wire:
    """What Pulumi hands the program: full key -> text, and the keys holding secrets.

    `problems`: lines about keys or values Pulumi itself would not pass (a key without a
    namespace, a NaN), found while reading a stack file.
    """

    values: Mapping[str, str]
    secure: frozenset[str] = frozenset()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Checked:
    """A stack that may be built: its model, and the deploy-time values present in the config."""

    stack: config.StackConfig
    values: Mapping[str, str] = field(default_factory=dict)  # certificate keys (bare) -> PEM text
    secrets: frozenset[str] = frozenset()  # secret keys (bare) that are set


# ---------------------------------------------------------------------------------------------
# Reading a stack file: bytes -> text -> YAML -> wire
# ---------------------------------------------------------------------------------------------


def read_text(path: Path) -> str:
    """The file's text: at most MAX_FILE_BYTES, UTF-8, else one line saying where it is not."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise StackFileError(
                [
                    f"{path.name}: {size / 1e6:.1f} MB; a stack file is at most "
                    f"{MAX_FILE_BYTES // (1 << 20)} MiB, check what was pasted into it"
                ]
            )
        data = path.read_bytes()
    except OSError as exc:
        raise StackFileError([f"{path.name}: cannot read: {exc.strerror or exc}"]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise StackFileError(
            [
                f"{path.name}: line {line}, byte {exc.start}: 0x{data[exc.start]:02x} is not UTF-8; "
                "save the file as UTF-8"
            ]
        ) from None


# Ref: go-yaml/yaml@v3.0.1 resolve.go (resolve, resolveMapList): how yaml.v3, the Pulumi CLI's
# YAML library, reads plain scalars. YAML 1.1's yes/no/on/off and sexagesimal numbers are text.
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_WORDS = {
    **dict.fromkeys(("true", "True", "TRUE", "false", "False", "FALSE"), "tag:yaml.org,2002:bool"),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), "tag:yaml.org,2002:null"),
    **dict.fromkeys((".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF"), _FLOAT),
    **dict.fromkeys(("+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF"), _FLOAT),
    "<<": "tag:yaml.org,2002:merge",
}
# Go's strconv.ParseInt/ParseUint with base 0 (after yaml.v3 drops every '_').
_GO_INT = re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)")
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
# yaml.v3 reads these as timestamps, which Pulumi passes as Go's time text; kept as text here.
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?")


def _go_int(plain: str) -> int | None:
    match = _GO_INT.fullmatch(plain)
    if match is None:
        return None
    sign, body = match.groups()
    prefix = body[:2].lower()
    base = {"0x": 16, "0b": 2, "0o": 8}.get(prefix)
    digits = body[2:] if base else body
    if base is None:
        base = 8 if body.startswith("0") and len(body) > 1 else 10
    value = int(digits, base) * (-1 if sign == "-" else 1)
    if -(1 << 63) <= value < (1 << 63) or (not sign and 0 <= value < (1 << 64)):
        return value
    return None


def _go_float(text: str, pattern: re.Pattern[str]) -> float | None:
    if not pattern.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None  # Go's ParseFloat fails out of range


def _plain_scalar(text: str) -> tuple[str, Any]:
    """The tag and value yaml.v3 gives an unquoted scalar."""
    if text in _WORDS:
        return _WORDS[text], None
    head = text[0]
    if head == "." and (number := _go_float(text, _DOT_FLOAT)) is not None:
        return _FLOAT, number
    if head in "+-0123456789" and not _TIMESTAMP.fullmatch(text):
        plain = text.replace("_", "")
        if (integer := _go_int(plain)) is not None:
            return _INT, integer
        if (number := _go_float(plain, _YAML_FLOAT)) is not None:
            return _FLOAT, number
    return _STR, text


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loading, scalars as yaml.v3 reads them, and every duplicate key recorded."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return _plain_scalar(value)[0]
        return super().resolve(kind, value, implicit)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        value = _go_int(str(node.value).replace("_", ""))
        if value is None:
            raise yaml.constructor.ConstructorError(None, None, f"{node.value!r} is not an integer")
        return value

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        text = str(node.value)
        if text in _WORDS:
            return float(text.replace(".", "").lower().replace("+", ""))  # nan, inf, -inf
        tag, value = _plain_scalar(text)
        if tag not in (_FLOAT, _INT):
            raise yaml.constructor.ConstructorError(None, None, f"{text!r} is not a number")
        return float(value)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        # Ref: go-yaml/yaml@v3.0.1 decode.go (decoder.mapping): keys are duplicates when their
        # scalar text is equal; yaml.v3 refuses them, and so does the Pulumi CLI.
        seen: dict[str, int] = {}
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode):
                line = key.start_mark.line + 1
                if key.value in seen:
                    self.duplicates.append(
                        f"line {line}: key {config.shown(key.value)} is already defined at line "
                        f"{seen[key.value]}; Pulumi refuses duplicate keys, keep one"
                    )
                seen.setdefault(key.value, line)
        return super().construct_mapping(node, deep)


_Loader.add_constructor(_INT, _Loader.construct_yaml_int)
_Loader.add_constructor(_FLOAT, _Loader.construct_yaml_float)


def _line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 0


def _expansion(text: str, name: str) -> None:
    """Refuse, before composing anything, nesting past MAX_DEPTH and aliases expanding past
    MAX_NODES values (a few hundred bytes can otherwise stand for billions)."""
    loader = _Loader(text)
    sizes: dict[str, int] = {}
    open_: list[tuple[str | None, int]] = []
    count = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.AliasEvent):
                count += sizes.get(event.anchor or "", 1)
            elif isinstance(event, yaml.ScalarEvent):
                count += 1
                if event.anchor:
                    sizes[event.anchor] = 1
            elif isinstance(event, yaml.CollectionStartEvent):
                count += 1
                open_.append((event.anchor, count))
                if len(open_) > MAX_DEPTH:
                    raise StackFileError(
                        [
                            f"{name}: line {_line(event)}: nested deeper than {MAX_DEPTH} "
                            "levels; a stack file needs about 10"
                        ]
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, started = open_.pop()
                if anchor:
                    sizes[anchor] = count - started + 1
            if count > MAX_NODES:
                raise StackFileError(
                    [
                        f"{name}: line {_line(event)}: the document expands to more than "
                        f"{MAX_NODES} values (aliases of aliases?); write the values out"
                    ]
                )
    finally:
        loader.dispose()


def load_yaml(text: str, name: str) -> Any:
    """The YAML document in `text`, read as the Pulumi CLI reads it; StackFileError otherwise."""
    try:
        _expansion(text, name)
        loader = _Loader(text)
        try:
            doc = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        # One line: YAML errors span several with a caret drawing.
        raise StackFileError([f"{name}: cannot read: {' '.join(str(exc).split())}"]) from None
    if loader.duplicates:
        raise StackFileError([f"{name}: {line}" for line in loader.duplicates])
    return doc


def _go_key(key: Any) -> str:
    # Ref: pulumi/pulumi@1b59498 sdk/go/common/resource/config/object.go (unmarshalObject):
    # non-text keys become fmt's %v of them.
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "<nil>"
    return str(_number(key)) if isinstance(key, float) else str(key)


def _number(value: float) -> float | int:
    # Go's JSON writes an integral float below 1e21 without a fraction (shortest digits), so
    # the program reads an int; it sorts map keys and refuses NaN and infinities.
    # Ref: golang/go@02196d36 src/encoding/json/encode.go (floatEncoder, mapEncoder).
    if value.is_integer() and abs(value) < 1e21:
        return int(decimal.Decimal(repr(value)))
    return value


class _UnpassableError(ValueError):
    """A value Pulumi cannot hand the program (JSON has no NaN; no dates, bytes, sets)."""


def _as_json(value: Any, where: str) -> Any:
    if isinstance(value, Mapping):
        return {_go_key(k): _as_json(v, f"{where}.{_go_key(k)}") for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _UnpassableError(f"{where}: {value} is not a number JSON can carry; write a number")
        return _number(value)
    if value is None or isinstance(value, str | int | bool):
        return value
    raise _UnpassableError(f"{where}: {config.shown(value)} is not text, a number or true/false; quote it")


def wire_text(value: Any, where: str) -> str:
    """A stack file value as the program receives it (raises _UnpassableError)."""
    if isinstance(value, str):
        return value
    return json.dumps(_as_json(value, where), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _parse_key(key: Any) -> str | None:
    # Ref: pulumi/pulumi@1b59498 sdk/go/common/resource/config/key.go (ParseKey):
    # <namespace>:<name>, or the old <namespace>:config:<name>.
    text = str(key)
    parts = text.split(":")
    if len(parts) == 1:
        # The CLI puts a key without a namespace in the project's (stackConfigNamespacedWithProject).
        # Ref: pulumi/pulumi@1b59498 sdk/go/common/workspace/loaders.go
        return f"{NS}:{text}"
    if len(parts) == 2:
        return text
    if len(parts) == 3 and parts[1] == "config":
        return f"{parts[0]}:{parts[2]}"
    return None


def _secure(value: Any) -> str | None:
    # Ref: pulumi/pulumi@1b59498 sdk/go/common/resource/config/object.go (isSecureValue).
    if isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get("secure"), str):
        return str(value["secure"])
    return None


def _holds_secure(value: Any) -> bool:
    # A key is secure when any value inside it is (object.go, Secure()).
    if _secure(value) is not None:
        return True
    if isinstance(value, Mapping):
        return any(_holds_secure(v) for v in value.values())
    return isinstance(value, list) and any(_holds_secure(v) for v in value)


def _wire_value(value: Any, key: str) -> tuple[str, bool]:
    """(what the program receives, whether the key is secure); raises _UnpassableError."""
    ciphertext = _secure(value)
    if ciphertext is not None:
        return ciphertext, True
    if _holds_secure(value):
        # The CLI decrypts the values inside before the program sees them; offline there is
        # no plaintext, and check() refuses a secret structured key anyway.
        return "", True
    # A key with no value reaches the program as "" (loaders.go, checkForEmptyConfig).
    return ("" if value is None else wire_text(value, key)), False


def wire_from_document(doc: Any, name: str) -> Wire:
    """A stack file's document (see load_yaml) as the program would receive its config."""
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise StackFileError([f"{name}: a stack file is a mapping with a 'config' key"])
    entries = doc.get("config") or {}
    if not isinstance(entries, Mapping):
        raise StackFileError([f"{name}: 'config' must be a mapping"])
    values: dict[str, str] = {}
    secure: set[str] = set()
    problems: list[str] = []
    for raw_key, value in entries.items():
        key = _parse_key(raw_key)
        if key is None:
            problems.append(
                f"{_named(str(raw_key))}: not a config key; Pulumi needs <namespace>:<name>, "
                f"e.g. {NS}:{_named(str(raw_key).rsplit(':', 1)[-1])}"
            )
            continue
        if key in values:
            problems.append(f"{key}: set twice (as {raw_key} too); keep one")
            continue
        try:
            values[key], is_secure = _wire_value(value, key)
        except _UnpassableError as exc:
            problems.append(str(exc))
            continue
        if is_secure:
            secure.add(key)
    return Wire(values, frozenset(secure), tuple(problems))


def read_file(path: Path) -> Wire:
    """The config of stack file `path` as the program would receive it."""
    return wire_from_document(load_yaml(read_text(path), path.name), path.name)


def document(path: Path) -> tuple[str, Any]:
    """The text and YAML document of `path` (for tools that edit the file)."""
    text = read_text(path)
    return text, load_yaml(text, path.name)


def document_raw(doc: Any) -> dict[str, Any]:
    """The structured `cpaas:` keys of a document, prefix stripped, in document order, with
    values as the program receives them (JSON-decoded; key order aside, what `check` sees)."""
    entries = doc.get("config") if isinstance(doc, Mapping) else None
    out: dict[str, Any] = {}
    for raw_key, value in (entries or {}).items():
        key = _parse_key(raw_key)
        namespace, _, name = (key or "").partition(":")
        if namespace == NS and name in config.config_keys() and _secure(value) is None:
            out[name] = _as_json(value, str(key)) if not isinstance(value, str) else _decode(value)
    return out


def raw_config(path: Path) -> dict[str, Any]:
    """The structured `cpaas:` keys of stack file `path` (see document_raw); not checked."""
    return document_raw(document(path)[1])


def wire_from_runtime() -> Wire:
    """The config the Pulumi SDK holds for this program (set by the language host from
    PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS)."""
    # Ref: pulumi/pulumi@1b59498 sdk/python/cmd/pulumi-language-python-exec (set_all_config).
    from pulumi.runtime import config as runtime

    keys = set(runtime.CONFIG.get()) | set(runtime.get_config_env())
    values = {k: str(v) for k in keys if (v := runtime.get_config(k)) is not None}
    secret = set(runtime.get_config_secret_keys_env()) | {k for k in values if runtime.is_config_secret(k)}
    return Wire(values, frozenset(secret & set(values)))


# ---------------------------------------------------------------------------------------------
# The one check
# ---------------------------------------------------------------------------------------------


def _decode(text: str) -> Any:
    # Structured values arrive as JSON text; scalars (e.g. environment) as plain strings.
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def _named(key: str) -> str:
    """A key for a message: as it is, or quoted and cut when odd or long."""
    return key if len(key) <= 100 and key.isprintable() and " " not in key else config.shown(key)


def _distance(a: str, b: str) -> int:
    """Edit distance with adjacent transpositions."""
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            best = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, rows[-2][j - 2] + 1)
            row.append(best)
        rows.append(row)
    return rows[-1][-1]


def _misspelt_namespace(namespace: str) -> bool:
    return namespace != NS and len(namespace) <= len(NS) + 2 and _distance(namespace.lower(), NS) <= 2


def _set_command(key: str, stack: str, secret: bool, kubeconfig: bool = False) -> str:
    flag = " --secret" if secret else ""
    stdin = " < kubeconfig" if kubeconfig else "" if secret else " < cert.pem"
    return f"pulumi config set{flag} -s {stack} {NS}:{key}{stdin}"


def _unknown(key: str, known: Iterable[str], stack: str) -> str:
    close = {k for k in known if abs(len(k) - len(key)) <= 2}  # and never a 5 MB key's distance
    near = sorted((d, k) for k in close if (d := _distance(key, k)) <= 2)
    fix = f"did you mean {NS}:{near[0][1]}?" if near else f"remove it: pulumi config rm -s {stack} {NS}:{key}"
    return (
        f"{NS}:{_named(key)}: unknown config key; nothing in the stack refers to it (it reads "
        f"{', '.join(config.config_keys())} and the keys its *Secret and *Key fields name); {fix}"
    )


def _key_problem(
    key: str, text: str, secure: bool, names: tuple[set[str], set[str], set[str]], stack: str
) -> str | None:
    secrets, certificates, kubeconfigs = names
    if key in secrets:
        if secure:
            return None
        return (
            f"{NS}:{key}: a secret given as plain text; set it encrypted: "
            f"{_set_command(key, stack, True, key in kubeconfigs)}"
        )
    if key in certificates:
        if secure:
            return (
                f"{NS}:{key}: a certificate set as a secret; it is public and goes into a file and "
                f"a ConfigMap as it is, set it without --secret: {_set_command(key, stack, False)}"
            )
        problem = pem_problem(text)
        if problem is None:
            return None
        return f"{NS}:{key}: {config.shown(text)} {problem}: {_set_command(key, stack, False)}"
    return _unknown(key, [*config.config_keys(), *secrets, *certificates], stack)


_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def pem_problem(text: str) -> str | None:
    """Why `text` is not one or more PEM certificates (and nothing else in PEM), or None."""
    blocks = _PEM.findall(text)
    if not blocks:
        return "holds no PEM certificate (-----BEGIN CERTIFICATE-----); set it from the PEM file"
    other = sorted({kind for kind, _ in blocks} - {"CERTIFICATE"})
    if other:
        return (
            f"holds a {other[0]} block; this key takes certificates only (it is written out in plain "
            "text), set it from the certificate's PEM file"
        )
    for _, body in blocks:
        try:
            der = base64.b64decode("".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            der = b""
        if not der.startswith(b"\x30"):
            return "holds a CERTIFICATE block that is not base64 DER; set it from the PEM file as it is"
    return None


def _namespaced(wire: Wire) -> tuple[list[str], dict[str, str], dict[str, tuple[str, bool]]]:
    lines = list(wire.problems)
    structured: dict[str, str] = {}
    others: dict[str, tuple[str, bool]] = {}
    for full in sorted(wire.values):
        namespace, _, key = full.partition(":")
        if namespace != NS:
            if _misspelt_namespace(namespace):
                lines.append(
                    f"{_named(full)}: namespace {_named(namespace)} is not {NS}, so nothing reads "
                    f"this key; write {NS}:{_named(key)}"
                )
            continue
        if key in config.config_keys():
            if full in wire.secure:
                lines.append(
                    f"{full}: a structured key cannot be a secret (nothing of it would show in reviews); "
                    f"set it in plain text and keep secrets in the keys its *Secret fields name"
                )
            elif wire.values[full] == "":
                lines.append(f"{full}: has no value; write its value below it, or remove the key")
            else:
                structured[key] = wire.values[full]
        else:
            others[key] = (wire.values[full], full in wire.secure)
    return lines, structured, others


def check(wire: Wire, stack: str) -> Checked:
    """The stack the config describes, or StackFileError with every problem, one line each."""
    lines, structured, others = _namespaced(wire)
    raw = {key: _decode(text) for key, text in structured.items()}
    model: config.StackConfig | None = None
    partial = False
    try:
        model = config.parse_stack(raw)
        names = (set(model.secret_keys()), set(model.plain_keys()), set(model.kubeconfig_keys()))
        model_lines: list[str] = []
    except config.ConfigError as exc:
        # The fields that name keys are read from the raw config, so key problems show now too.
        names = config.named_keys(raw)
        model_lines, partial = exc.lines, exc.partial
    for key, (text, secure) in sorted(others.items()):
        if (problem := _key_problem(key, text, secure, names, stack)) is not None:
            lines.append(problem)
    lines += model_lines
    if lines or model is None:
        raise StackFileError(lines, partial)
    values = {k: others[k][0] for k in model.plain_keys() if k in others}
    secrets = frozenset(k for k in model.secret_keys() if k in others)
    return Checked(model, values, secrets)


def read(path: Path, stack: str | None = None) -> Checked:
    """Read and check the stack file `path` (stack name: from the file name by default)."""
    name = stack or path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    return check(read_file(path), name)


def stack_path(stack: str, root: Path | None = None) -> Path:
    """Pulumi.<stack>.yaml under `root`; StackFileError naming the known stacks when missing."""
    root = root or ROOT
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml"))
        raise StackFileError([f"{path.name}: no such stack file; known stacks: {', '.join(known)}"])
    return path


# ---------------------------------------------------------------------------------------------
# CLI: what a stack needs before its first deploy
# ---------------------------------------------------------------------------------------------


def set_commands(stack: config.StackConfig, name: str) -> list[str]:
    """The `pulumi config set` commands for every deploy-time value `stack` names."""
    kubeconfigs = set(stack.kubeconfig_keys())
    return [
        *(_set_command(k, name, True, k in kubeconfigs) for k in stack.secret_keys()),
        *(_set_command(k, name, False) for k in stack.plain_keys()),
    ]


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.stackfile", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument(
        "--new-stack", action="store_true", help="say how to create the stack on a backend and what to set"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        checked = read(stack_path(args.stack), args.stack)
    except StackFileError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        print(f"stackfile: stack {args.stack} has {exc.count()}", file=sys.stderr)
        return 2
    commands = set_commands(checked.stack, args.stack)
    if args.new_stack:
        print(
            f"The backend has no stack {args.stack} (or you are not logged in: pulumi login). "
            f"Create it once, set what Pulumi.{args.stack}.yaml names, then run "
            f"make up STACK={args.stack} again:"
        )
        commands.insert(0, f"pulumi stack init {args.stack}")
    print("\n".join(f"  {c}" for c in commands) if commands else f"  stack {args.stack} needs no secrets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
