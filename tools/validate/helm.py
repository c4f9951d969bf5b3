"""Helm values: against the chart's values.schema.json where upstream ships one (coalesced with
the chart defaults, as Helm does), else our top-level keys against upstream's."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator, Draft201909Validator
from jsonschema.protocols import Validator as JsonValidator
from referencing import Registry

from components import versions
from tools import fastschema
from tools.validate.core import YAML_LOADER, Checks, Schema, Violation, compile_json
from tools.validate.kubernetes import k8s_defs_contents, k8s_defs_file, retrieve_remote


@dataclass(frozen=True)
class Chart:
    folder: str | None  # relative to the schema folder; None: nothing upstream to check against
    schema: type[JsonValidator] | None = None  # validator class when upstream ships values.schema.json
    extra_keys: tuple[str, ...] = ()
    # Top-level keys of the pinned chart's upstream values.yaml, recorded by hand, for charts that
    # ship no values.schema.json and whose values.yaml is not in the schema folder. Used when
    # `folder` is None or absent. `recorded_at`: the chart version they were read from; a test holds
    # it to the pin in components/versions.py, so a bump asks for the keys to be read again.
    top_keys: frozenset[str] = frozenset()
    recorded_at: str = ""


# Istio's charts read these in templates/zzz_profile.yaml without declaring them in values.yaml;
# the gateway chart's values.schema.json lists them.
_ISTIO_PROFILE_KEYS = ("profile", "compatibilityVersion", "platform")
# Top-level keys of upstream values.yaml at the pinned tag, for charts that ship no schema.
# fmt: off
# Ref: prometheus-community/helm-charts, tag kube-prometheus-stack-<recorded_at>, values.yaml
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
# Ref: jaegertracing/helm-charts, tag jaeger-<recorded_at>, charts/jaeger/values.yaml
_JAEGER_KEYS = frozenset({
    "uiconfig", "userconfig", "global", "networkPolicy", "tag", "nameOverride", "fullnameOverride",
    "commonLabels", "commonAnnotations", "jaeger", "storage", "spark", "esIndexCleaner",
    "esRollover", "esLookback", "extraObjects",
})
# fmt: on
# By the chart's key (components/versions.py Chart.key, what the render names a release's chart).
CHARTS: dict[str, Chart] = {
    versions.TIGERA_OPERATOR.key: Chart("calico/chart/tigera-operator"),
    versions.CALICO_CRDS_V1.key: Chart(None),
    "projectcalico.org.v3": Chart(None),
    versions.ISTIO_BASE.key: Chart("istio/chart/base", extra_keys=_ISTIO_PROFILE_KEYS),
    versions.ISTIOD.key: Chart("istio/chart/istiod", extra_keys=_ISTIO_PROFILE_KEYS),
    # "$schema" is the unversioned alias
    versions.ISTIO_GATEWAY.key: Chart("istio/chart/gateway", Draft7Validator),
    versions.NGINX_INGRESS.key: Chart("nginx/chart", Draft201909Validator),
    versions.CIS.key: Chart("cis/chart"),
    # Charts without values.schema.json whose values.yaml is not in the schema folder.
    versions.KUBE_PROMETHEUS_STACK.key: Chart(
        None, top_keys=_KUBE_PROMETHEUS_STACK_KEYS, recorded_at="88.5.3"
    ),
    versions.JAEGER.key: Chart(None, top_keys=_JAEGER_KEYS, recorded_at="4.11.1"),
}
_ISTIO_DEFAULTS = "_internal_defaults_do_not_set"
_COMMENTED_TOP_KEY = re.compile(r"^#[ \t]*([A-Za-z_][\w-]*)[ \t]*:", re.MULTILINE)


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


def _values_schema(chart: str, folder: Path, cls: type[JsonValidator]) -> Schema:
    path = folder / "values.schema.json"

    def build() -> Schema:
        schema = fastschema.load_json(path)
        checker = cls.FORMAT_CHECKER

        def explain() -> JsonValidator:
            registry: Registry[Any] = Registry(retrieve=retrieve_remote)  # type: ignore[call-arg]
            return cls(schema, registry=registry, format_checker=checker)

        # The documents the schema refers to by URL, served from local files where they can be;
        # any other makes the compile fail, leaving the schema to jsonschema (which reports it).
        remote = sorted({ref.partition("#")[0] for ref in _refs(schema)} - {""})
        local = [(uri, k8s_defs_file(uri)) for uri in remote]
        resources = [
            (uri, k8s_defs_contents(fastschema.read_json(file))) for uri, file in local if file is not None
        ]
        registered = fastschema.register(resources, "Draft202012Validator")
        fast = compile_json(cls.__name__, path, registered, checker)
        return Schema(f"chart {chart} values.schema.json", fast, explain)

    return fastschema.memo(("values", chart, cls.__name__, *fastschema.file_key(path)), build)


class HelmChecks(Checks):
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
            lambda: yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER),
        )
