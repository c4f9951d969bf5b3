"""Custom resources: each checked against its CRD's served version, the structural schema
converted to JSON Schema (draft 7) and compiled once per process (and prepared on disk)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator
from jsonschema.protocols import Validator as JsonValidator

from tools import fastschema
from tools.validate.core import CODE, YAML_LOADER, Checks, Schema, Violation

# Family -> CRD files (globs, relative to the schema folder). calico/crds.yaml is not listed: it is a
# subset of operator-crds.yaml. Order matters only if two files define the same group/kind.
CRD_FAMILIES: dict[str, tuple[str, ...]] = {
    "calico-crds": ("calico/v3-crds/*.yaml", "calico/operator-crds.yaml"),
    "istio-crds": ("istio/crds.yaml",),
    "cis-crds": ("cis/crds.yaml",),
    "nginx-crds": ("nginx/crds.yaml",),
    "gateway-api-crds": ("gateway-api/crds.yaml",),
}
_GROUP_FAMILY: dict[str, str] = {
    "projectcalico.org": "calico-crds",
    "crd.projectcalico.org": "calico-crds",
    "operator.tigera.io": "calico-crds",
    "policy.networking.k8s.io": "calico-crds",
    "cis.f5.com": "cis-crds",
    "k8s.nginx.org": "nginx-crds",
    "externaldns.nginx.org": "nginx-crds",
    "gateway.networking.k8s.io": "gateway-api-crds",
}
OTHER_CRDS = "other-crds"


def family_of(group: str) -> str:
    if group in _GROUP_FAMILY:
        return _GROUP_FAMILY[group]
    if group.endswith(".istio.io"):
        return "istio-crds"
    return OTHER_CRDS


_DOC_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.MULTILINE)
_CRD_KIND = re.compile(r"^kind:[ \t]*CustomResourceDefinition[ \t]*$", re.MULTILINE)
_SPEC_INDENT = re.compile(r"^spec:[ \t]*\n(?:[ \t]*(?:#.*)?\n)*([ \t]+)\S", re.MULTILINE)


@dataclass
class CrdDoc:
    family: str
    file: Path
    text: str
    parsed: dict[str, Any] | None = field(default=None, repr=False)
    _digest: str = field(default="", repr=False)

    def load(self) -> dict[str, Any]:
        if self.parsed is None:
            self.digest()
            self.parsed = yaml.load(self.text, Loader=YAML_LOADER) or {}
            self.text = ""
        return self.parsed

    def digest(self) -> str:
        """sha256 of the document's text (the disk cache key of what is made from it)."""
        if not self._digest:
            self._digest = hashlib.sha256(self.text.encode()).hexdigest()
        return self._digest


def scan_group_kind(text: str) -> tuple[str, str] | None:
    """spec.group and spec.names.kind by regex, so a 3 MB file is indexed without parsing it."""
    spec = _SPEC_INDENT.search(text)
    if spec is None:
        return None
    ind = re.escape(spec.group(1))
    group = re.search(rf"^{ind}group:[ \t]*[\"']?([^\"'\s#]+)", text[spec.start() :], re.MULTILINE)
    kind = re.search(
        rf"^{ind}names:[ \t]*\n(?:{ind}[ \t]+.*\n)*?{ind}[ \t]+kind:[ \t]*[\"']?([^\"'\s#]+)",
        text[spec.start() :],
        re.MULTILINE,
    )
    if group is None or kind is None:
        return None
    return group.group(1), kind.group(1)


# ---------------------------------------------------------------------------------------------
# Kubernetes structural schema -> JSON Schema (draft 7)
# Ref: https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema
# ---------------------------------------------------------------------------------------------

_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_SINGLE = ("not", "additionalProperties", "items", "additionalItems")
# Go/RE2 allows flags after the anchor (`^(?i)...`); Python 3.11+ rejects that.
_GO_FLAGS = re.compile(r"^\^\(\?([imsU]+)\)")
_DROP = object()


def _python_pattern(pattern: str) -> str:
    match = _GO_FLAGS.match(pattern)
    if match is None:
        return pattern
    flags = match.group(1).replace("U", "")  # RE2 'U' (ungreedy) has no Python equivalent
    return f"(?{flags})^{pattern[match.end() :]}" if flags else "^" + pattern[match.end() :]


class _Converter:
    def __init__(self) -> None:
        self.dropped_patterns: list[str] = []

    def root(self, schema: dict[str, Any]) -> dict[str, Any]:
        out = self.node(schema, close=True)
        if schema.get("x-kubernetes-preserve-unknown-fields") is True:
            return out
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        # metadata is validated by the API server itself; CRDs may only constrain a few fields.
        metadata = props.get("metadata", {"type": "object"})
        props["metadata"] = {k: v for k, v in metadata.items() if k != "additionalProperties"}
        return out

    def node(self, schema: Any, close: bool) -> Any:
        if not isinstance(schema, dict):
            return schema
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key.startswith("x-kubernetes-") or key == "nullable":
                continue
            converted = self._keyword(key, value, close)
            if converted is not _DROP:
                out[key] = converted
        self._extensions(schema, out)
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
        is_object = out.get("type", "object") == "object"
        if close and is_object and "properties" in out and "additionalProperties" not in out and not preserve:
            # Unknown fields are rejected by strict field validation (kubectl's default).
            # Ref: https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation
            out["additionalProperties"] = False
        return out

    def _keyword(self, key: str, value: Any, close: bool) -> Any:
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            return {name: self.node(sub, close) for name, sub in value.items()}
        if key in _SCHEMA_LISTS and isinstance(value, list):
            # Junctor branches only add value checks; closing them would reject valid fields.
            return [self.node(sub, False) for sub in value]
        if key in _SCHEMA_SINGLE:
            if isinstance(value, list):
                return [self.node(sub, close) for sub in value]
            return self.node(value, close and key != "not")
        if key == "pattern" and isinstance(value, str):
            fixed = _python_pattern(value)
            try:
                re.compile(fixed)
            except re.error:
                self.dropped_patterns.append(value)
                return _DROP
            return fixed
        return value

    @staticmethod
    def _extensions(schema: dict[str, Any], out: dict[str, Any]) -> None:
        if schema.get("x-kubernetes-int-or-string") and not {"type", "anyOf", "oneOf"} & out.keys():
            out["type"] = ["integer", "string"]
        if schema.get("nullable"):
            if isinstance(out.get("type"), str):
                out["type"] = [out["type"], "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        if schema.get("x-kubernetes-embedded-resource"):
            props = out.setdefault("properties", {})
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            props["metadata"] = {"type": "object"}


def crd_schema(doc: CrdDoc, group: str, version: str, kind: str) -> tuple[dict[str, Any], list[str]] | str:
    """The served version's schema as JSON Schema, and notes on it; or why there is none."""
    missing = f"no CRD for {group}/{version}/{kind}"
    spec = doc.load().get("spec") or {}
    if spec.get("group") != group or (spec.get("names") or {}).get("kind") != kind:
        return f"{missing} (index mismatch in {doc.file.name})"
    served = {v.get("name"): v for v in spec.get("versions") or () if v.get("served", True)}
    if version not in served:
        return f"{missing} ({doc.file.name} serves {', '.join(sorted(served)) or 'no version'})"
    schema = (served[version].get("schema") or {}).get("openAPIV3Schema")
    if schema is None:  # apiextensions/v1beta1 layout
        schema = (spec.get("validation") or {}).get("openAPIV3Schema") or {}
    converter = _Converter()
    converted = converter.root(schema)
    notes = [
        f"{group}/{version}/{kind}: pattern {pattern!r} is not Python regex; unchecked"
        for pattern in converter.dropped_patterns
    ]
    return converted, notes


class CrdChecks(Checks):
    def __init__(self, schema_dir: Path | None, reference: bool = False) -> None:
        super().__init__(schema_dir, reference)
        self._crd_index: dict[tuple[str, str], CrdDoc] | None = None
        self._crd_index_key: tuple[Any, ...] = ()
        self._crd_validators: dict[tuple[str, str, str], Schema | str] = {}
        self._families: dict[str, bool] = {}

    def _custom(self, obj: dict[str, Any], group: str, version: str, kind: str, file: str) -> list[Violation]:
        doc = self._crd_docs().get((group, kind))
        family = doc.family if doc is not None else family_of(group)
        if not self._family_available(family):
            self.skipped.add(family)
            return []
        self.checked[family] += 1
        validator = self._crd_validator(group, version, kind)
        if isinstance(validator, str):
            return [Violation(file, "(root)", validator)]
        return self._check(validator, obj, file)

    def _family_available(self, family: str) -> bool:
        if family not in self._families:
            self._families[family] = self._has_family(family)
        return self._families[family]

    def _has_family(self, family: str) -> bool:
        if self.schema_dir is None:
            return False
        if family == OTHER_CRDS:
            return self.schema_dir.is_dir()  # unknown group with schemas present: a real error
        return any(any(self.schema_dir.glob(pattern)) for pattern in CRD_FAMILIES[family])

    def _crd_docs(self) -> dict[tuple[str, str], CrdDoc]:
        """Indexed once per process for the same CRD files (path, size, mtime)."""
        if self._crd_index is None:
            files = tuple(self._crd_files())
            self._crd_index_key = ("crd-index", *(fastschema.file_key(f) for _, f in files))
            self._crd_index = fastschema.memo(self._crd_index_key, lambda: self._build_crd_index(files))
        return self._crd_index

    def _crd_files(self) -> Iterable[tuple[str, Path]]:
        if self.schema_dir is None:
            return
        for family, patterns in CRD_FAMILIES.items():
            for pattern in patterns:
                for file in sorted(self.schema_dir.glob(pattern)):
                    yield family, file

    @staticmethod
    def _build_crd_index(files: Iterable[tuple[str, Path]]) -> dict[tuple[str, str], CrdDoc]:
        index: dict[tuple[str, str], CrdDoc] = {}
        for family, file in files:
            for text in _DOC_SEPARATOR.split(file.read_text(encoding="utf-8")):
                if not _CRD_KIND.search(text):
                    continue
                doc = CrdDoc(family, file, text)
                key = scan_group_kind(text)
                if key is None:  # unusual layout: parse this one document now
                    spec = doc.load().get("spec") or {}
                    key = (spec.get("group", ""), (spec.get("names") or {}).get("kind", ""))
                index.setdefault(key, doc)
        return index

    def _crd_validator(self, group: str, version: str, kind: str) -> Schema | str:
        key = (group, version, kind)
        if key not in self._crd_validators:
            docs = self._crd_docs()
            compiled, notes = fastschema.memo(
                (*self._crd_index_key, *key), lambda: self._compile_crd(docs, group, version, kind)
            )
            self.notes.extend(notes)
            self._crd_validators[key] = compiled
        return self._crd_validators[key]

    @staticmethod
    def _compile_crd(
        docs: dict[tuple[str, str], CrdDoc], group: str, version: str, kind: str
    ) -> tuple[Schema | str, list[str]]:
        doc = docs.get((group, kind))
        if doc is None:
            return f"no CRD for {group}/{version}/{kind}", []
        checker = Draft7Validator.FORMAT_CHECKER

        def explain() -> JsonValidator:
            converted = crd_schema(doc, group, version, kind)
            assert not isinstance(converted, str)  # the prepared schema was made from it
            return Draft7Validator(converted[0], format_checker=checker)

        def prepare() -> fastschema.Prepared | str:
            converted = crd_schema(doc, group, version, kind)
            return converted if isinstance(converted, str) else fastschema.prepare(*converted)

        # Error messages name the file, so the key does too.
        key = "\0".join(("crd", doc.digest(), doc.file.name, group, version, kind, CODE))
        try:
            prepared = fastschema.cached(key, prepare)
        except fastschema.NotPreparedError as exc:
            converted = crd_schema(doc, group, version, kind)
            notes = [] if isinstance(converted, str) else converted[1]
            return Schema(f"{group}/{version}/{kind}", str(exc), explain), notes
        if isinstance(prepared, str):
            return prepared, []
        fast = fastschema.compile_fast("Draft7Validator", prepared, checker=checker)
        return Schema(f"{group}/{version}/{kind}", fast, explain), list(prepared.notes)
