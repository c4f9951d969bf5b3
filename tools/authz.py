"""Who can reach what: Istio's authorization, evaluated offline over rendered policies.

    python -m tools.authz --stack NAME [--unit U] [--json FILE]

The evaluator (pure functions over security.istio.io AuthorizationPolicy objects, v1 or v1beta1)
decides one request the way a sidecar's RBAC filters do: CUSTOM first (the named provider
answers), then DENY, then ALLOW; a workload with no ALLOW policy allows, a workload with ALLOW
policies denies unless one matches; a policy without rules matches nothing, an empty rule `{}`
matches everything. The view renders a stack (tools.render.evaluate), and prints, per unit, which
callers (the ingress gateway, the workloads and principals the render names, any other workload of
the mesh, plaintext), with which token, may call each app on its port, and who may leave through
the BIG-IP egress gateway with which SNAT address. Exit 0, 1 when a rendered policy cannot be
evaluated, 2 for bad stack config or arguments.

Semantics follow Istio 1.30.3's translation to Envoy RBAC, read in the source:
Ref: istio/api@1.30.3 security/v1beta1/authorization_policy.proto (the reference page's text)
Ref: istio/istio@1.30.3 pilot/pkg/model/authorization.go (root and workload namespace)
Ref: istio/istio@1.30.3 pilot/pkg/model/policyattachment.go (selector; targetRefs on sidecars ignored)
Ref: istio/istio@1.30.3 pilot/pkg/security/authz/builder/builder.go (no rules: match never; dry-run)
Ref: istio/istio@1.30.3 pilot/pkg/security/authz/model/{model,generator,util}.go (fields, errors, TCP)
Ref: istio/istio@1.30.3 pilot/pkg/security/authz/matcher/{string,header,metadata}.go (wildcards)
Not modelled: trust domain aliases, multiple CUSTOM providers on one workload (istiod then
denies), ambient waypoints (targetRefs to Service/ServiceEntry/GatewayClass), path normalisation.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from components import meshauthz
from components.mesh import GATEWAY_NAMESPACE, GATEWAY_RELEASE

ROOT_NAMESPACE = "istio-system"  # meshConfig.rootNamespace's default
DRY_RUN = "istio.io/dry-run"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
SPIFFE = "spiffe://"
ACTIONS = ("ALLOW", "DENY", "AUDIT", "CUSTOM")
# Go's strconv.ParseBool, which istiod applies to the dry-run annotation.
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}


class PolicyError(Exception):
    """A rendered policy this evaluator cannot decide offline: one line."""


# ---------------------------------------------------------------------------------------------
# The request and the decision
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request as the destination's sidecar sees it.

    `principal` is the peer's SPIFFE id without `spiffe://` (`td/ns/x/sa/y`); None is plaintext.
    `claims` is the payload of a token RequestAuthentication accepted; None is no token. The
    source namespace, service account and trust domain come from the principal, as in Istio. An
    address left None is unknown: no ipBlocks value matches it. `path` may carry a query."""

    namespace: str  # the destination workload's
    labels: Mapping[str, str] = field(default_factory=dict)  # the destination workload's
    port: int = 80
    protocol: str = "http"  # "http" or "tcp": HTTP-only fields cannot apply to TCP
    principal: str | None = None
    claims: Mapping[str, Any] | None = None
    method: str = "GET"
    path: str = "/"
    host: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    source_ip: str | None = None
    remote_ip: str | None = None
    destination_ip: str | None = None
    sni: str | None = None
    ext_authz: Mapping[str, bool] = field(default_factory=dict)  # CUSTOM provider -> allows


@dataclass(frozen=True)
class Decision:
    """`allowed` None: a matching CUSTOM policy's provider decides and its answer was not given
    (everything else allows). `policy` is `namespace/name`, `rule` its index in `rules`."""

    allowed: bool | None
    action: str  # the layer that decided: CUSTOM, DENY, ALLOW, or "default"
    reason: str
    policy: str | None = None
    rule: int | None = None
    audited: tuple[str, ...] = ()

    def by(self) -> str:
        where = f"{self.policy} rule {self.rule}" if self.rule is not None else self.policy
        return f"{self.reason} ({where})" if where else self.reason


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    spec: Mapping[str, Any]
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def action(self) -> str:
        return str(self.spec.get("action") or "ALLOW")

    @property
    def dry_run(self) -> bool:
        return self.annotations.get(DRY_RUN) in _TRUE


def policies_of(objects: Iterable[Mapping[str, Any]]) -> list[Policy]:
    """The AuthorizationPolicies among rendered Kubernetes objects."""
    found = []
    for obj in objects:
        if obj.get("kind") != "AuthorizationPolicy":
            continue
        if not str(obj.get("apiVersion", "")).startswith("security.istio.io/"):
            continue
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        policy = Policy(
            str(meta.get("namespace", "default")), str(meta.get("name")), spec, meta.get("annotations") or {}
        )
        if policy.action not in ACTIONS:
            raise PolicyError(
                f"AuthorizationPolicy {policy.key}: action {policy.action!r}; one of {', '.join(ACTIONS)}"
            )
        found.append(policy)
    return found


# ---------------------------------------------------------------------------------------------
# Which policies apply to a workload
# ---------------------------------------------------------------------------------------------


def applies(policy: Policy, namespace: str, labels: Mapping[str, str], root: str = ROOT_NAMESPACE) -> bool:
    """A sidecar or gateway takes policies of its own namespace and of the root namespace; a
    selector must be a subset of its labels; a sidecar ignores policies with targetRef(s); a Gateway
    API gateway takes targetRefs naming it (Gateway, same namespace), else the selector."""
    if policy.namespace not in (root, namespace) or policy.dry_run:
        return False
    refs = list(policy.spec.get("targetRefs") or [])
    if not refs and policy.spec.get("targetRef"):
        refs = [policy.spec["targetRef"]]
    gateway = labels.get(GATEWAY_NAME_LABEL)
    if refs:
        if gateway is None or policy.namespace != namespace:
            return False
        return any(
            r.get("kind") == "Gateway"
            and r.get("group") == "gateway.networking.k8s.io"
            and r.get("name") == gateway
            and r.get("namespace", namespace) in ("", namespace)
            for r in refs
        )
    wanted = (policy.spec.get("selector") or {}).get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in wanted.items())


# ---------------------------------------------------------------------------------------------
# Value matching (Envoy string, header and metadata matchers as istiod builds them)
# ---------------------------------------------------------------------------------------------


def string_match(pattern: str, value: str | None, prefix: str = "", ignore_case: bool = False) -> bool:
    """Exact, `abc*` prefix, `*abc` suffix, `*` any non-empty value; `prefix` is put before the
    pattern except for `*` (principals get `spiffe://`)."""
    if value is None:
        return False
    if ignore_case:
        pattern, value, prefix = pattern.lower(), value.lower(), prefix.lower()
    if pattern == "*":
        return value != ""
    if pattern.startswith("*"):
        suffix = pattern[1:]
        return len(value) >= len(prefix) + len(suffix) and value.startswith(prefix) and value.endswith(suffix)
    if pattern.endswith("*"):
        return value.startswith(prefix + pattern[:-1])
    return value == prefix + pattern


def header_match(pattern: str, value: str | None) -> bool:
    """A header matcher: `*` is presence (an empty value is present)."""
    if pattern == "*":
        return value is not None
    return string_match(pattern, value)


def _path_match(pattern: str, path: str) -> bool:
    path = path.split("?", 1)[0].split("#", 1)[0]
    if "{*}" in pattern or "{**}" in pattern:
        # Envoy's URI template: {*} one path segment, {**} what is left (it must come last).
        regex = "".join(
            "[^/]+" if part == "{*}" else ".*" if part == "{**}" else re.escape(part)
            for part in re.split(r"(\{\*\*\}|\{\*\})", pattern)
        )
        return re.fullmatch(regex, path) is not None
    return string_match(pattern, path)


def _claim(claims: Mapping[str, Any] | None, path: Sequence[str]) -> Any:
    value: Any = claims
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _claim_match(patterns: Sequence[str], value: Any) -> bool:
    """A string claim matches a pattern, or a list claim has an element that does."""
    items = value if isinstance(value, list) else [value]
    return any(isinstance(v, str) and string_match(p, v) for p in patterns for v in items)


def request_principal_match(pattern: str, claims: Mapping[str, Any] | None) -> bool:
    """`iss/sub` split at the last `/` (issuers are URLs); `*` needs both; `*x` and `x*` apply to
    the issuer or the subject as istiod splits them."""
    iss, sub = _claim(claims, ["iss"]), _claim(claims, ["sub"])
    if not isinstance(iss, str) or not isinstance(sub, str):
        return False
    if pattern == "*":
        return bool(iss) and bool(sub)
    cut = pattern.rfind("/")
    if cut < 0:  # no `/`: the pattern is the issuer, or with a leading `*` a subject suffix
        if pattern.startswith("*"):
            return bool(iss) and sub.endswith(pattern[1:])
        if pattern.endswith("*"):
            return iss.startswith(pattern[:-1]) and bool(sub)
        return iss == pattern and sub == ""
    want_iss, want_sub = pattern[:cut], pattern[cut + 1 :]
    if pattern.startswith("*"):
        iss_ok = bool(iss) if want_iss == "*" else iss.endswith(want_iss[1:])
        return iss_ok and sub == want_sub
    if pattern.endswith("*"):
        sub_ok = bool(sub) if want_sub == "*" else sub.startswith(want_sub[:-1])
        return iss == want_iss and sub_ok
    return iss == want_iss and sub == want_sub


def _ip_in(block: str, address: str | None) -> bool:
    if address is None:
        return False
    return ipaddress.ip_address(address) in ipaddress.ip_network(block, strict=False)


def _spiffe(principal: str | None) -> str | None:
    return None if principal is None else SPIFFE + principal


def _namespace_match(pattern: str, principal: str | None) -> bool:
    regex = ".*".join(re.escape(p) for p in pattern.split("*"))
    uri = _spiffe(principal)
    return uri is not None and re.fullmatch(f".*/ns/{regex}/.*", uri) is not None


def _service_account_match(policy_ns: str, pattern: str, principal: str | None) -> bool:
    ns, cut, sa = pattern.partition("/")
    if not cut:
        ns, sa = policy_ns, pattern
    regex = f"spiffe://.+/ns/{re.escape(ns)}/(.+/|)sa/{re.escape(sa)}(/.+)?"
    uri = _spiffe(principal)
    return uri is not None and re.fullmatch(regex, uri) is not None


def _trust_domain_match(pattern: str, principal: str | None) -> bool:
    uri = _spiffe(principal)
    if uri is None:
        return False
    if pattern == "*":
        return True
    if "*" not in pattern:
        return uri.startswith(f"{SPIFFE}{pattern}/")
    head, tail = pattern.split("*", 1)
    return re.fullmatch(f"spiffe://{re.escape(head)}[^/]*{re.escape(tail)}/.*", uri) is not None


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------

Matcher = Callable[[str, Request], bool]


class _SkipError(Exception):
    """istiod cannot translate a value: an ALLOW rule is dropped, elsewhere the value is."""


def _port(value: str, port: int) -> bool:
    if not value.isdigit() or int(value) > 65535:
        raise _SkipError(f"invalid port {value}")
    return int(value) == port


def _http(match: Matcher) -> Matcher:
    def checked(value: str, request: Request) -> bool:
        if request.protocol != "http":
            raise _SkipError("HTTP only")
        return match(value, request)

    return checked


def _ip(attribute: str) -> Matcher:
    def match(value: str, request: Request) -> bool:
        try:
            return _ip_in(value, getattr(request, attribute))
        except ValueError:
            raise _SkipError(f"invalid IP block {value}") from None

    return match


def _principal(v: str, r: Request) -> bool:
    return string_match(v, _spiffe(r.principal), SPIFFE)


def _host(v: str, r: Request) -> bool:
    return v == "*" or string_match(v, r.host, ignore_case=True)


def _request_principal(v: str, r: Request) -> bool:
    return request_principal_match(v, r.claims)


def _claim_matcher(path: Sequence[str]) -> Matcher:
    return _http(lambda v, r: _claim_match([v], _claim(r.claims, path)))


# Per-value matchers of `source` and `operation` fields, and of `when` keys; `policy_ns` is where
# a service account without a namespace lives.
def _matchers(policy_ns: str) -> dict[str, Matcher]:
    def namespace(v: str, r: Request) -> bool:
        return _namespace_match(v, r.principal)

    def account(v: str, r: Request) -> bool:
        return _service_account_match(policy_ns, v, r.principal)

    def domain(v: str, r: Request) -> bool:
        return _trust_domain_match(v, r.principal)

    def port(v: str, r: Request) -> bool:
        return _port(v, r.port)

    return {
        "principals": _principal,
        "namespaces": namespace,
        "serviceAccounts": account,
        "trustDomains": domain,
        "ipBlocks": _ip("source_ip"),
        "remoteIpBlocks": _ip("remote_ip"),
        "requestPrincipals": _http(_request_principal),
        "hosts": _http(_host),
        "ports": port,
        "methods": _http(lambda v, r: header_match(v, r.method)),
        "paths": _http(lambda v, r: _path_match(v, r.path)),
        "when:source.ip": _ip("source_ip"),
        "when:remote.ip": _ip("remote_ip"),
        "when:destination.ip": _ip("destination_ip"),
        "when:source.namespace": namespace,
        "when:source.principal": _principal,
        "when:source.serviceAccount": account,
        "when:source.trustDomain": domain,
        "when:request.auth.principal": _http(_request_principal),
        "when:request.auth.audiences": _claim_matcher(["aud"]),
        "when:request.auth.presenter": _claim_matcher(["azp"]),
        "when:destination.port": port,
        "when:connection.sni": lambda v, r: string_match(v, r.sni),
    }


def _invalid(why: str) -> Matcher:
    def match(value: str, request: Request) -> bool:
        raise _SkipError(why)

    return match


def _bracketed(key: str, prefix: str) -> list[str] | None:
    """`request.auth.claims[a][b]` -> [a, b]; `request.headers[x]` -> [x]; None if malformed."""
    rest = key[len(prefix) :]
    names = re.findall(r"\[([^\[\]]*)\]", rest)
    return names if names and "".join(f"[{n}]" for n in names) == rest else None


def _when_matcher(key: str, policy_ns: str) -> Matcher | None:
    """The matcher of a `when` key; None for a key istiod refuses (the rule is then dropped). A
    malformed claim or header name fails per value, as istiod translates it."""
    if key.startswith("request.auth.claims"):
        path = _bracketed(key, "request.auth.claims")
        return _invalid(f"bad claim key {key}") if path is None else _claim_matcher(path)
    if key.startswith("request.headers"):
        names = _bracketed(key, "request.headers")
        if names is None or len(names) != 1:
            return _http(_invalid(f"bad header key {key}"))
        name = names[0].lower()
        return _http(lambda v, r: header_match(v, _header(r.headers, name)))
    if key.startswith("experimental.envoy.filters."):
        raise PolicyError(f"when key {key}: Envoy filter metadata cannot be evaluated offline")
    return _matchers(policy_ns).get(f"when:{key}")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


@dataclass(frozen=True)
class _Condition:
    match: Matcher
    values: tuple[str, ...]
    not_values: tuple[str, ...]

    def holds(self, request: Request, action: str) -> bool:
        """values: any matches; notValues: none matches. A value istiod cannot translate drops
        the ALLOW rule (raised) and is left out elsewhere; a side left with no value is no condition."""
        ok = True
        for values, wanted in ((self.values, True), (self.not_values, False)):
            results = []
            for value in values:
                try:
                    results.append(self.match(value, request))
                except _SkipError:
                    if action == "ALLOW":
                        raise
            if results:
                ok = ok and any(results) == wanted
        return ok


_FIELDS = (
    ("principals", "notPrincipals"),
    ("requestPrincipals", "notRequestPrincipals"),
    ("namespaces", "notNamespaces"),
    ("serviceAccounts", "notServiceAccounts"),
    ("trustDomains", "notTrustDomains"),
    ("ipBlocks", "notIpBlocks"),
    ("remoteIpBlocks", "notRemoteIpBlocks"),
    ("hosts", "notHosts"),
    ("ports", "notPorts"),
    ("methods", "notMethods"),
    ("paths", "notPaths"),
)


def _conditions(block: Mapping[str, Any] | None, matchers: Mapping[str, Matcher]) -> list[_Condition]:
    block = block or {}
    return [
        _Condition(matchers[pos], tuple(block.get(pos) or ()), tuple(block.get(neg) or ()))
        for pos, neg in _FIELDS
        if block.get(pos) or block.get(neg)
    ]


def _when(rule: Mapping[str, Any], policy_ns: str) -> list[_Condition] | None:
    found = []
    for cond in rule.get("when") or []:
        match = _when_matcher(str(cond.get("key", "")), policy_ns)
        if match is None:
            return None
        found.append(_Condition(match, tuple(cond.get("values") or ()), tuple(cond.get("notValues") or ())))
    return found


def rule_matches(rule: Mapping[str, Any] | None, policy_ns: str, action: str, request: Request) -> bool:
    """One rule: some `from` source, some `to` operation and every `when` condition hold. A rule
    istiod drops (an unknown `when` key; for ALLOW, a value it cannot translate, such as an HTTP
    field on TCP) matches nothing."""
    if rule is None:
        return False
    when = _when(rule, policy_ns)
    if when is None:
        return False
    matchers = _matchers(policy_ns)
    sources = [_conditions(f.get("source"), matchers) for f in rule.get("from") or []] or [[]]
    operations = [_conditions(t.get("operation"), matchers) for t in rule.get("to") or []] or [[]]
    try:
        # Every condition is checked, as istiod translates each of them before any request.
        source_ok = [all([c.holds(request, action) for c in s]) for s in sources]
        operation_ok = [all([c.holds(request, action) for c in o]) for o in operations]
        when_ok = all([c.holds(request, action) for c in when])
    except _SkipError:
        return False
    return any(source_ok) and any(operation_ok) and when_ok


def matching_rule(policy: Policy, request: Request) -> int | None:
    """The index of the first rule of `policy` that matches; a policy without rules matches nothing."""
    for i, rule in enumerate(policy.spec.get("rules") or []):
        if rule_matches(rule, policy.namespace, policy.action, request):
            return i
    return None


# ---------------------------------------------------------------------------------------------
# The decision
# ---------------------------------------------------------------------------------------------


def _first_match(policies: Sequence[Policy], request: Request) -> tuple[Policy, int] | None:
    for policy in policies:
        rule = matching_rule(policy, request)
        if rule is not None:
            return policy, rule
    return None


def evaluate(policies: Iterable[Policy], request: Request, root: str = ROOT_NAMESPACE) -> Decision:
    """CUSTOM, then DENY, then ALLOW, as the reference's five steps say; AUDIT only marks."""
    mine = sorted(
        (p for p in policies if applies(p, request.namespace, request.labels, root)), key=lambda p: p.key
    )
    layer = {a: [p for p in mine if p.action == a] for a in ACTIONS}
    audited = tuple(p.key for p in layer["AUDIT"] if matching_rule(p, request) is not None)
    pending: tuple[Policy, int] | None = None
    for policy in layer["CUSTOM"]:
        rule = matching_rule(policy, request)
        if rule is None:
            continue
        provider = str((policy.spec.get("provider") or {}).get("name", ""))
        answer = request.ext_authz.get(provider)
        if answer is False:
            return Decision(False, "CUSTOM", f"provider {provider} denies", policy.key, rule, audited)
        if answer is None and pending is None:
            pending = (policy, rule)
    denied = _first_match(layer["DENY"], request)
    if denied is not None:
        return Decision(False, "DENY", "a DENY policy matches", denied[0].key, denied[1], audited)
    if not layer["ALLOW"]:
        decision = Decision(True, "default", "no ALLOW policy applies", audited=audited)
    else:
        allowed = _first_match(layer["ALLOW"], request)
        if allowed is None:
            keys = ", ".join(p.key for p in layer["ALLOW"])
            return Decision(False, "ALLOW", f"no ALLOW policy matches ({keys})", audited=audited)
        decision = Decision(True, "ALLOW", "an ALLOW policy matches", allowed[0].key, allowed[1], audited)
    if pending is not None:
        provider = (pending[0].spec.get("provider") or {}).get("name", "")
        return Decision(None, "CUSTOM", f"provider {provider} decides", pending[0].key, pending[1], audited)
    return decision


# ---------------------------------------------------------------------------------------------
# Other rendered objects the view reads: PeerAuthentication, RequestAuthentication, workloads
# ---------------------------------------------------------------------------------------------


def _selects(obj: Mapping[str, Any], namespace: str, labels: Mapping[str, str], root: str) -> bool:
    meta = obj.get("metadata") or {}
    policy = Policy(str(meta.get("namespace", "default")), str(meta.get("name")), obj.get("spec") or {})
    return applies(policy, namespace, labels, root)


def _of_kind(objects: Iterable[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [
        o
        for o in objects
        if o.get("kind") == kind and str(o.get("apiVersion", "")).startswith("security.istio.io/")
    ]


def mtls_mode(
    objects: Sequence[Mapping[str, Any]],
    namespace: str,
    labels: Mapping[str, str],
    root: str = ROOT_NAMESPACE,
) -> tuple[str, str | None]:
    """The workload's PeerAuthentication mode and the policy that sets it: a workload policy over
    a namespace one over the mesh one (root namespace, no selector); UNSET inherits; PERMISSIVE
    when none is set. Port-level modes are not read.
    Ref: https://istio.io/latest/docs/reference/config/security/peer_authentication/"""
    found = [o for o in _of_kind(objects, "PeerAuthentication") if _selects(o, namespace, labels, root)]

    def rank(o: Mapping[str, Any]) -> int:
        meta = o.get("metadata") or {}
        scoped = bool(((o.get("spec") or {}).get("selector") or {}).get("matchLabels"))
        return 2 if scoped else 1 if meta.get("namespace") == namespace != root else 0

    for obj in sorted(found, key=rank, reverse=True):
        mode = str(((obj.get("spec") or {}).get("mtls") or {}).get("mode") or "UNSET")
        if mode != "UNSET":
            meta = obj.get("metadata") or {}
            return mode, f"{meta.get('namespace')}/{meta.get('name')}"
    return "PERMISSIVE", None


def jwt_rules(
    objects: Sequence[Mapping[str, Any]],
    namespace: str,
    labels: Mapping[str, str],
    root: str = ROOT_NAMESPACE,
) -> list[Mapping[str, Any]]:
    """The jwtRules of the RequestAuthentications that apply to the workload."""

    def key(o: Mapping[str, Any]) -> tuple[str, str]:
        meta = o.get("metadata") or {}
        return str(meta.get("namespace")), str(meta.get("name"))

    return [
        rule
        for obj in sorted(_of_kind(objects, "RequestAuthentication"), key=key)
        if _selects(obj, namespace, labels, root)
        for rule in (obj.get("spec") or {}).get("jwtRules") or []
    ]


@dataclass(frozen=True)
class Workload:
    namespace: str
    service_account: str
    labels: Mapping[str, str]


def workloads(objects: Iterable[Mapping[str, Any]]) -> list[Workload]:
    """Pods' identities from rendered Deployments, StatefulSets and DaemonSets."""
    found = []
    for obj in objects:
        if obj.get("kind") not in ("Deployment", "StatefulSet", "DaemonSet"):
            continue
        template = (obj.get("spec") or {}).get("template") or {}
        pod = template.get("spec") or {}
        found.append(
            Workload(
                str((obj.get("metadata") or {}).get("namespace", "default")),
                str(pod.get("serviceAccountName") or "default"),
                (template.get("metadata") or {}).get("labels") or {},
            )
        )
    return found


def service_selector(
    objects: Iterable[Mapping[str, Any]], namespace: str, name: str
) -> Mapping[str, str] | None:
    for obj in objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == "Service" and meta.get("namespace") == namespace and meta.get("name") == name:
            return (obj.get("spec") or {}).get("selector") or {}
    return None


# ---------------------------------------------------------------------------------------------
# The view: per unit, per app, which caller with which token
# ---------------------------------------------------------------------------------------------

# The ingress gateway's service account is the chart's `name` value (components.mesh sets it).
# Ref: istio/istio@1.30.3 manifests/charts/gateway/templates/_helpers.tpl (gateway.serviceAccountName)
GATEWAY = "ingress gateway"
ANOTHER_NAMESPACE = "another-namespace"  # not a DNS label a unit's config names (see the view's note)
SUBJECT = "user"
REQUEST_PATH = "/"


@dataclass(frozen=True)
class Caller:
    label: str
    principal: str | None  # None: plaintext


@dataclass(frozen=True)
class Token:
    label: str
    claims: Mapping[str, Any] | None  # None: no token


@dataclass(frozen=True)
class AppView:
    app: str
    kind: str
    namespace: str
    port: int
    protocol: str
    labels: Mapping[str, str]
    labels_from: str  # where the labels come from (config) and what a rendered Service selects
    note: str  # why AuthorizationPolicy does not apply (outside the mesh, UDP), or ""
    tokens: tuple[Token, ...] = ()
    rows: tuple[tuple[Caller, tuple[Decision, ...]], ...] = ()


@dataclass(frozen=True)
class EgressEntry:
    namespace: str
    identities: tuple[str, ...]  # SPIFFE ids (a `*` service account: any of the namespace)
    snat: tuple[str, ...]
    own_snat: bool


@dataclass(frozen=True)
class UnitView:
    unit: str
    trust_domain: str
    apps: tuple[AppView, ...]
    egress: str | None  # "vip:port to proxy", None without an egress gateway
    egress_entries: tuple[EgressEntry, ...] = ()


def _claim_value(path: Sequence[str], value: str) -> dict[str, Any]:
    out: dict[str, Any] = {path[-1]: [value]}
    for key in reversed(path[:-1]):
        out = {key: out}
    return out


def _required_claims(found: Sequence[Policy]) -> list[tuple[tuple[str, ...], str]]:
    """(claim path, value) pairs the applicable policies test, wildcards left out."""
    pairs: list[tuple[tuple[str, ...], str]] = []
    for policy in found:
        for rule in policy.spec.get("rules") or []:
            for cond in (rule or {}).get("when") or []:
                key = str(cond.get("key", ""))
                path = (
                    _bracketed(key, "request.auth.claims") if key.startswith("request.auth.claims") else None
                )
                for value in cond.get("values") or []:
                    if path and "*" not in value and (tuple(path), value) not in pairs:
                        pairs.append((tuple(path), value))
    return pairs


def candidate_tokens(rules: Sequence[Mapping[str, Any]], found: Sequence[Policy]) -> list[Token]:
    """No token; per issuer the workload's RequestAuthentication accepts, a token without the
    claims the policies test, one with each, and one with all of them."""
    tokens = [Token("no token", None)]
    pairs = _required_claims(found)
    for rule in rules:
        issuer = str(rule.get("issuer", ""))
        base: dict[str, Any] = {"iss": issuer, "sub": SUBJECT}
        if rule.get("audiences"):
            base["aud"] = [rule["audiences"][0]]
        short = issuer if len(rules) > 1 else ""
        tokens.append(
            Token(
                f"token {short}".rstrip() + " without " + ("the tested claims" if pairs else "claims"), base
            )
        )
        combos = [[p] for p in pairs] + ([pairs] if len(pairs) > 1 else [])
        for combo in combos:
            claims = dict(base)
            for path, value in combo:
                claims = _merge(claims, _claim_value(path, value))
            shown = ", ".join(f"{'.'.join(p)}={v}" for p, v in combo)
            tokens.append(Token(f"token {short}".rstrip() + f" with {shown}", claims))
    return tokens


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = [*out[key], *value]
        else:
            out[key] = value
    return out


def _named_principals(found: Sequence[Policy]) -> list[str]:
    """Exact principals the policies name (declared callers), wildcards left out."""
    names = []
    for policy in found:
        for rule in policy.spec.get("rules") or []:
            for source in (rule or {}).get("from") or []:
                for value in (source.get("source") or {}).get("principals") or []:
                    if "*" not in value and value not in names:
                        names.append(value)
    return names


def _issuer(app: Any) -> str | None:
    return str(app.access.token.issuer) if app.access and app.access.token else None


def tokenless(unit: Any, app: Any) -> Mapping[str, str]:
    """For an app with a token: namespace -> a note, for each declared caller's namespace where no
    app gets a user token of that issuer (the caller has none to forward, so its token columns are
    edges no request takes)."""
    issuer = _issuer(app)
    if issuer is None:
        return {}
    holders = {a.namespace for a in unit.apps if _issuer(a) == issuer}
    return {
        c.namespace: f"no app of {c.namespace} gets a user token from {issuer}, so it has none to forward"
        for c in app.callers
        if c.namespace not in holders
    }


def candidate_callers(
    trust_domain: str,
    namespace: str,
    pods: Sequence[Workload],
    declared: Sequence[tuple[str, str]],
    found: Sequence[Policy],
    *,
    notes: Mapping[str, str] | None = None,
) -> list[Caller]:
    """The ingress gateway, the rendered workloads, declared callers (with `notes` by namespace)
    and principals the policies name, another workload of the app's namespace, a workload of
    another namespace, plaintext."""
    notes = notes or {}

    def spiffe(ns: str, sa: str) -> str:
        return meshauthz.principal(trust_domain, ns, sa)

    callers = [
        Caller(
            f"{GATEWAY} ({GATEWAY_NAMESPACE}/{GATEWAY_RELEASE})",
            spiffe(GATEWAY_NAMESPACE, meshauthz.GATEWAY_SERVICE_ACCOUNT),
        )
    ]
    seen = {c.principal for c in callers}
    accounts = sorted({(w.namespace, w.service_account) for w in pods})
    named = [(f"{ns}/{sa}", spiffe(ns, sa)) for ns, sa in accounts]
    named += [
        (f"{ns}/{sa} (declared caller" + (f"; {notes[ns]})" if ns in notes else ")"), spiffe(ns, sa))
        for ns, sa in declared
    ]
    named += [(p, p) for p in _named_principals(found)]
    named += [
        (f"another workload of {namespace}", spiffe(namespace, "another")),
        ("a workload of another namespace", spiffe(ANOTHER_NAMESPACE, "default")),
    ]
    for label, principal in named:
        if principal not in seen:
            seen.add(principal)
            callers.append(Caller(label, principal))
    callers.append(Caller("plaintext (no mTLS)", None))
    return callers


def _decide(found: Sequence[Policy], request: Request, mtls: tuple[str, str | None], root: str) -> Decision:
    if request.principal is None and mtls[0] == "STRICT":
        return Decision(False, "mTLS", "STRICT mTLS refuses plaintext", mtls[1])
    return evaluate(found, request, root)


def workload_labels(app: Any, selector: Mapping[str, str] | None) -> tuple[Mapping[str, str], str]:
    """The labels the app's policies select (config: apps[].workloadLabels, else app: <service>;
    cpaas deploys neither the pods nor, outside the demo, their Service), and where they come from,
    with what a rendered Service of the app selects."""
    configured = app.workload_labels
    labels: Mapping[str, str] = app.pod_labels
    source = (
        "from config apps[].workloadLabels"
        if configured is not None
        else "from config: apps[].workloadLabels unset, so app: <service>"
    )
    if not selector:
        return labels, source
    if dict(selector) == dict(labels):
        return labels, f"{source}; Service {app.service} selects the same"
    shown = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    fits = "match" if selector.items() <= labels.items() else "do not match"
    return labels, f"{source}; Service {app.service} selects {shown}, which these labels {fits}"


def app_view(
    unit: Any, app: Any, objects: Sequence[Mapping[str, Any]], found: Sequence[Policy], root: str
) -> AppView:
    """`unit` and `app` are config models (components.config Unit and App)."""
    labels, labels_from = workload_labels(app, service_selector(objects, app.namespace, app.service))
    port = app.workload_port
    protocol = "tcp" if app.kind in ("tcp", "udp") else "http"
    base = AppView(app.name, app.kind, app.namespace, port, protocol, labels, labels_from, "")
    if app.namespace not in unit.mesh.injected_namespaces:
        return replace(base, note="outside the mesh (no sidecar): AuthorizationPolicy does not apply")
    if app.kind == "udp":
        return replace(
            base, note="UDP: the sidecar does not intercept it, AuthorizationPolicy does not apply"
        )
    mine = [p for p in found if applies(p, app.namespace, labels, root)]
    tokens = (
        candidate_tokens(jwt_rules(objects, app.namespace, labels, root), mine) if protocol == "http" else []
    )
    tokens = tokens or [Token("no token", None)]
    declared = [(c.namespace, c.service_account) for c in app.callers]
    pods = [w for w in workloads(objects) if w.namespace in unit.mesh.injected_namespaces]
    callers = candidate_callers(
        unit.mesh.trust_domain, app.namespace, pods, declared, mine, notes=tokenless(unit, app)
    )
    mtls = mtls_mode(objects, app.namespace, labels, root)
    rows = []
    for caller in callers:
        decisions = []
        for token in tokens:
            request = Request(
                app.namespace, labels, port, protocol, caller.principal, token.claims,
                method="GET", path=REQUEST_PATH, host=str(app.fqdn or ""),
            )  # fmt: skip
            decisions.append(_decide(found, request, mtls, root))
        rows.append((caller, tuple(decisions)))
    return replace(base, tokens=tuple(tokens), rows=tuple(rows))


def egress_view(unit: Any) -> tuple[str | None, tuple[EgressEntry, ...]]:
    """Who the BIG-IP egress gateway's iRule lets out (config units[].egress.allow), and the SNAT
    address each leaves with: its own, or the shared pool."""
    egress = unit.egress
    if egress is None:
        return None, ()
    proxy = egress.forward_proxy
    where = f"{egress.vip}:{egress.port} to the forward proxy {proxy.address}:{proxy.port}"
    entries = []
    for allow in egress.allow:
        accounts = allow.service_accounts or ("*",)
        ids = tuple(
            SPIFFE + meshauthz.principal(unit.mesh.trust_domain, allow.namespace, sa) for sa in accounts
        )
        own = allow.snat_address is not None
        snat = (str(allow.snat_address),) if own else tuple(str(a) for a in egress.snat_addresses)
        entries.append(EgressEntry(allow.namespace, ids, snat, own))
    return where, tuple(entries)


def unit_view(unit: Any, objects: Sequence[Mapping[str, Any]], root: str = ROOT_NAMESPACE) -> UnitView:
    found = sorted(policies_of(objects), key=lambda p: p.key)
    apps = tuple(app_view(unit, app, objects, found, root) for app in unit.apps)
    where, entries = egress_view(unit)
    return UnitView(unit.name, unit.mesh.trust_domain, apps, where, entries)


def k8s_objects(regs: Iterable[Any], unit_of: Mapping[str, str]) -> dict[str, list[Mapping[str, Any]]]:
    """Rendered Kubernetes objects (registrations' inputs with apiVersion and kind) per unit."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for reg in regs:
        inputs = reg.inputs
        if reg.type.startswith("kubernetes:") and "apiVersion" in inputs and "kind" in inputs:
            out.setdefault(unit_of.get(reg.urn, ""), []).append(inputs)
    return out


def mesh_roots(regs: Iterable[Any], unit_of: Mapping[str, str]) -> dict[str, str]:
    """Each unit's root namespace: istiod's meshConfig.rootNamespace where its values set one.
    Ref: istio/istio@1.30.3 pkg/config/mesh/mesh.go (RootNamespace defaults to istio-system)"""
    roots = {}
    for reg in regs:
        if reg.type == HELM_RELEASE and str(reg.inputs.get("chart", "")).rsplit("/", 1)[-1] == "istiod":
            root = ((reg.inputs.get("values") or {}).get("meshConfig") or {}).get("rootNamespace")
            if root:
                roots[unit_of.get(reg.urn, "")] = str(root)
    return roots


def views(
    stack: Any, regs: Sequence[Any], unit_of: Mapping[str, str], only: str | None = None
) -> list[UnitView]:
    """The view of each unit (or `only` that one) from a run's registrations."""
    objects, roots = k8s_objects(regs, unit_of), mesh_roots(regs, unit_of)
    return [
        unit_view(u, objects.get(u.name, []), roots.get(u.name, ROOT_NAMESPACE))
        for u in stack.units
        if only is None or u.name == only
    ]


# ---------------------------------------------------------------------------------------------
# Output: text (the CLI), Markdown (summary.md), JSON
# ---------------------------------------------------------------------------------------------

_WORD = {True: "allow", False: "deny", None: "?"}


def _labels(view: AppView) -> str:
    shown = ",".join(f"{k}={v}" for k, v in sorted(view.labels.items()))
    return f"{shown} ({view.labels_from})"


def _egress_lines(view: UnitView, bullet: str, indent: str) -> list[str]:
    if view.egress is None:
        return [f"{bullet}egress: no BIG-IP egress gateway"]
    lines = [f"{bullet}egress through the BIG-IP, {view.egress}:"]
    for e in view.egress_entries:
        ids = ", ".join(i.replace("/sa/*", "/sa/* (any service account)") for i in e.identities)
        snat = ", ".join(e.snat) + (" (its own)" if e.own_snat else " (the shared pool)")
        lines.append(f"{indent}{ids} leaves with SNAT {snat}")
    return lines


def _cell(d: Decision) -> str:
    return "deny (mTLS)" if d.action == "mTLS" else _WORD[d.allowed]


def _md(label: str) -> str:
    return label.replace("|", "\\|")


def text(views_: Sequence[UnitView]) -> str:
    lines = [
        f"Requests: GET {REQUEST_PATH} to each app's workload port, Host its FQDN; tokens are ones the "
        "app's RequestAuthentication accepts. Outbound calls are not subject to the destination's policies."
    ]
    for view in views_:
        lines += ["", f"Unit {view.unit} (trust domain {view.trust_domain})"]
        for app in view.apps:
            head = f"  {app.app} ({app.kind}) in {app.namespace}, port {app.port}/{app.protocol}"
            if app.note:
                lines.append(f"{head}: {app.note}")
                continue
            lines.append(f"{head}, workload {_labels(app)}")
            width = max(len(t.label) for t in app.tokens)
            for caller, decisions in app.rows:
                lines.append(f"    {caller.label}")
                for token, d in zip(app.tokens, decisions, strict=True):
                    lines.append(f"      {token.label:<{width}}  {_WORD[d.allowed]:<5}  {d.by()}")
        lines += _egress_lines(view, "  ", "    ")
    return "\n".join(lines) + "\n"


def markdown(views_: Sequence[UnitView]) -> list[str]:
    """summary.md's section: per unit, a caller x token table per app (allow, deny, ? for a CUSTOM
    provider's answer), and the egress identities with their SNAT addresses."""
    lines = [
        "## Who can reach what",
        "",
        f"Decided by `python -m tools.authz` over the rendered policies: GET {REQUEST_PATH} to each app's "
        "workload port (Istio's order: CUSTOM, DENY, ALLOW).",
        "",
    ]
    for view in views_:
        lines += [f"### Unit `{view.unit}`", ""]
        for app in view.apps:
            head = f"- `{app.app}` ({app.kind}), `{app.namespace}` port {app.port}/{app.protocol}"
            if app.note:
                lines.append(f"{head}: {app.note}")
                continue
            lines += [f"{head}, workload {_labels(app)}", ""]
            lines.append("  | caller | " + " | ".join(_md(t.label) for t in app.tokens) + " |")
            lines.append("  |---|" + "---|" * len(app.tokens))
            for caller, decisions in app.rows:
                cells = " | ".join(_cell(d) for d in decisions)
                lines.append(f"  | {_md(caller.label)} | {cells} |")
            lines.append("")
        lines += [*_egress_lines(view, "- ", "  - "), ""]
    return lines


def as_json(views_: Sequence[UnitView]) -> list[dict[str, Any]]:
    def decision(d: Decision) -> dict[str, Any]:
        return {
            "allowed": d.allowed,
            "action": d.action,
            "reason": d.reason,
            "policy": d.policy,
            "rule": d.rule,
        }

    return [
        {
            "unit": v.unit,
            "trustDomain": v.trust_domain,
            "apps": [
                {
                    "app": a.app,
                    "kind": a.kind,
                    "namespace": a.namespace,
                    "port": a.port,
                    "protocol": a.protocol,
                    "labels": dict(a.labels),
                    "note": a.note,
                    "calls": [
                        {
                            "caller": c.label,
                            "principal": c.principal,
                            "token": t.label,
                            "claims": t.claims,
                            **decision(d),
                        }
                        for c, decisions in a.rows
                        for t, d in zip(a.tokens, decisions, strict=True)
                    ],
                }
                for a in v.apps
            ],
            "egress": {
                "gateway": v.egress,
                "allow": [
                    {
                        "namespace": e.namespace,
                        "identities": list(e.identities),
                        "snat": list(e.snat),
                        "ownSnat": e.own_snat,
                    }
                    for e in v.egress_entries
                ],
            },
        }
        for v in views_
    ]


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.authz", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--unit", help="only this unit")
    parser.add_argument("--json", help="also write the view as JSON to this file")
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    from tools import graph, render

    args = _parser().parse_args(list(argv) if argv is not None else None)
    try:
        checked = render.check(args.stack)
    except render.StackFileError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        print(f"authz: stack {args.stack} has {exc.count()}", file=sys.stderr)
        return 2
    names = [u.name for u in checked.stack.units]
    if args.unit is not None and args.unit not in names:  # before the build: a typo fails at once
        print(
            f"authz: --unit {args.unit}: no such unit in stack {args.stack}; units: {', '.join(names)}",
            file=sys.stderr,
        )
        return 2
    stack, run, _notes = render.evaluate(args.stack, checked=checked)
    by_urn = {r.urn: r for r in run.registrations}
    unit_of = {r.urn: graph.unit_of(r, by_urn) or "" for r in run.registrations}
    try:
        found = views(stack, run.registrations, unit_of, args.unit)
    except PolicyError as exc:
        print(f"authz: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text(found))
    if args.json:
        Path(args.json).write_text(json.dumps(as_json(found), indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
