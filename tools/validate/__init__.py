"""Offline validation of rendered objects, Helm values and F5 declarations against upstream schemas.

The schema folder is the one described by its MANIFEST.md (see `python -m tools.schemas`).
Nothing here touches the network: remote `$ref`s are either served from local files or reported.

Each schema is compiled once per process (tools.fastschema): jsonschema-rs decides whether an
object is valid; only a rejected object is run through the jsonschema validator of the same schema,
whose messages and paths are the ones reported. Validator(..., reference=True) uses jsonschema alone
(and kubernetes-validate's own validate() for built-in kinds), as before the compiled path existed:
the differential test holds the two to the same answers.

The parts: core (schema folder, violations, the compiled-twice schema), kubernetes (built-in
kinds), crd (custom resources), helm (chart values), f5 (AS3, DO).

Public API: resolve_schema_dir(), Violation, Validator (k8s_object, helm_values, as3, do).
"""

from __future__ import annotations

from typing import Any

from tools.validate.core import ENV_VAR, REPO_ROOT, Violation, resolve_schema_dir
from tools.validate.crd import CRD_FAMILIES, OTHER_CRDS, CrdChecks
from tools.validate.f5 import F5Checks, f5_format_checker
from tools.validate.helm import CHARTS, HelmChecks
from tools.validate.kubernetes import KUBERNETES, KubernetesChecks

__all__ = [
    "CHARTS",
    "CRD_FAMILIES",
    "ENV_VAR",
    "KUBERNETES",
    "OTHER_CRDS",
    "REPO_ROOT",
    "Validator",
    "Violation",
    "f5_format_checker",
    "resolve_schema_dir",
]


class Validator(KubernetesChecks, CrdChecks, HelmChecks, F5Checks):
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

    def k8s_object(self, obj: dict[str, Any], k8s_version: str, file: str) -> list[Violation]:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version:
            return [Violation(file, "(root)", "object has no apiVersion/kind")]
        group, _, version = api_version.rpartition("/")
        supported = self._supported_version(k8s_version)
        if group in self._groups_of(supported):
            return self._builtin(obj, supported, file)
        return self._custom(obj, group, version, kind, file)
