"""tools.authz: Istio's authorization evaluated offline, and the reachability view.

The evaluator's cases follow the examples of Istio's own documentation, each named by its page:
- reference: istio/api@1.30.3 security/v1beta1/authorization_policy.proto (the text of
  https://istio.io/latest/docs/reference/config/security/authorization-policy/)
- concepts: istio.io content/en/docs/concepts/security/index.md, section Authorization
  (https://istio.io/latest/docs/concepts/security/#authorization)
- tasks: istio.io content/en/docs/tasks/security/authorization/{authz-http,authz-jwt,authz-deny,authz-tcp}
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from components import config
from tests import support
from tools import authz, engine
from tools.authz import Request

SLEEP = "cluster.local/ns/default/sa/sleep"
HTTPBIN = {"app": "httpbin", "version": "v1"}


def policies(text: str) -> list[authz.Policy]:
    """AuthorizationPolicies from YAML documents, as the docs write them."""
    return authz.policies_of(d for d in yaml.safe_load_all(text) if d)


def allowed(found: list[authz.Policy], request: Request, root: str = authz.ROOT_NAMESPACE) -> bool | None:
    return authz.evaluate(found, request, root).allowed


def req(**kwargs: Any) -> Request:
    base: dict[str, Any] = {"namespace": "foo", "labels": HTTPBIN, "port": 8000, "principal": SLEEP}
    return Request(**{**base, **kwargs})


# ---------------------------------------------------------------------------------------------
# allow-nothing, deny-all, allow-all
# ---------------------------------------------------------------------------------------------


def test_a_workload_without_policies_allows_every_request() -> None:
    # concepts, "Implicit enablement": no policy applied, Istio allows all requests.
    decision = authz.evaluate([], req(principal=None))
    assert decision.allowed is True
    assert decision.action == "default"


ALLOW_NOTHING_FOO = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: foo}
spec: {}
"""


def test_the_reference_allow_nothing_policy_denies_every_request_in_its_namespace() -> None:
    # reference: "allow-nothing" in namespace foo with `spec: {}` denies all requests to foo.
    found = policies(ALLOW_NOTHING_FOO)
    decision = authz.evaluate(found, req())
    assert decision.allowed is False
    assert decision.action == "ALLOW"
    assert "foo/allow-nothing" in decision.reason
    assert allowed(found, req(namespace="bar")) is True


def test_the_concepts_deny_all_policy_wins_over_the_allow_all_policy() -> None:
    # concepts: `deny-all` (DENY, rules: [{}]) always denies even with `allow-all` (ALLOW, rules: [{}]).
    allow_all = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: foo}
spec: {action: ALLOW, rules: [{}]}
"""
    deny_all = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: foo}
spec: {action: DENY, rules: [{}]}
"""
    assert allowed(policies(allow_all), req(principal=None, method="DELETE")) is True
    decision = authz.evaluate(policies(allow_all + "---" + deny_all), req())
    assert (decision.allowed, decision.action, decision.policy, decision.rule) == (
        False,
        "DENY",
        "foo/deny-all",
        0,
    )


def test_a_deny_policy_without_rules_denies_nothing() -> None:
    # reference, `rules`: "If not set, the match will never occur" (builder.go: rbacPolicyMatchNever).
    found = policies("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-nothing, namespace: foo}
spec: {action: DENY}
""")
    assert allowed(found, req()) is True


def test_the_reference_allow_nothing_for_label_version_v1_in_the_root_namespace_applies_mesh_wide() -> None:
    # reference: allow-nothing in istio-system selecting `version: v1` applies in all namespaces.
    found = policies("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: istio-system}
spec:
  selector: {matchLabels: {version: v1}}
""")
    assert allowed(found, req(namespace="foo", labels={"app": "a", "version": "v1"})) is False
    assert allowed(found, req(namespace="bar", labels={"app": "b", "version": "v1"})) is False
    assert allowed(found, req(namespace="bar", labels={"app": "b", "version": "v2"})) is True
    # With another root namespace, istio-system is an ordinary namespace.
    assert allowed(found, req(namespace="bar", labels={"version": "v1"}), root="mesh-root") is True


# ---------------------------------------------------------------------------------------------
# The reference's examples
# ---------------------------------------------------------------------------------------------

REFERENCE_HTTPBIN = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: httpbin, namespace: foo}
spec:
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/sleep"]
    - source:
        namespaces: ["test"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/info*"]
    - operation:
        methods: ["POST"]
        paths: ["/data"]
    when:
    - key: request.auth.claims[iss]
      values: ["https://accounts.google.com"]
"""
GOOGLE = {"iss": "https://accounts.google.com", "sub": "alice"}


@pytest.mark.parametrize(
    ("principal", "method", "path", "claims", "expected"),
    [
        (SLEEP, "GET", "/info", GOOGLE, True),
        (SLEEP, "GET", "/info/more?x=1", GOOGLE, True),
        ("cluster.local/ns/test/sa/anyone", "POST", "/data", GOOGLE, True),
        (SLEEP, "POST", "/info", GOOGLE, False),  # the method and path of one operation together
        (SLEEP, "GET", "/data", GOOGLE, False),
        ("cluster.local/ns/other/sa/sleep", "GET", "/info", GOOGLE, False),
        (None, "GET", "/info", GOOGLE, False),  # plaintext has no principal and no namespace
        (SLEEP, "GET", "/info", None, False),  # no token: no iss claim
        (SLEEP, "GET", "/info", {"iss": "https://example.com", "sub": "a"}, False),
    ],
)
def test_the_reference_httpbin_example_allows_sleep_or_namespace_test_on_its_operations_with_a_google_token(
    principal: str | None, method: str, path: str, claims: dict[str, Any] | None, expected: bool
) -> None:
    found = policies(REFERENCE_HTTPBIN)
    assert allowed(found, req(principal=principal, method=method, path=path, claims=claims)) is expected


def test_the_reference_deny_example_refuses_post_from_namespace_dev_on_every_workload_of_foo() -> None:
    found = policies("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: httpbin, namespace: foo}
spec:
  action: DENY
  rules:
  - from: [{source: {namespaces: ["dev"]}}]
    to: [{operation: {methods: ["POST"]}}]
""")
    dev = "cluster.local/ns/dev/sa/x"
    assert allowed(found, req(principal=dev, method="POST", labels={"app": "any"})) is False
    assert allowed(found, req(principal=dev, method="GET")) is True
    assert allowed(found, req(principal=SLEEP, method="POST")) is True


DENY_POST_8080 = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: httpbin, namespace: foo}
spec:
  action: DENY
  rules:
  - to: [{operation: {methods: ["POST"], ports: ["8080"]}}]
"""


def test_the_reference_deny_post_on_port_8080_denies_all_tcp_traffic_on_8080() -> None:
    # reference: on TCP the HTTP-only `methods` is left out of a DENY rule, so all TCP on 8080 is denied.
    found = policies(DENY_POST_8080)
    assert allowed(found, req(port=8080, method="POST")) is False
    assert allowed(found, req(port=8080, method="GET")) is True
    assert allowed(found, req(port=8080, protocol="tcp")) is False
    assert allowed(found, req(port=9090, protocol="tcp")) is True


def test_an_allow_rule_with_http_only_fields_matches_no_tcp_traffic() -> None:
    # concepts, "plain TCP protocols": HTTP-only fields cannot apply; istiod drops the ALLOW rule
    # (model.go checkError), so the workload, having an ALLOW policy, refuses the TCP connection.
    found = policies("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: tcp-methods, namespace: foo}
spec:
  rules:
  - to: [{operation: {methods: ["GET"], ports: ["27017"]}}]
""")
    assert allowed(found, req(port=27017, protocol="tcp")) is False
    assert allowed(found, req(port=27017)) is True


def test_the_reference_custom_example_asks_its_provider_only_for_admin_paths_of_the_gateway() -> None:
    found = policies("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext-authz, namespace: istio-system}
spec:
  selector: {matchLabels: {app: istio-ingressgateway}}
  action: CUSTOM
  provider: {name: my-custom-authz}
  rules:
  - to: [{operation: {paths: ["/admin/*"]}}]
""")
    gateway = {"namespace": "istio-ingress", "labels": {"app": "istio-ingressgateway"}, "principal": None}
    denied = authz.evaluate(found, req(**gateway, path="/admin/x", ext_authz={"my-custom-authz": False}))
    assert (denied.allowed, denied.action, denied.policy) == (False, "CUSTOM", "istio-system/ext-authz")
    assert allowed(found, req(**gateway, path="/admin/x", ext_authz={"my-custom-authz": True})) is True
    unknown = authz.evaluate(found, req(**gateway, path="/admin/x"))
    assert unknown.allowed is None
    assert "my-custom-authz decides" in unknown.reason
    assert allowed(found, req(**gateway, path="/public")) is True


def test_custom_comes_first_and_cannot_bypass_a_deny() -> None:
    # reference, CUSTOM: a request is allowed only if all the actions allow it.
    custom = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: foo}
spec: {action: CUSTOM, provider: {name: p}, rules: [{}]}
"""
    found = policies(custom + "---" + ALLOW_NOTHING_FOO)
    decision = authz.evaluate(found, req(ext_authz={"p": True}))
    assert (decision.allowed, decision.action) == (False, "ALLOW")
    # The provider's answer unknown, and the rest denies: denied whatever the provider says.
    assert allowed(found, req()) is False


def test_the_reference_dry_run_deny_policy_is_not_enforced() -> None:
    found = policies("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: dry-run-example
  namespace: foo
  annotations: {"istio.io/dry-run": "true"}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/headers"]}}]
""")
    assert allowed(found, req(path="/headers")) is True
    enforced = [authz.Policy(p.namespace, p.name, p.spec, {}) for p in found]
    assert allowed(enforced, req(path="/headers")) is False


def test_the_reference_audit_example_marks_get_on_user_profile_and_decides_nothing() -> None:
    found = policies("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {namespace: ns1, name: anyname}
spec:
  selector: {matchLabels: {app: myapi}}
  action: AUDIT
  rules:
  - to: [{operation: {methods: ["GET"], paths: ["/user/profile/*"]}}]
""")
    decision = authz.evaluate(found, req(namespace="ns1", labels={"app": "myapi"}, path="/user/profile/1"))
    assert (decision.allowed, decision.audited) == (True, ("ns1/anyname",))
    assert authz.evaluate(found, req(namespace="ns1", labels={"app": "myapi"}, path="/x")).audited == ()


# ---------------------------------------------------------------------------------------------
# The concepts page's examples
# ---------------------------------------------------------------------------------------------


def test_the_concepts_httpbin_deny_refuses_sources_outside_namespace_foo_and_plaintext() -> None:
    found = policies("""
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: httpbin-deny, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin, version: v1}}
  action: DENY
  rules:
  - from: [{source: {notNamespaces: ["foo"]}}]
""")
    assert allowed(found, req(principal="cluster.local/ns/foo/sa/a")) is True
    assert allowed(found, req(principal="cluster.local/ns/bar/sa/a")) is False
    assert allowed(found, req(principal=None)) is False  # no namespace at all is "not foo"
    assert allowed(found, req(principal="cluster.local/ns/bar/sa/a", labels={"app": "httpbin"})) is True


def test_the_concepts_allow_read_policy_allows_get_and_head_to_products_only() -> None:
    found = policies("""
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: allow-read, namespace: default}
spec:
  selector: {matchLabels: {app: products}}
  action: ALLOW
  rules:
  - to: [{operation: {methods: ["GET", "HEAD"]}}]
""")
    products = {"namespace": "default", "labels": {"app": "products"}}
    assert allowed(found, req(**products, method="HEAD", principal=None)) is True
    assert allowed(found, req(**products, method="POST")) is False
    assert allowed(found, req(**products, method="get")) is False  # methods match exactly
    assert allowed(found, req(namespace="default", labels={"app": "other"}, method="POST")) is True


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/test/a", True),
        ("/test/", True),
        ("/a/b/info", True),
        ("/info", True),
        ("/test", False),
        ("/x", False),
    ],
)
def test_the_concepts_tester_policy_matches_path_prefixes_and_suffixes(path: str, expected: bool) -> None:
    found = policies("""
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: tester, namespace: default}
spec:
  selector: {matchLabels: {app: products}}
  action: ALLOW
  rules:
  - to: [{operation: {paths: ["/test/*", "*/info"]}}]
""")
    assert allowed(found, req(namespace="default", labels={"app": "products"}, path=path)) is expected


def test_the_concepts_disable_jwt_for_healthz_requires_a_token_except_on_healthz() -> None:
    # concepts, "Exclusion matching": with this ALLOW only, /healthz matches no rule and is denied too;
    # the page's point is that the token is required only where notPaths holds.
    found = policies("""
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: disable-jwt-for-healthz, namespace: default}
spec:
  selector: {matchLabels: {app: products}}
  action: ALLOW
  rules:
  - to: [{operation: {notPaths: ["/healthz"]}}]
    from: [{source: {requestPrincipals: ["*"]}}]
""")
    products = {"namespace": "default", "labels": {"app": "products"}}
    token = {"iss": "https://idp", "sub": "u"}
    assert allowed(found, req(**products, path="/api", claims=token)) is True
    assert allowed(found, req(**products, path="/api")) is False
    assert allowed(found, req(**products, path="/healthz", claims=token)) is False


def test_the_concepts_enable_jwt_for_admin_denies_admin_without_a_request_principal() -> None:
    found = policies("""
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: enable-jwt-for-admin, namespace: default}
spec:
  selector: {matchLabels: {app: products}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin"]}}]
    from: [{source: {notRequestPrincipals: ["*"]}}]
""")
    products = {"namespace": "default", "labels": {"app": "products"}}
    assert allowed(found, req(**products, path="/admin")) is False
    assert allowed(found, req(**products, path="/admin", claims={"iss": "i", "sub": "s"})) is True
    assert allowed(found, req(**products, path="/other")) is True


def test_the_concepts_principals_star_allows_only_authenticated_peers() -> None:
    found = policies("""
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: httpbin, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin, version: v1}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["*"]}}]
    to: [{operation: {methods: ["GET", "POST"]}}]
""")
    assert allowed(found, req(principal="any.domain/ns/x/sa/y")) is True
    assert allowed(found, req(principal=None)) is False


def test_the_concepts_mongodb_policy_allows_ratings_v2_on_port_27017_over_tcp() -> None:
    found = policies("""
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: mongodb-policy, namespace: default}
spec:
  selector: {matchLabels: {app: mongodb}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/bookinfo-ratings-v2"]}}]
    to: [{operation: {ports: ["27017"]}}]
""")
    mongo = {"namespace": "default", "labels": {"app": "mongodb"}, "protocol": "tcp"}
    assert (
        allowed(found, req(**mongo, port=27017, principal="cluster.local/ns/default/sa/bookinfo-ratings-v2"))
        is True
    )
    assert (
        allowed(found, req(**mongo, port=27017, principal="cluster.local/ns/default/sa/bookinfo-ratings"))
        is False
    )
    assert (
        allowed(found, req(**mongo, port=27018, principal="cluster.local/ns/default/sa/bookinfo-ratings-v2"))
        is False
    )


# ---------------------------------------------------------------------------------------------
# The tasks' examples
# ---------------------------------------------------------------------------------------------

BOOKINFO_TASK = """
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: default}
spec: {}
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: productpage-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  rules:
  - to: [{operation: {methods: ["GET"]}}]
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: details-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}}]
    to: [{operation: {methods: ["GET"]}}]
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: reviews-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: reviews}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}}]
    to: [{operation: {methods: ["GET"]}}]
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: {name: ratings-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: ratings}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/default/sa/bookinfo-reviews"]}}]
    to: [{operation: {methods: ["GET"]}}]
"""


def _bookinfo(app: str, caller: str | None, method: str = "GET") -> Request:
    principal = None if caller is None else f"cluster.local/ns/default/sa/{caller}"
    return Request("default", {"app": app}, 9080, principal=principal, method=method)


def test_the_authz_http_task_opens_bookinfo_one_call_at_a_time() -> None:
    everything = policies(BOOKINFO_TASK)
    only_deny_all = everything[:1]
    assert allowed(only_deny_all, _bookinfo("productpage", "istio-ingressgateway")) is False
    assert allowed(everything, _bookinfo("productpage", "istio-ingressgateway")) is True
    assert allowed(everything, _bookinfo("productpage", None, "POST")) is False
    assert allowed(everything, _bookinfo("details", "bookinfo-productpage")) is True
    assert allowed(everything, _bookinfo("reviews", "bookinfo-productpage")) is True
    assert allowed(everything, _bookinfo("ratings", "bookinfo-reviews")) is True
    decision = authz.evaluate(everything, _bookinfo("ratings", "bookinfo-productpage"))
    assert decision.allowed is False
    assert decision.reason.startswith("no ALLOW policy matches")


REQUIRE_JWT = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: ALLOW
  rules:
  - from:
    - source:
       requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]
"""
TOKEN = {"exp": 4685989700, "foo": "bar", "iss": "testing@secure.istio.io", "sub": "testing@secure.istio.io"}
TOKEN_GROUP = {**TOKEN, "groups": ["group1", "group2"], "scope": ["scope1", "scope2"]}


def test_the_authz_jwt_task_requires_the_request_principal_then_group1() -> None:
    found = policies(REQUIRE_JWT)
    assert allowed(found, req(claims=TOKEN)) is True
    assert allowed(found, req()) is False
    with_groups = policies(
        REQUIRE_JWT + '    when:\n    - key: request.auth.claims[groups]\n      values: ["group1"]\n'
    )
    assert allowed(with_groups, req(claims=TOKEN_GROUP)) is True
    assert allowed(with_groups, req(claims=TOKEN)) is False
    assert allowed(with_groups, req(claims={**TOKEN, "groups": "group1"})) is True  # a string claim
    assert allowed(with_groups, req(claims=TOKEN_GROUP, protocol="tcp")) is False


def test_the_authz_deny_task_denies_get_unless_x_token_is_admin_and_allows_only_ip() -> None:
    deny_get = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-method-get, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: DENY
  rules:
  - to: [{operation: {methods: ["GET"]}}]
    when:
    - key: request.headers[x-token]
      notValues: ["admin"]
"""
    allow_ip = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-path-ip, namespace: foo}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: ALLOW
  rules:
  - to: [{operation: {paths: ["/ip"]}}]
"""
    first = policies(deny_get)
    assert allowed(first, req(path="/get", headers={"x-token": "admin"})) is True
    assert allowed(first, req(path="/get", headers={"X-Token": "guest"})) is False
    assert allowed(first, req(path="/post", method="POST")) is True
    both = policies(deny_get + "---" + allow_ip)
    assert allowed(both, req(path="/ip", headers={"x-token": "guest"})) is False
    assert allowed(both, req(path="/ip", headers={"x-token": "admin"})) is True
    assert allowed(both, req(path="/get", headers={"x-token": "admin"})) is False


# ---------------------------------------------------------------------------------------------
# Matching details read in istiod's source
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "principal", "expected"),
    [
        ("*", "td/ns/a/sa/b", True),
        ("*", None, False),
        ("cluster.local/ns/x/*", "cluster.local/ns/x/sa/y", True),
        ("cluster.local/ns/x/*", "cluster.local/ns/xy/sa/y", False),
        ("*/sa/y", "any/ns/z/sa/y", True),
        ("*/sa/y", "any/ns/z/sa/yy", False),
        ("cluster.local/ns/x/sa/y", "cluster.local/ns/x/sa/y", True),
        ("cluster.local/ns/x/sa/y", "cluster.local/ns/x/sa/y2", False),
    ],
)
def test_principals_match_exactly_by_prefix_by_suffix_or_any_peer(
    pattern: str, principal: str | None, expected: bool
) -> None:
    rule = {"from": [{"source": {"principals": [pattern]}}]}
    assert authz.rule_matches(rule, "foo", "ALLOW", req(principal=principal)) is expected


@pytest.mark.parametrize(
    ("pattern", "claims", "expected"),
    [
        ("*", {"iss": "https://idp/x", "sub": "u"}, True),
        ("*", {"iss": "https://idp/x"}, False),
        ("https://idp/x/u", {"iss": "https://idp/x", "sub": "u"}, True),  # split at the last /
        ("https://idp/x/*", {"iss": "https://idp/x", "sub": "v"}, True),
        ("https://idp/x/*", {"iss": "https://idp/y", "sub": "v"}, False),
        ("*/u", {"iss": "https://other", "sub": "u"}, True),
        ("*/u", {"iss": "https://other", "sub": "v"}, False),
        ("*idp/x/u", {"iss": "https://idp/x", "sub": "u"}, True),
        ("idp*", {"iss": "idp.example", "sub": "u"}, True),  # no `/`: an issuer prefix
        # A URL issuer has a `/`: istiod splits there, so this is issuer `https:/`, subject `idp*`.
        ("https://idp*", {"iss": "https://idp.example", "sub": "u"}, False),
    ],
)
def test_request_principals_split_issuer_and_subject_at_the_last_slash(
    pattern: str, claims: dict[str, Any], expected: bool
) -> None:
    assert authz.request_principal_match(pattern, claims) is expected


def test_service_accounts_default_to_the_policy_namespace() -> None:
    rule = {"from": [{"source": {"serviceAccounts": ["caller", "other/robot"]}}]}
    assert authz.rule_matches(rule, "foo", "ALLOW", req(principal="td/ns/foo/sa/caller")) is True
    assert authz.rule_matches(rule, "foo", "ALLOW", req(principal="td/ns/bar/sa/caller")) is False
    assert authz.rule_matches(rule, "foo", "ALLOW", req(principal="td/ns/other/sa/robot")) is True
    assert authz.rule_matches(rule, "foo", "ALLOW", req(principal="td/ns/other/sa/robot2")) is False


def test_ports_are_strings_and_a_bad_one_drops_an_allow_rule_but_only_the_value_of_a_deny_rule() -> None:
    bad = {"to": [{"operation": {"ports": ["http"]}}]}
    assert authz.rule_matches(bad, "foo", "ALLOW", req()) is False
    assert authz.rule_matches(bad, "foo", "DENY", req()) is True
    good = {"to": [{"operation": {"ports": ["8000"]}}]}
    assert authz.rule_matches(good, "foo", "ALLOW", req(port=8000)) is True
    assert authz.rule_matches(good, "foo", "ALLOW", req(port=80)) is False


def test_an_unknown_when_key_drops_the_rule_whatever_the_action() -> None:
    rule = {"when": [{"key": "request.colour", "values": ["red"]}]}
    assert authz.rule_matches(rule, "foo", "DENY", req()) is False
    assert authz.rule_matches(rule, "foo", "ALLOW", req()) is False


def test_nested_claims_and_hosts_match_as_istiod_builds_them() -> None:
    rule = {
        "to": [{"operation": {"hosts": ["*.Example.com"]}}],
        "when": [{"key": "request.auth.claims[realm][roles]", "values": ["admin*"]}],
    }
    claims = {"realm": {"roles": ["reader", "administrator"]}}
    assert authz.rule_matches(rule, "foo", "ALLOW", req(host="app.example.COM", claims=claims)) is True
    assert authz.rule_matches(rule, "foo", "ALLOW", req(host="example.com", claims=claims)) is False
    assert authz.rule_matches(rule, "foo", "ALLOW", req(host="a.example.com", claims={"realm": {}})) is False


def test_a_sidecar_ignores_policies_with_target_refs_and_a_gateway_api_gateway_takes_them() -> None:
    found = policies("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: gw-only, namespace: foo}
spec:
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: web}]
  rules: [{to: [{operation: {paths: ["/ok"]}}]}]
""")
    assert allowed(found, req(path="/x")) is True
    gateway = {"labels": {authz.GATEWAY_NAME_LABEL: "web"}}
    assert allowed(found, req(**gateway, path="/x")) is False
    assert allowed(found, req(**gateway, path="/ok")) is True


def test_fails_on_an_action_istio_does_not_know() -> None:
    with pytest.raises(authz.PolicyError, match="ns/p: action 'REJECT'"):
        policies("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: ns}
spec: {action: REJECT}
""")


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

_RULES = [
    {},
    {"from": [{"source": {"principals": [SLEEP]}}]},
    {"from": [{"source": {"notNamespaces": ["foo"]}}]},
    {"to": [{"operation": {"methods": ["GET"]}}]},
    {"to": [{"operation": {"paths": ["/admin*"], "ports": ["8000"]}}]},
    {"from": [{"source": {"requestPrincipals": ["*"]}}]},
    {"when": [{"key": "request.auth.claims[groups]", "values": ["g1"]}]},
]
_policy = st.builds(
    lambda action, ns, selected, rules: authz.Policy(
        ns, f"p{id(rules)}", {"action": action, "selector": selected, "rules": rules}
    ),
    st.sampled_from(["ALLOW", "DENY", "AUDIT"]),
    st.sampled_from(["foo", "bar", "istio-system"]),
    st.sampled_from([None, {"matchLabels": {"app": "httpbin"}}, {"matchLabels": {"app": "other"}}]),
    st.lists(st.sampled_from(_RULES), max_size=3),
)
_request = st.builds(
    Request,
    namespace=st.sampled_from(["foo", "bar"]),
    labels=st.just({"app": "httpbin"}),
    port=st.sampled_from([8000, 9080]),
    protocol=st.sampled_from(["http", "tcp"]),
    principal=st.sampled_from([None, SLEEP, "cluster.local/ns/foo/sa/x"]),
    claims=st.sampled_from([None, {"iss": "i", "sub": "s"}, {"iss": "i", "sub": "s", "groups": ["g1"]}]),
    method=st.sampled_from(["GET", "POST"]),
    path=st.sampled_from(["/", "/admin/x"]),
)


@given(st.lists(_policy, max_size=4), _request, st.sampled_from(["foo", "bar", "istio-system"]))
def test_adding_an_allow_nothing_policy_never_grants_access(
    found: list[authz.Policy], request: Request, namespace: str
) -> None:
    before = authz.evaluate(found, request).allowed
    after = authz.evaluate([*found, authz.Policy(namespace, "allow-nothing", {})], request).allowed
    assert not (after and not before)


@given(st.lists(_policy, max_size=4), _request, st.lists(st.sampled_from(_RULES), max_size=2))
def test_adding_a_deny_policy_never_grants_access(
    found: list[authz.Policy], request: Request, rules: list[dict[str, Any]]
) -> None:
    before = authz.evaluate(found, request).allowed
    deny = authz.Policy("foo", "deny", {"action": "DENY", "rules": rules})
    assert not (authz.evaluate([*found, deny], request).allowed and not before)


@given(st.lists(_policy, max_size=4), _request)
def test_an_allow_all_policy_allows_whatever_no_deny_policy_refuses(
    found: list[authz.Policy], request: Request
) -> None:
    allow_all = authz.Policy(request.namespace, "allow-all", {"rules": [{}]})
    decision = authz.evaluate([*found, allow_all], request)
    assert decision.allowed is (decision.action != "DENY")


# ---------------------------------------------------------------------------------------------
# The view, on a small hand-written set of rendered objects
# ---------------------------------------------------------------------------------------------


def _dev_unit() -> Any:
    from tests.support import stack

    return stack("dev").units[0]


def _objects(trust_domain: str) -> list[dict[str, Any]]:
    gateway = f"{trust_domain}/ns/istio-ingress/sa/istio-ingressgateway"
    caller = f"{trust_domain}/ns/bookinfo/sa/caller"
    text = f"""
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: istio-system}}
spec: {{mtls: {{mode: STRICT}}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: allow-nothing, namespace: bookinfo}}
spec: {{}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: bookinfo, namespace: bookinfo}}
spec:
  selector: {{matchLabels: {{app: productpage}}}}
  rules:
  - from: [{{source: {{principals: ["{gateway}"], requestPrincipals: ["https://idp.example/*"]}}}}]
    to: [{{operation: {{ports: ["9080"]}}}}]
    when: [{{key: "request.auth.claims[groups]", values: [readers]}}]
  - from: [{{source: {{principals: ["{caller}"]}}}}]
    to: [{{operation: {{ports: ["9080"]}}}}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: bookinfo, namespace: bookinfo}}
spec:
  selector: {{matchLabels: {{app: productpage}}}}
  jwtRules: [{{issuer: "https://idp.example", jwksUri: "https://idp.example/keys", audiences: [bookinfo]}}]
---
apiVersion: v1
kind: Service
metadata: {{name: productpage, namespace: bookinfo}}
spec: {{selector: {{app: productpage}}, ports: [{{port: 9080}}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: caller, namespace: bookinfo}}
spec:
  template:
    metadata: {{labels: {{app: caller}}}}
    spec: {{serviceAccountName: caller, containers: []}}
"""
    return [d for d in yaml.safe_load_all(text) if d]


def _cells(view: authz.AppView) -> dict[str, list[bool | None]]:
    return {caller.label: [d.allowed for d in decisions] for caller, decisions in view.rows}


def test_the_view_shows_each_caller_with_each_token_as_the_hand_written_policies_decide() -> None:
    unit = _dev_unit()
    view = authz.unit_view(unit, _objects(unit.mesh.trust_domain))
    bookinfo = next(a for a in view.apps if a.app == "bookinfo")
    assert (bookinfo.port, bookinfo.protocol, dict(bookinfo.labels)) == (9080, "http", {"app": "productpage"})
    assert [t.label for t in bookinfo.tokens] == [
        "no token",
        "token without the tested claims",
        "token with groups=readers",
    ]
    assert bookinfo.tokens[2].claims == {
        "iss": "https://idp.example",
        "sub": "user",
        "aud": ["bookinfo"],
        "groups": ["readers"],
    }
    assert _cells(bookinfo) == {
        "ingress gateway (istio-ingress/istio-ingressgateway)": [False, False, True],
        "bookinfo/caller": [True, True, True],
        "another workload of bookinfo": [False, False, False],
        "a workload of another namespace": [False, False, False],
        "plaintext (no mTLS)": [False, False, False],
    }
    plaintext = dict(bookinfo.rows)[authz.Caller("plaintext (no mTLS)", None)]
    assert plaintext[0].by() == "STRICT mTLS refuses plaintext (istio-system/default)"
    granted = dict(bookinfo.rows)[bookinfo.rows[0][0]][2]
    assert (granted.policy, granted.rule) == ("bookinfo/bookinfo", 0)
    notes = {a.app: a.note for a in view.apps if a.note}
    assert notes == {
        "httpbin": "outside the mesh (no sidecar): AuthorizationPolicy does not apply",
        "mqtt": "outside the mesh (no sidecar): AuthorizationPolicy does not apply",
    }
    assert view.egress is None


def test_without_policies_every_mesh_caller_may_call_and_plaintext_only_without_strict_mtls() -> None:
    unit = _dev_unit()
    view = authz.unit_view(unit, [])
    bookinfo = next(a for a in view.apps if a.app == "bookinfo")
    assert bookinfo.labels_from == "from config: apps[].workloadLabels unset, so app: <service>"
    assert all(d.allowed for _caller, decisions in bookinfo.rows for d in decisions)


def test_the_view_takes_the_workload_labels_from_config_and_flags_a_service_that_selects_others() -> None:
    unit = _dev_unit()
    labelled = unit.apps[0].model_copy(update={"workload_labels": {"app": "productpage-v2"}})
    unit = unit.model_copy(update={"apps": (labelled, *unit.apps[1:])})
    bookinfo = next(
        a for a in authz.unit_view(unit, _objects(unit.mesh.trust_domain)).apps if a.app == "bookinfo"
    )
    assert dict(bookinfo.labels) == {"app": "productpage-v2"}
    assert bookinfo.labels_from == (
        "from config apps[].workloadLabels; Service productpage selects app=productpage, which these "
        "labels do not match"
    )


def test_a_declared_caller_of_a_token_app_that_can_hold_no_user_token_is_marked_as_such() -> None:
    from tests.support import stack

    unit = stack("prod").unit("onprem-syd")
    teller = next(a for a in unit.apps if a.name == "teller")
    caller = config.Caller(namespace="bookinfo", service_account="bookinfo-productpage")
    unit = unit.model_copy(
        update={
            "apps": tuple(
                a.model_copy(update={"callers": (caller,)}) if a is teller else a for a in unit.apps
            )
        }
    )
    view = next(a for a in authz.unit_view(unit, []).apps if a.app == "teller")
    labels = [c.label for c, _decisions in view.rows]
    assert (
        "bookinfo/bookinfo-productpage (declared caller; no app of bookinfo gets a user token from "
        "https://sso.example-bank.com, so it has none to forward)"
    ) in labels


def test_the_text_and_markdown_views_say_who_may_call_and_why() -> None:
    unit = _dev_unit()
    views = [authz.unit_view(unit, _objects(unit.mesh.trust_domain))]
    text = authz.text(views)
    head = "  bookinfo (http-mesh) in bookinfo, port 9080/http, workload app=productpage"
    assert (
        f"{head} (from config: apps[].workloadLabels unset, so app: <service>; Service productpage "
        "selects the same)"
    ) in text
    assert (
        "      token with groups=readers        allow  an ALLOW policy matches (bookinfo/bookinfo rule 0)"
        in text
    )
    lines = authz.markdown(views)
    assert lines[0] == "## Who can reach what"
    assert "  | caller | no token | token without the tested claims | token with groups=readers |" in lines
    assert "  | ingress gateway (istio-ingress/istio-ingressgateway) | deny | deny | allow |" in lines
    assert "  | plaintext (no mTLS) | deny (mTLS) | deny (mTLS) | deny (mTLS) |" in lines
    calls = authz.as_json(views)[0]["apps"][0]["calls"]
    assert {"caller": "bookinfo/caller", "token": "no token", "allowed": True, "rule": 1}.items() <= calls[
        3
    ].items()


def test_the_egress_view_gives_each_allowed_identity_its_snat_address() -> None:
    from components import config
    from tests.support import raw_stack

    raw = raw_stack("prod")
    unit = raw["units"][0]
    unit["egress"]["snatAddresses"] = ["10.10.17.200", "10.10.17.202"]
    unit["egress"]["allow"].append({"namespace": "portal", "serviceAccounts": ["web", "batch"]})
    parsed = config.parse_stack(raw).units[0]
    where, entries = authz.egress_view(parsed)
    assert where == "10.10.17.100:443 to the forward proxy 10.10.18.10:3128"
    td = parsed.mesh.trust_domain
    assert entries == (
        authz.EgressEntry("bookinfo", (f"spiffe://{td}/ns/bookinfo/sa/*",), ("10.10.17.201",), True),
        authz.EgressEntry(
            "portal",
            (f"spiffe://{td}/ns/portal/sa/web", f"spiffe://{td}/ns/portal/sa/batch"),
            ("10.10.17.200", "10.10.17.202"),
            False,
        ),
    )


# ---------------------------------------------------------------------------------------------
# The command, and prod's rendered policies
# ---------------------------------------------------------------------------------------------


def test_fails_with_exit_2_and_one_line_for_a_unit_the_stack_does_not_have(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert authz.main(["--stack", "dev", "--unit", "nowhere"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["authz: --unit nowhere: no such unit in stack dev; units: dev"]


def test_fails_with_exit_2_for_a_stack_without_a_stack_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert authz.main(["--stack", "no-such-stack"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("authz: stack no-such-stack has ")


Prod = tuple[Any, dict[str, list[dict[str, Any]]], str]


@pytest.fixture(scope="module")
def prod_objects(prod: engine.Run) -> Prod:
    """prod's config, rendered Kubernetes objects per unit, and summary.md (from the shared build)."""
    from tools import render

    stack = support.stack("prod")
    rendered = render.render_files(prod, stack, [])
    objects: dict[str, list[dict[str, Any]]] = {}
    for _path, unit, obj in rendered.k8s:
        objects.setdefault(unit, []).append(obj)
    return stack, objects, rendered.files["summary.md"]


def _access_apps(stack: Any) -> list[tuple[Any, Any]]:
    return [
        (u, a)
        for u in stack.units
        for a in u.apps
        if a.kind == "http-mesh" and getattr(a, "access", None) is not None and a.access.require
    ]


def test_in_prod_an_app_with_a_baseline_refuses_undeclared_callers_and_admits_the_gateway_with_the_group(
    prod_objects: Prod,
) -> None:
    stack, objects, _summary = prod_objects
    apps = _access_apps(stack)
    assert apps, "prod has http-mesh apps with access.require (issue 12, item 5)"
    for unit, app in apps:
        found = authz.policies_of(objects[unit.name])
        assert any(
            p.namespace == app.namespace and p.action == "ALLOW" and not p.spec.get("rules") for p in found
        )
        view = next(a for a in authz.unit_view(unit, objects[unit.name]).apps if a.app == app.name)
        cells = _cells(view)
        labels = [t.label for t in view.tokens]
        group = app.access.require[0]
        with_group = labels.index(f"token with {group.claim}={group.values[0]}")
        gateway = next(c for c in cells if c.startswith("ingress gateway"))
        assert cells[gateway][with_group] is True, (unit.name, app.name)
        assert cells[gateway][labels.index("no token")] is False
        assert cells[gateway][labels.index("token without the tested claims")] is False
        undeclared_callers = ["a workload of another namespace"]
        if not getattr(app, "same_namespace_calls", False):
            undeclared_callers.append(f"another workload of {app.namespace}")
        for undeclared in undeclared_callers:
            assert cells[undeclared] == [False] * len(labels), (unit.name, app.name, undeclared)


def test_the_command_prints_prod_and_writes_json_and_summary_md_has_the_section(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], prod_objects: Prod
) -> None:
    import json

    stack, _objects, summary = prod_objects
    unit, app = _access_apps(stack)[-1]
    out = tmp_path / "authz.json"
    assert authz.main(["--stack", "prod", "--unit", unit.name, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"Unit {unit.name} (trust domain {unit.mesh.trust_domain})" in printed
    assert f"  {app.name} (http-mesh) in {app.namespace}, port " in printed
    doc = json.loads(out.read_text())
    assert [u["unit"] for u in doc] == [unit.name]
    assert doc[0]["egress"]["allow"][0]["snat"]
    section = summary.split("## Who can reach what\n", 1)[1].split("\n## ", 1)[0]
    assert f"### Unit `{unit.name}`" in section
    assert "| ingress gateway (istio-ingress/istio-ingressgateway) |" in section


def test_make_authz_runs_the_module_for_the_stack_with_the_given_args() -> None:
    from tests.support import ROOT, run

    shown = run(
        [
            "make",
            "--no-print-directory",
            "-o",
            ".venv/.installed",
            "-n",
            "authz",
            "STACK=prod",
            "ARGS=--unit x",
        ],
        cwd=ROOT,
    ).stdout
    assert ".venv/bin/python -m tools.authz --stack prod --unit x" in shown


def test_the_root_namespace_is_istiods_mesh_config_root_namespace_where_its_values_set_one() -> None:
    from types import SimpleNamespace

    def release(urn: str, chart: str, values: dict[str, Any]) -> Any:
        return SimpleNamespace(urn=urn, type=authz.HELM_RELEASE, inputs={"chart": chart, "values": values})

    regs = [
        release("a", "istiod", {"meshConfig": {"rootNamespace": "mesh-root"}}),
        release("b", "istiod", {"meshConfig": {}}),
        release("c", "gateway", {"meshConfig": {"rootNamespace": "not-this"}}),
    ]
    assert authz.mesh_roots(regs, {"a": "one", "b": "two", "c": "three"}) == {"one": "mesh-root"}


@pytest.mark.parametrize(
    ("pattern", "principal", "expected"),
    [
        ("cluster.local", "cluster.local/ns/a/sa/b", True),
        ("cluster.local", "cluster.local.evil/ns/a/sa/b", False),
        ("cluster.local", "other/ns/a/sa/b", False),
        ("*.local", "cluster.local/ns/a/sa/b", True),
        ("*.local", "x.locale/ns/a/sa/b", False),
        ("*", "any/ns/a/sa/b", True),
        ("*", None, False),
    ],
)
def test_trust_domains_match_the_peers_domain_exactly_by_wildcard_or_any(
    pattern: str, principal: str | None, expected: bool
) -> None:
    rule = {"from": [{"source": {"trustDomains": [pattern]}}]}
    assert authz.rule_matches(rule, "foo", "ALLOW", req(principal=principal)) is expected
