"""Built-in Kubernetes kinds, checked as kubernetes-validate checks them (strict), compiled once.

Also serves kubernetes-validate's bundled definitions to schemas that $ref them by URL (the NGINX
chart's values.schema.json).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils as kv_utils
from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator as JsonValidator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT202012

from tools import fastschema
from tools.validate.core import Checks, Schema, Violation, clipped, path_text

log = logging.getLogger(__name__)

KUBERNETES = "kubernetes"
_KV_SCHEMAS = Path(kubernetes_validate.__file__).resolve().parent / "kubernetes-json-schema"
# The NGINX chart schema $refs Kubernetes definitions by URL; kubernetes-validate bundles them.
_K8S_DEFS_URL = re.compile(
    r"^https://raw\.githubusercontent\.com/nginxinc/kubernetes-json-schema/master/v(\d+\.\d+)\.\d+[^/]*/_definitions\.json$"
)


def _kv_version(desired: str) -> str:
    """The schema version kubernetes_validate.validate(obj, desired) picks (its own comparison).
    Ref: kubernetes-validate 1.37.0, kubernetes_validate/utils.py validate()"""

    def pick() -> str:
        wanted = kv_utils.major_minor(desired[1:] if desired.startswith("v") else desired)
        return [v for v in kv_utils.all_versions() if kv_utils.major_minor(v) <= wanted][-1]

    return fastschema.memo(("kv-version", desired), pick)


def builtin_schema(version: str, api_version: str, kind: str) -> Schema | None:
    """The strict schema kubernetes_validate.validate(obj, version, strict=True) reads for this
    apiVersion and kind, compiled once; None where it has none (it raises SchemaNotFoundError).
    Ref: kubernetes-validate 1.37.0, kubernetes_validate/utils.py validate() (file name, registry)"""

    def build() -> Schema | None:
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
        return Schema(f"Kubernetes {api_version} {kind}", fast, explain, first_error_only=True)

    return fastschema.memo(("k8s", version, api_version, kind), build)


def k8s_defs_file(uri: str) -> Path | None:
    match = _K8S_DEFS_URL.match(uri)
    local = _KV_SCHEMAS / f"v{match.group(1)}.0-local" / "_definitions.json" if match else None
    return local if local is not None and local.is_file() else None


def k8s_defs_contents(defs: dict[str, Any]) -> dict[str, Any]:
    # The bundled file keys definitions under $defs and carries its own $id; the chart points at
    # #/definitions/... relative to the GitHub URL. Alias both, drop the $id.
    return {"$schema": defs.get("$schema"), "$defs": defs["$defs"], "definitions": defs["$defs"]}


def retrieve_remote(uri: str) -> Resource[Any]:
    """Serve the Kubernetes definitions the NGINX chart schema points at; refuse everything else."""
    local = k8s_defs_file(uri)
    if local is None:
        raise NoSuchResource(ref=uri)  # type: ignore[call-arg]
    return fastschema.memo(
        ("k8s-defs-resource", str(local)),
        lambda: Resource.from_contents(
            k8s_defs_contents(fastschema.load_json(local)), default_specification=DRAFT202012
        ),
    )


class KubernetesChecks(Checks):
    def __init__(self, schema_dir: Path | None, reference: bool = False) -> None:
        super().__init__(schema_dir, reference)
        self._k8s_versions: dict[str, str] = {}

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
        schema = None if self.reference else builtin_schema(version, obj["apiVersion"], obj["kind"])
        if schema is not None:
            return self._check(schema, obj, file)
        minor = ".".join(version.split(".")[:2])
        try:
            # Raises on the first error only (it calls validate(), not iter_errors()).
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            return [Violation(file, path_text(exc.path), clipped(exc.message))]
        except kubernetes_validate.SchemaNotFoundError:
            what = f"{obj['apiVersion']} {obj['kind']}"
            return [Violation(file, "(root)", f"Kubernetes {minor} has no {what} (removed or misspelled?)")]
        return []
