"""Offline validation of rendered objects, Helm values and F5 declarations against upstream schemas.

The schema folder is the one described by its MANIFEST.md (see `python -m tools.schemas`).
Nothing here touches the network: remote `$ref`s are either served from local files or reported.

Each schema is compiled once per process (tools.fastschema): jsonschema-rs decides whether an
object is valid; only a rejected object is run through the jsonschema validator of the same schema,
whose messages and paths are the ones reported. Validator(..., reference=True) uses jsonschema alone
(and kubernetes-validate's own validate() for built-in kinds), as before the compiled path existed:
the differential test holds the two to the same answers.

Public API: resolve_schema_dir(), Violation, Validator (k8s_object, helm_values, as3, do).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import yaml
from jsonschema import Draft7Validator, Draft201909Validator, Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, relevance
from jsonschema.protocols import Validator as JsonValidator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable
from referencing.jsonschema import DRAFT7, DRAFT202012

from tools import fastschema
from tools.schemas import default_cache_dir

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_VAR = "CPAAS_SCHEMAS"

_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_KV_SCHEMAS = Path(kubernetes_validate.__file__).resolve().parent / "kubernetes-json-schema"
_MAX_MESSAGE = 400
# Disk cache entries are made by this code from files read with this YAML library.
_CODE = f"{fastschema.digest_files(Path(__file__))} yaml {yaml.__version__}"


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
# CRD families
# ---------------------------------------------------------------------------------------------

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
KUBERNETES = "kubernetes"


def _family_of(group: str) -> str:
    if group in _GROUP_FAMILY:
        return _GROUP_FAMILY[group]
    if group.endswith(".istio.io"):
        return "istio-crds"
    return OTHER_CRDS


_DOC_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.MULTILINE)
_CRD_KIND = re.compile(r"^kind:[ \t]*CustomResourceDefinition[ \t]*$", re.MULTILINE)
_SPEC_INDENT = re.compile(r"^spec:[ \t]*\n(?:[ \t]*(?:#.*)?\n)*([ \t]+)\S", re.MULTILINE)


@dataclass
class _CrdDoc:
    family: str
    file: Path
    text: str
    parsed: dict[str, Any] | None = field(default=None, repr=False)
    _digest: str = field(default="", repr=False)

    def load(self) -> dict[str, Any]:
        if self.parsed is None:
            self.digest()
            self.parsed = yaml.load(self.text, Loader=_YAML_LOADER) or {}
            self.text = ""
        return self.parsed

    def digest(self) -> str:
        """sha256 of the document's text (the disk cache key of what is made from it)."""
        if not self._digest:
            self._digest = hashlib.sha256(self.text.encode()).hexdigest()
        return self._digest


def _scan_group_kind(text: str) -> tuple[str, str] | None:
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


# ---------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Helm charts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chart:
    folder: str | None  # relative to the schema folder; None: nothing upstream to check against
    schema: type[JsonValidator] | None = None  # validator class when upstream ships values.schema.json
    extra_keys: tuple[str, ...] = ()
    # Top-level keys of the pinned chart's upstream values.yaml, recorded by hand (version named
    # beside each list), for charts that ship no values.schema.json and whose values.yaml is not in
    # the schema folder. Used when `folder` is None or absent.
    top_keys: frozenset[str] = frozenset()


# Istio's charts read these in templates/zzz_profile.yaml without declaring them in values.yaml;
# the gateway chart's values.schema.json lists them.
_ISTIO_PROFILE_KEYS = ("profile", "compatibilityVersion", "platform")
# Top-level keys of upstream values.yaml at the pinned tag, for charts that ship no schema.
# fmt: off
# kube-prometheus-stack 88.5.3 (prometheus-community/helm-charts, tag kube-prometheus-stack-88.5.3)
_KUBE_PROMETHEUS_STACK_KEYS = frozenset({
    "nameOverride", "namespaceOverride", "kubeTargetVersionOverride", "kubeVersionOverride",
    "fullnameOverride", "commonLabels", "crds", "customRules", "defaultRules",
    "additionalPrometheusRulesMap", "global", "windowsMonitoring", "prometheus-windows-exporter",
    "alertmanager", "grafana", "kubernetesServiceMonitors", "kubeApiServer", "kubelet",
    "kubeControllerManager", "coreDns", "kubeDns", "kubeEtcd", "kubeScheduler", "kubeProxy",
    "kubeStateMetrics", "kube-state-metrics", "nodeExporter", "prometheus-node-exporter",
    "prometheusOperator", "prometheus", "thanosRuler", "cleanPrometheusOperatorObjectNames",
    "extraManifests",
})
# jaeger 4.11.1 (jaegertracing/helm-charts, tag jaeger-4.11.1)
_JAEGER_KEYS = frozenset({
    "uiconfig", "userconfig", "global", "networkPolicy", "tag", "nameOverride", "fullnameOverride",
    "commonLabels", "commonAnnotations", "jaeger", "storage", "spark", "esIndexCleaner",
    "esRollover", "esLookback", "extraObjects",
})
# fmt: on
CHARTS: dict[str, _Chart] = {
    "tigera-operator": _Chart("calico/chart/tigera-operator"),
    "crd.projectcalico.org.v1": _Chart(None),
    "projectcalico.org.v3": _Chart(None),
    "base": _Chart("istio/chart/base", extra_keys=_ISTIO_PROFILE_KEYS),
    "istiod": _Chart("istio/chart/istiod", extra_keys=_ISTIO_PROFILE_KEYS),
    "gateway": _Chart("istio/chart/gateway", Draft7Validator),  # "$schema" is the unversioned alias
    "nginx-ingress": _Chart("nginx/chart", Draft201909Validator),
    "f5-bigip-ctlr": _Chart("cis/chart"),
    # Charts without values.schema.json whose values.yaml is not in the schema folder.
    "kube-prometheus-stack": _Chart(None, top_keys=_KUBE_PROMETHEUS_STACK_KEYS),
    "jaeger": _Chart(None, top_keys=_JAEGER_KEYS),
}
_ISTIO_DEFAULTS = "_internal_defaults_do_not_set"
_COMMENTED_TOP_KEY = re.compile(r"^#[ \t]*([A-Za-z_][\w-]*)[ \t]*:", re.MULTILINE)
# The NGINX chart schema $refs Kubernetes definitions by URL; kubernetes-validate bundles them.
_K8S_DEFS_URL = re.compile(
    r"^https://raw\.githubusercontent\.com/nginxinc/kubernetes-json-schema/master/v(\d+\.\d+)\.\d+[^/]*/_definitions\.json$"
)


def _coalesce(defaults: Any, values: Any) -> Any:
    """Helm's merge of user values over chart defaults: maps merge, null deletes, the rest replaces.

    Ref: https://helm.sh/docs/chart_template_guide/values_files/#deleting-a-default-key
    """
    if not isinstance(defaults, dict) or not isinstance(values, dict):
        return values
    merged = dict(defaults)
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _coalesce(defaults.get(key), value)
    return merged


# ---------------------------------------------------------------------------------------------
# Error formatting
# ---------------------------------------------------------------------------------------------


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _message(text: str) -> str:
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


def _violations(validator: JsonValidator, instance: Any, file: str) -> list[Violation]:
    found: set[Violation] = set()
    try:
        for error in validator.iter_errors(instance):
            for leaf in _leaves(error):
                found.add(Violation(file, _path(leaf.absolute_path), _message(leaf.message)))
    except Unresolvable as exc:
        found.add(Violation(file, "(root)", f"unresolvable $ref {exc} (remote references are never fetched)"))
    return sorted(found)


# ---------------------------------------------------------------------------------------------
# Schemas compiled once per process
# ---------------------------------------------------------------------------------------------


class _Schema:
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
            return _violations(self._validator, instance, file)
        # kubernetes_validate.validate() raises the first error of iter_errors(), as validate() does.
        error = next(iter(self._validator.iter_errors(instance)), None)
        return [] if error is None else [Violation(file, _path(error.path), _message(error.message))]


def _kv_version(desired: str) -> str:
    """The schema version kubernetes_validate.validate(obj, desired) picks (its own comparison).
    Ref: kubernetes-validate 1.37.0, kubernetes_validate/utils.py validate()"""

    def pick() -> str:
        wanted = kv_utils.major_minor(desired[1:] if desired.startswith("v") else desired)
        return [v for v in kv_utils.all_versions() if kv_utils.major_minor(v) <= wanted][-1]

    return fastschema.memo(("kv-version", desired), pick)


def _builtin_schema(version: str, api_version: str, kind: str) -> _Schema | None:
    """The strict schema kubernetes_validate.validate(obj, version, strict=True) reads for this
    apiVersion and kind, compiled once; None where it has none (it raises SchemaNotFoundError).
    Ref: kubernetes-validate 1.37.0, kubernetes_validate/utils.py validate() (file name, registry)"""

    def build() -> _Schema | None:
        folder = _KV_SCHEMAS / f"v{_kv_version(version)}-local-strict"
        api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        path = folder / f"{kind.lower()}-{api}.json"
        if not path.is_file():
            return None
        schema = fastschema.load_json(path)
        defs_path = folder / "_definitions.json"

        def explain() -> JsonValidator:
            # kubernetes-validate's registry holds the kind's schema and the definitions; the
            # definitions' subresources are crawled once per process instead of once per object.
            def crawl() -> Registry[Any]:
                return (Resource.from_contents(fastschema.load_json(defs_path)) @ Registry()).crawl()

            crawled = fastschema.memo(("k8s-defs-registry", str(defs_path)), crawl)
            registry: Registry[Any] = Resource.from_contents(schema) @ crawled
            return Draft202012Validator(schema, registry=registry)

        def register() -> fastschema.Resources:
            defs = fastschema.read_json(defs_path)
            return fastschema.register([(defs["$id"], defs)], "Draft202012Validator")

        resources = fastschema.memo(("k8s-defs", str(defs_path)), register)
        fast = fastschema.compile_fast("Draft202012Validator", schema, resources)
        return _Schema(f"Kubernetes {api_version} {kind}", fast, explain, first_error_only=True)

    return fastschema.memo(("k8s", version, api_version, kind), build)


# ---------------------------------------------------------------------------------------------
# Validator
# ---------------------------------------------------------------------------------------------


class Validator:
    """Validates against the schemas under schema_dir (None: only built-in Kubernetes kinds).

    skipped: families whose schema files are missing (their objects were not validated).
    checked: objects validated per family ("kubernetes", "calico-crds", ..., "helm-values",
             "helm-values-keys", "as3", "do").
    notes:   one-off remarks for the caller to print (version substitutions, dropped patterns,
             schemas that only jsonschema can check).
    disagreements: objects the compiled validator rejected and jsonschema accepted (reported as
             jsonschema decides: valid); the differential test expects none.
    reference=True: jsonschema and kubernetes-validate alone, without compiled validators.
    """

    def __init__(self, schema_dir: Path | None, reference: bool = False) -> None:
        self.schema_dir = Path(schema_dir) if schema_dir is not None else None
        self.reference = reference
        self.skipped: set[str] = set()
        self.checked: Counter[str] = Counter()
        self.notes: list[str] = []
        self.disagreements: list[str] = []
        self._crd_index: dict[tuple[str, str], _CrdDoc] | None = None
        self._crd_index_key: tuple[Any, ...] = ()
        self._crd_validators: dict[tuple[str, str, str], _Schema | str] = {}
        self._k8s_versions: dict[str, str] = {}
        self._families: dict[str, bool] = {}
        self._noted: set[str] = set()

    def _check(self, schema: _Schema, instance: Any, file: str) -> list[Violation]:
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

    # -- Kubernetes objects ------------------------------------------------------------------

    def k8s_object(self, obj: dict[str, Any], k8s_version: str, file: str) -> list[Violation]:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version:
            return [Violation(file, "(root)", "object has no apiVersion/kind")]
        group, _, version = api_version.rpartition("/")
        supported = self._supported_version(k8s_version)
        if group in self._groups_of(supported):
            return self._builtin(obj, supported, file)
        return self._custom(obj, group, version, kind, file)

    def _supported_version(self, requested: str) -> str:
        if requested in self._k8s_versions:
            return self._k8s_versions[requested]
        match = re.match(r"^v?(\d+)\.(\d+)", requested)
        if match is None:
            raise ValueError(f"not a Kubernetes version: {requested!r}")
        want = (int(match.group(1)), int(match.group(2)))
        available = {tuple(int(p) for p in v.split(".")[:2]): v for v in kv_utils.all_versions()}
        if want in available:
            chosen = available[want]
        else:
            # Nearest by minor; ties go to the older schema (it accepts fewer new fields).
            nearest = min(available, key=lambda mm: (abs(mm[0] - want[0]) * 1000 + abs(mm[1] - want[1]), mm))
            chosen = available[nearest]
            note = (
                f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for Kubernetes "
                f"{want[0]}.{want[1]}; validating against {nearest[0]}.{nearest[1]}"
            )
            self.notes.append(note)
            log.warning(note)
        self._k8s_versions[requested] = chosen
        return chosen

    @staticmethod
    def _groups_of(version: str) -> frozenset[str]:
        """API groups served by Kubernetes itself, read from kubernetes-validate's bundled definitions."""

        def read() -> frozenset[str]:
            defs = fastschema.read_json(_KV_SCHEMAS / f"v{version}-local" / "_definitions.json")
            return frozenset(
                gvk["group"]
                for definition in defs["$defs"].values()
                for gvk in definition.get("x-kubernetes-group-version-kind", ())
            )

        return fastschema.memo(("k8s-groups", version), read)

    def _builtin(self, obj: dict[str, Any], version: str, file: str) -> list[Violation]:
        self.checked[KUBERNETES] += 1
        schema = None if self.reference else _builtin_schema(version, obj["apiVersion"], obj["kind"])
        if schema is not None:
            return self._check(schema, obj, file)
        minor = ".".join(version.split(".")[:2])
        try:
            # Raises on the first error only (it calls validate(), not iter_errors()).
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            return [Violation(file, _path(exc.path), _message(exc.message))]
        except kubernetes_validate.SchemaNotFoundError:
            what = f"{obj['apiVersion']} {obj['kind']}"
            return [Violation(file, "(root)", f"Kubernetes {minor} has no {what} (removed or misspelled?)")]
        return []

    def _custom(self, obj: dict[str, Any], group: str, version: str, kind: str, file: str) -> list[Violation]:
        doc = self._crd_docs().get((group, kind))
        family = doc.family if doc is not None else _family_of(group)
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

    def _crd_docs(self) -> dict[tuple[str, str], _CrdDoc]:
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
    def _build_crd_index(files: Iterable[tuple[str, Path]]) -> dict[tuple[str, str], _CrdDoc]:
        index: dict[tuple[str, str], _CrdDoc] = {}
        for family, file in files:
            for text in _DOC_SEPARATOR.split(file.read_text(encoding="utf-8")):
                if not _CRD_KIND.search(text):
                    continue
                doc = _CrdDoc(family, file, text)
                key = _scan_group_kind(text)
                if key is None:  # unusual layout: parse this one document now
                    spec = doc.load().get("spec") or {}
                    key = (spec.get("group", ""), (spec.get("names") or {}).get("kind", ""))
                index.setdefault(key, doc)
        return index

    def _crd_validator(self, group: str, version: str, kind: str) -> _Schema | str:
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
        docs: dict[tuple[str, str], _CrdDoc], group: str, version: str, kind: str
    ) -> tuple[_Schema | str, list[str]]:
        doc = docs.get((group, kind))
        if doc is None:
            return f"no CRD for {group}/{version}/{kind}", []
        checker = Draft7Validator.FORMAT_CHECKER

        def explain() -> JsonValidator:
            converted = _crd_schema(doc, group, version, kind)
            assert not isinstance(converted, str)  # the prepared schema was made from it
            return Draft7Validator(converted[0], format_checker=checker)

        def prepare() -> fastschema.Prepared | str:
            converted = _crd_schema(doc, group, version, kind)
            return converted if isinstance(converted, str) else fastschema.prepare(*converted)

        # Error messages name the file, so the key does too.
        key = "\0".join(("crd", doc.digest(), doc.file.name, group, version, kind, _CODE))
        try:
            prepared = fastschema.cached(key, prepare)
        except fastschema.NotPreparedError as exc:
            converted = _crd_schema(doc, group, version, kind)
            notes = [] if isinstance(converted, str) else converted[1]
            return _Schema(f"{group}/{version}/{kind}", str(exc), explain), notes
        if isinstance(prepared, str):
            return prepared, []
        fast = fastschema.compile_fast("Draft7Validator", prepared, checker=checker)
        return _Schema(f"{group}/{version}/{kind}", fast, explain), list(prepared.notes)

    # -- Helm values ---------------------------------------------------------------------------

    def helm_values(self, chart: str, values: dict[str, Any], file: str) -> list[Violation]:
        spec = CHARTS.get(chart)
        if spec is None:
            known = ", ".join(sorted(CHARTS))
            return [Violation(file, "(root)", f"unknown chart {chart!r} (known: {known})")]
        folder = self.schema_dir / spec.folder if self.schema_dir is not None and spec.folder else None
        if spec.schema is not None and folder is not None and (folder / "values.schema.json").is_file():
            self.checked["helm-values"] += 1
            defaults = self._yaml_file(folder / "values.yaml") if (folder / "values.yaml").is_file() else {}
            # Helm validates the chart defaults coalesced with the user's values, not the overrides alone.
            merged = _coalesce(defaults or {}, values)
            return self._check(_values_schema(chart, folder, spec.schema), merged, file)
        if folder is not None and (folder / "values.yaml").is_file():
            self.checked["helm-values-keys"] += 1
            allowed = self._known_top_keys(folder / "values.yaml") | set(spec.extra_keys)
            message = f"unknown top-level value for chart {chart} (not in upstream values.yaml)"
            return sorted(Violation(file, str(key), message) for key in values if key not in allowed)
        if spec.top_keys:
            self.checked["helm-values-keys"] += 1
            message = f"unknown top-level value for chart {chart} (not in the recorded upstream keys)"
            return sorted(Violation(file, str(key), message) for key in values if key not in spec.top_keys)
        if values:
            self.skipped.add(f"helm-values:{chart}")
        return []

    def _known_top_keys(self, values_file: Path) -> set[str]:
        def read() -> frozenset[str]:
            defaults = self._yaml_file(values_file) or {}
            keys = set(defaults) | set(defaults.get(_ISTIO_DEFAULTS) or {})
            # Optional settings that upstream documents as commented-out top-level keys.
            keys |= set(_COMMENTED_TOP_KEY.findall(values_file.read_text(encoding="utf-8")))
            return frozenset(keys)

        return set(fastschema.memo(("top-keys", *fastschema.file_key(values_file)), read))

    @staticmethod
    def _yaml_file(path: Path) -> Any:
        """Parsed once per process; callers must not mutate the result."""
        return fastschema.memo(
            ("yaml", *fastschema.file_key(path)),
            lambda: yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER),
        )

    # -- F5 declarations -----------------------------------------------------------------------

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

    def _f5_schema(self, family: str, entry: str, others: tuple[str, ...]) -> _Schema | None:
        if self.schema_dir is None or not (self.schema_dir / entry).is_file():
            self.skipped.add(family)
            return None
        self.checked[family] += 1
        entry_path = self.schema_dir / entry
        other_paths = [path for pattern in others for path in sorted(self.schema_dir.glob(pattern))]
        key = ("f5", family, *(fastschema.file_key(p) for p in (entry_path, *other_paths)))
        return fastschema.memo(key, lambda: _compile_f5(family, entry_path, other_paths))


# ---------------------------------------------------------------------------------------------
# CRD, Helm values and F5 schemas, compiled once per process
# ---------------------------------------------------------------------------------------------


def _crd_schema(doc: _CrdDoc, group: str, version: str, kind: str) -> tuple[dict[str, Any], list[str]] | str:
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


def _compile_json(
    draft: str, path: Path, resources: fastschema.Resources, checker: FormatChecker
) -> jsonschema_rs.Validator | str:
    """The JSON schema file `path` compiled (prepared from the disk cache when it can be), or why not."""
    key = "\0".join(("json", *map(str, fastschema.file_key(path)), _CODE))
    try:
        prepared = fastschema.cached(key, lambda: fastschema.prepare(fastschema.load_json(path)))
    except fastschema.NotPreparedError as exc:
        return str(exc)
    if isinstance(prepared, str):  # never cached for a JSON file: prepare() returns or raises
        return prepared
    return fastschema.compile_fast(draft, prepared, resources, checker)


def _k8s_defs_file(uri: str) -> Path | None:
    match = _K8S_DEFS_URL.match(uri)
    local = _KV_SCHEMAS / f"v{match.group(1)}.0-local" / "_definitions.json" if match else None
    return local if local is not None and local.is_file() else None


def _k8s_defs_contents(defs: dict[str, Any]) -> dict[str, Any]:
    # The bundled file keys definitions under $defs and carries its own $id; the chart points at
    # #/definitions/... relative to the GitHub URL. Alias both, drop the $id.
    return {"$schema": defs.get("$schema"), "$defs": defs["$defs"], "definitions": defs["$defs"]}


def _retrieve_remote(uri: str) -> Resource[Any]:
    """Serve the Kubernetes definitions the NGINX chart schema points at; refuse everything else."""
    local = _k8s_defs_file(uri)
    if local is None:
        raise NoSuchResource(ref=uri)  # type: ignore[call-arg]
    return fastschema.memo(
        ("k8s-defs-resource", str(local)),
        lambda: Resource.from_contents(
            _k8s_defs_contents(fastschema.load_json(local)), default_specification=DRAFT202012
        ),
    )


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _values_schema(chart: str, folder: Path, cls: type[JsonValidator]) -> _Schema:
    path = folder / "values.schema.json"

    def build() -> _Schema:
        schema = fastschema.load_json(path)
        checker = cls.FORMAT_CHECKER

        def explain() -> JsonValidator:
            registry: Registry[Any] = Registry(retrieve=_retrieve_remote)  # type: ignore[call-arg]
            return cls(schema, registry=registry, format_checker=checker)

        # The documents the schema refers to by URL, served from local files where they can be;
        # any other makes the compile fail, leaving the schema to jsonschema (which reports it).
        remote = sorted({ref.partition("#")[0] for ref in _refs(schema)} - {""})
        local = [(uri, _k8s_defs_file(uri)) for uri in remote]
        resources = [
            (uri, _k8s_defs_contents(fastschema.read_json(file))) for uri, file in local if file is not None
        ]
        registered = fastschema.register(resources, "Draft202012Validator")
        fast = _compile_json(cls.__name__, path, registered, checker)
        return _Schema(f"chart {chart} values.schema.json", fast, explain)

    return fastschema.memo(("values", chart, cls.__name__, *fastschema.file_key(path)), build)


def _compile_f5(family: str, entry: Path, others: list[Path]) -> _Schema:
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
    fast = _compile_json("Draft7Validator", entry, registered, checker)
    return _Schema(f"{family} schema {entry.name}", fast, explain)
