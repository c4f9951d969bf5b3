"""Zero trust in the mesh: who may call what in every injected namespace, and the user's token.

Per injected namespace:
- `allow-nothing`: an AuthorizationPolicy with an empty spec. An ALLOW policy with no rules
  matches nothing, and a workload that some ALLOW policy selects is denied whatever no ALLOW
  policy matches, so every workload of the namespace refuses every request until an ALLOW below
  matches it.
- `allow-same-namespace` (when an app there has `sameNamespaceCalls`): every workload of the
  namespace may call every other; no selector, since an app's own backends (bookinfo's details,
  reviews, ratings) are not apps of the config.
Per http-mesh app, selecting its pods by `apps[].workloadLabels` (unset: `app: <service>`); cpaas
deploys neither the pods nor their Service, so the labels are config, not something read here:
- `<app>`: ALLOW, one rule per identity: the ingress gateway (the BIG-IP's and the in-cluster
  route's only way in) and each declared caller, by SPIFFE principal, on the app's port. With a
  token, every rule also requires a request principal of the issuer and the claim rules, so a
  request without a valid token matches no rule and is refused, also when it bypasses the BIG-IP.
- `<app>` RequestAuthentication (with a token): the issuer, its keys and audiences. Alone it only
  refuses invalid tokens; the ALLOW rules above make a token required.

Outside these policies, and so still working: the kubelet's probes, which Istio rewrites to the
sidecar agent (port 15020), which calls the app from inside the pod; Prometheus scraping the merged
metrics on the agent's port 15020, which the sidecar does not intercept; and egress through the
BIG-IP, which is outbound (AuthorizationPolicy governs what a workload accepts).

Principals use the unit's trust domain, which every workload certificate carries (Istio also reads
`cluster.local` in a principal as the local trust domain).

Ref: https://istio.io/latest/docs/reference/config/security/authorization-policy/ (allow-nothing,
     ALLOW semantics, principals, requestPrincipals, when request.auth.claims[...])
Ref: https://istio.io/latest/docs/tasks/security/authorization/authz-jwt/ (requestPrincipals
     makes a valid JWT required; a RequestAuthentication alone admits requests without one)
Ref: https://istio.io/latest/docs/reference/config/security/request_authentication/
     (jwtRules issuer, jwksUri, audiences, forwardOriginalToken)
Ref: https://istio.io/latest/docs/ops/configuration/mesh/app-health-check/ (probe rewrite)
Ref: istio/istio@1.30.3 manifests/charts/istio-control/istio-discovery/files/injection-template.yaml
     (excludeInboundPorts 15090, 15021 and the status port 15020)
Ref: istio/istio@1.30.3 pilot/pkg/security/trustdomain/bundle.go (ReplaceTrustDomainAliases)
Ref: istio/istio@1.30.3 manifests/charts/gateway/templates/_helpers.tpl (the gateway's service
     account is its `name`)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import config, mesh

SECURITY = "security.istio.io/v1"
ALLOW_NOTHING = "allow-nothing"
SAME_NAMESPACE = "allow-same-namespace"
# The gateway chart names the service account after its `name` value (mesh.gateway_values).
GATEWAY_SERVICE_ACCOUNT = mesh.GATEWAY_RELEASE


def principal(trust_domain: str, namespace: str, service_account: str) -> str:
    """A workload's identity as AuthorizationPolicy `principals` match it (SPIFFE ID without spiffe://)."""
    return f"{trust_domain}/ns/{namespace}/sa/{service_account}"


def gateway_principal(unit: config.Unit) -> str:
    return principal(unit.mesh.trust_domain, mesh.GATEWAY_NAMESPACE, GATEWAY_SERVICE_ACCOUNT)


def workload_selector(app: config.App) -> dict[str, Any]:
    return {"matchLabels": dict(app.pod_labels)}


def claim_key(claim: str) -> str:
    """`request.auth.claims[...]` for a claim; '.' in the config reaches a nested claim."""
    return "request.auth.claims" + "".join(f"[{part}]" for part in claim.split("."))


def _rule(app: config.App, source: dict[str, Any]) -> dict[str, Any]:
    token = app.access.token if app.access is not None else None
    if token is not None:
        source = {**source, "requestPrincipals": [f"{token.issuer}/*"]}
    rule: dict[str, Any] = {
        "from": [{"source": source}],
        "to": [{"operation": {"ports": [str(app.workload_port)]}}],
    }
    if token is not None and app.access is not None and app.access.require:
        rule["when"] = [{"key": claim_key(r.claim), "values": list(r.values)} for r in app.access.require]
    return rule


def app_policy(unit: config.Unit, app: config.App) -> dict[str, Any]:
    """The app's ALLOW policy: the ingress gateway and each declared caller, on the app's port."""
    td = unit.mesh.trust_domain
    sources = [gateway_principal(unit)]
    sources += [principal(td, c.namespace, c.service_account) for c in app.callers]
    return {
        "selector": workload_selector(app),
        "action": "ALLOW",
        "rules": [_rule(app, {"principals": [p]}) for p in sources],
    }


def same_namespace_policy(namespace: str) -> dict[str, Any]:
    return {"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": [namespace]}}]}]}


def request_authentication(app: config.App) -> dict[str, Any] | None:
    token = app.access.token if app.access is not None else None
    if token is None:
        return None
    return {
        "selector": workload_selector(app),
        "jwtRules": [
            {
                "issuer": token.issuer,
                "jwksUri": token.jwks_uri,
                "audiences": list(token.audiences),
                "forwardOriginalToken": token.forward_original_token,
            }
        ],
    }


def mesh_apps(unit: config.Unit) -> list[config.App]:
    return [a for a in unit.apps if a.kind == "http-mesh"]


def open_namespaces(unit: config.Unit) -> list[str]:
    """The injected namespaces an app opens to themselves (sameNamespaceCalls), sorted."""
    return sorted({a.namespace for a in mesh_apps(unit) if a.same_namespace_calls})


@dataclass(frozen=True)
class AuthzArgs:
    unit: config.Unit
    # Children wait for these (istiod, the namespaces): a component's depends_on does not reach
    # its children.
    after: tuple[pulumi.Resource, ...] = ()


class MeshAuthorization(pulumi.ComponentResource):
    def __init__(self, name: str, args: AuthzArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:meshauthz:MeshAuthorization", name, None, opts)
        unit = args.unit
        self._name = name
        self._after = args.after
        allows: dict[str, list[pulumi.Resource]] = {ns: [] for ns in unit.mesh.injected_namespaces}
        for ns in open_namespaces(unit):
            allows[ns].append(
                self._cr(
                    f"{ns}-same-namespace",
                    "AuthorizationPolicy",
                    ns,
                    SAME_NAMESPACE,
                    same_namespace_policy(ns),
                )
            )
        for app in mesh_apps(unit):
            authn = request_authentication(app)
            if authn is not None:
                allows[app.namespace].append(
                    self._cr(f"{app.name}-jwt", "RequestAuthentication", app.namespace, app.name, authn)
                )
            allows[app.namespace].append(
                self._cr(
                    f"{app.name}-allow", "AuthorizationPolicy", app.namespace, app.name, app_policy(unit, app)
                )
            )
        for ns, before in allows.items():
            # After the namespace's ALLOW policies, so an update that adds the baseline to a
            # running namespace never denies what they allow.
            self._cr(f"{ns}-allow-nothing", "AuthorizationPolicy", ns, ALLOW_NOTHING, {}, *before)
        self.register_outputs({"namespaces": sorted(allows)})

    def _cr(
        self, role: str, kind: str, namespace: str, name: str, spec: dict[str, Any], *deps: pulumi.Resource
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            f"{self._name}-{role}",
            api_version=SECURITY,
            kind=kind,
            metadata={"name": name, "namespace": namespace},
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*self._after, *deps]),
        )
