"""Mandatory rules a bank insists on, as pure functions over resource types and inputs.

The same functions serve the Pulumi policy pack (`__main__.py`, run by the Pulumi CLI) and the
offline check over a render's resources.json. Secret values are recognised in both forms: the
policy SDK's `Secret` wrapper and the render's "[secret]" marker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RENDER_SECRET = "[secret]"
_UNPINNED_VERSION = re.compile(r"^$|latest|[\^~*x]|[<>=]|\|\|", re.IGNORECASE)
_PINNED_IMAGE = re.compile(r"^[^\s:@]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$")


@dataclass(frozen=True)
class Resource:
    """What a rule sees: the Pulumi type token, name, URN, provider reference and inputs."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    provider: str = ""


def is_secret(value: Any) -> bool:
    return value == RENDER_SECRET or type(value).__name__ == "Secret"


# ---------------------------------------------------------------------------------------------
# Per-resource rules: each returns messages (empty: compliant)
# ---------------------------------------------------------------------------------------------


def pinned_charts_and_images(res: Resource) -> list[str]:
    """No chart without an exact version, no image without a tag, no `latest`."""
    problems: list[str] = []
    if res.type == "kubernetes:helm.sh/v3:Release":
        version = str(res.props.get("version") or "")
        if _UNPINNED_VERSION.search(version):
            problems.append(f"chart {res.props.get('chart')} is not pinned to an exact version ({version!r})")
        problems += [f"chart values: {m}" for m in _images_in(res.props.get("values") or {})]
    elif res.type.startswith("kubernetes:apps/v1:") or res.type == "kubernetes:core/v1:Pod":
        problems += list(_images_in(res.props.get("spec") or {}, "spec"))
    return problems


def _images_in(node: Any, path: str = "") -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if key == "image" and isinstance(value, str):
                # Charts often split the image: {image: repo, tag|version: x} counts as pinned.
                sibling = node.get("tag") or node.get("version")
                if not (isinstance(sibling, str) and sibling and sibling.lower() != "latest"):
                    yield from _check_image(value, here)
            elif key in ("tag", "version") and isinstance(value, str) and value.lower() == "latest":
                yield f"{here} is 'latest'; pin an exact tag"
            else:
                yield from _images_in(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _images_in(value, f"{path}[{i}]")


def _check_image(image: str, where: str) -> Iterator[str]:
    last = image.rsplit("/", 1)[-1]
    if "@sha256:" in image:
        return
    if ":" not in last:
        yield f"{where} {image!r} has no tag; pin an exact tag or digest"
    elif last.endswith(":latest") or not _PINNED_IMAGE.match(image):
        yield f"{where} {image!r} is not pinned; use an exact tag or digest"


def bigip_provider_hygiene(res: Resource) -> list[str]:
    """BIG-IP providers verify the device's TLS certificate and send no telemetry."""
    if res.type != "pulumi:providers:f5bigip":
        return []
    problems = []
    if str(res.props.get("validateCertsDisable", "true")).lower() != "false":
        problems.append("validateCertsDisable must be false (verify the BIG-IP's certificate)")
    if str(res.props.get("teemDisable", "false")).lower() != "true":
        problems.append("teemDisable must be true (no telemetry to F5)")
    return problems


_SECRET_INPUTS: dict[str, tuple[str, ...]] = {
    "pulumi:providers:f5bigip": ("password",),
    "pulumi:providers:kubernetes": ("kubeconfig",),
    "f5bigip:ssl/key:Key": ("content",),
    "f5bigip:index/sslKeyCert:SslKeyCert": ("keyContent", "passphrase"),
    "tls:index/locallySignedCert:LocallySignedCert": ("caPrivateKeyPem",),
    "tls:index/selfSignedCert:SelfSignedCert": ("privateKeyPem",),
    "tls:index/certRequest:CertRequest": ("privateKeyPem",),
}


def no_plaintext_secrets(res: Resource) -> list[str]:
    """Kubernetes Secret data, BIG-IP passwords, private keys and kubeconfigs are secrets."""
    problems = []
    for key in _SECRET_INPUTS.get(res.type, ()):
        value = res.props.get(key)
        if value not in (None, "") and not is_secret(value):
            problems.append(f"{key} is in plaintext; pass it as a Pulumi secret")
    if res.type == "kubernetes:core/v1:Secret":
        for field in ("data", "stringData"):
            value = res.props.get(field)
            entries = value.items() if isinstance(value, Mapping) else [(field, value)]
            problems += [
                f"{field}.{k} is in plaintext; pass it as a Pulumi secret"
                for k, v in entries
                if v is not None and not is_secret(v)
            ]
    if res.type == "command:local:Command":
        env = res.props.get("environment") or {}
        problems += [
            f"environment.{k} carries a kubeconfig in plaintext"
            for k, v in (env.items() if isinstance(env, Mapping) else [])
            if "KUBECONFIG" in k and v and not is_secret(v)
        ]
    return problems


RESOURCE_RULES = {
    "pinned-charts-and-images": pinned_charts_and_images,
    "bigip-provider-tls-and-no-telemetry": bigip_provider_hygiene,
    "no-plaintext-secrets": no_plaintext_secrets,
}


# ---------------------------------------------------------------------------------------------
# Stack rules: they need to see several resources at once
# ---------------------------------------------------------------------------------------------


def strict_mtls_in_every_unit(resources: Sequence[Resource]) -> list[tuple[str, str]]:
    """Every cluster that runs istiod has a mesh-wide STRICT PeerAuthentication."""
    strict_providers = {
        _provider_urn(r)
        for r in resources
        if r.type.endswith(":PeerAuthentication")
        and (r.props.get("metadata") or {}).get("namespace") == "istio-system"
        and not (r.props.get("spec") or {}).get("selector")
        and ((r.props.get("spec") or {}).get("mtls") or {}).get("mode") == "STRICT"
    }
    return [
        (r.urn, "this cluster runs istiod but has no mesh-wide STRICT PeerAuthentication in istio-system")
        for r in resources
        if r.type == "kubernetes:helm.sh/v3:Release"
        and r.props.get("chart") == "istiod"
        and _provider_urn(r) not in strict_providers
    ]


def egress_requires_mtls_and_authz(resources: Sequence[Resource]) -> list[tuple[str, str]]:
    """Egress virtual servers require client certificates and carry the SPIFFE iRule."""
    profiles = {
        r.props.get("name"): r.props
        for r in resources
        if r.type == "f5bigip:ltm/profileClientSsl:ProfileClientSsl"
    }
    problems = []
    for r in resources:
        if r.type != "f5bigip:ltm/virtualServer:VirtualServer" or not str(r.props.get("name", "")).endswith(
            "/egress"
        ):
            continue
        client = list(r.props.get("clientProfiles") or [])
        if not client or any((profiles.get(p) or {}).get("peerCertMode") != "require" for p in client):
            problems.append(
                (r.urn, "egress virtual server must use a client-ssl profile with peerCertMode require")
            )
        if not any(str(i).endswith("/egress-spiffe-authz") for i in r.props.get("irules") or []):
            problems.append((r.urn, "egress virtual server must carry the egress-spiffe-authz iRule"))
    return problems


def _provider_urn(res: Resource) -> str:
    return res.provider.rsplit("::", 1)[0] if res.provider else ""


STACK_RULES = {
    "strict-mesh-mtls-in-every-unit": strict_mtls_in_every_unit,
    "egress-requires-mtls-and-spiffe-authz": egress_requires_mtls_and_authz,
}


def check(resources: Iterable[Resource]) -> list[tuple[str, str, str]]:
    """Every violation as (rule, urn, message), sorted: the offline form of the pack."""
    items = list(resources)
    out = [(rule, r.urn, m) for r in items for rule, fn in RESOURCE_RULES.items() for m in fn(r)]
    out += [(rule, urn, m) for rule, fn in STACK_RULES.items() for urn, m in fn(items)]
    return sorted(out)


def from_render(entries: Iterable[Mapping[str, Any]]) -> list[Resource]:
    """resources.json entries as rule inputs."""
    return [
        Resource(
            type=e["type"],
            name=e["name"],
            urn=e["urn"],
            props=e.get("inputs") or {},
            provider=e.get("provider", ""),
        )
        for e in entries
    ]
