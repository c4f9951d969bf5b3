"""Access per app (issue 12): APM on the BIG-IP, the user's token verified in the mesh, and a zero
trust baseline in every injected namespace.

Pulumi.prod.yaml: portal (aws-syd) imports an Azure AD OIDC access profile and requires a group
in the token Azure AD issues; teller (onprem-syd) names an existing Windows AD profile and
per-request policy and requires a group in the token APM issues as an OAuth authorization server.
Pulumi.dev.yaml: bookinfo opens its namespace to itself (the demo's own calls).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import config, mesh, meshauthz
from components.bigip import access
from tests import support
from tests.support import raw_stack, stack
from tools import engine, graph, render

POLICY = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
REQUEST_AUTHN = "kubernetes:security.istio.io/v1:RequestAuthentication"
VIRTUAL_SERVER = "kubernetes:cis.f5.com/v1:VirtualServer"
AS3 = "f5bigip:index/as3:As3"
AZURE_ISSUER = "https://login.microsoftonline.com/4f1c2a9e-7b1d-4c55-9a3e-2d0c8e6b5a10/v2.0"
APM_ISSUER = "https://sso.example-bank.com"
# The portal API's application (client) id: the `aud` of every v2.0 access token Azure AD issues for it.
PORTAL_API_CLIENT_ID = "7d3e9c21-5b8a-4f06-a1c4-9e2b6d0f8a35"


def _k8s(run: engine.Run, type_: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, name) -> object inputs of every registration of `type_`."""
    out = {}
    for reg in run.by_type(type_):
        meta = reg.inputs["metadata"]
        out[(meta["namespace"], meta["name"])] = reg.inputs
    return out


def _unit_of(run: engine.Run, reg: engine.Registration) -> str:
    return graph.unit_of(reg, run.by_urn()) or ""


# ---------------------------------------------------------------------------------------------
# Zero trust baseline
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_every_injected_namespace_of_every_unit_gets_an_allow_nothing_policy(
    name: str, request: pytest.FixtureRequest
) -> None:
    run: engine.Run = request.getfixturevalue(name)
    wanted = {(u.name, ns) for u in stack(name).units for ns in u.mesh.injected_namespaces}
    found = set()
    for reg in run.by_type(POLICY):
        meta = reg.inputs["metadata"]
        if meta["name"] == meshauthz.ALLOW_NOTHING:
            assert reg.inputs["spec"] == {}, "an empty spec: ALLOW with no rule matches nothing"
            found.add((_unit_of(run, reg), meta["namespace"]))
    assert found == wanted
    assert (("aws-syd", "portal") in found and ("onprem-syd", "teller") in found) or name == "dev"


def test_the_ingress_gateway_may_call_each_mesh_app_on_its_port_by_its_spiffe_principal(
    dev: engine.Run,
) -> None:
    policy = _k8s(dev, POLICY)[("bookinfo", "bookinfo")]
    spec = policy["spec"]
    assert spec["action"] == "ALLOW"
    assert spec["selector"] == {"matchLabels": {"app": "productpage"}}
    gateway = "dev.cpaas.example.com/ns/istio-ingress/sa/istio-ingressgateway"
    assert {"from": [{"source": {"principals": [gateway]}}], "to": [{"operation": {"ports": ["9080"]}}]} in (
        spec["rules"]
    )


def test_dev_opens_the_bookinfo_namespace_to_itself_so_the_demo_calls_keep_working(dev: engine.Run) -> None:
    policies = _k8s(dev, POLICY)
    same = policies[("bookinfo", meshauthz.SAME_NAMESPACE)]["spec"]
    assert same == {"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": ["bookinfo"]}}]}]}
    # httpbin is outside the mesh: no baseline there, NGINX reaches it as before.
    assert not [key for key in policies if key[0] == "httpbin"]


def test_declared_callers_may_call_the_app_on_its_port_by_their_principal() -> None:
    raw = raw_stack("dev")
    raw["units"][0]["apps"][0]["callers"] = [{"namespace": "bookinfo", "serviceAccount": "traffic-generator"}]
    unit = config.parse_stack(raw).units[0]
    rules = meshauthz.app_policy(unit, unit.apps[0])["rules"]
    caller = "dev.cpaas.example.com/ns/bookinfo/sa/traffic-generator"
    assert {
        "from": [{"source": {"principals": [caller]}}],
        "to": [{"operation": {"ports": ["9080"]}}],
    } in rules


# ---------------------------------------------------------------------------------------------
# The user's token in the mesh
# ---------------------------------------------------------------------------------------------


def test_a_token_app_gets_a_request_authentication_on_its_workload(prod: engine.Run) -> None:
    authn = _k8s(prod, REQUEST_AUTHN)
    assert set(authn) == {("portal", "portal"), ("teller", "teller")}
    portal = authn[("portal", "portal")]["spec"]
    assert portal == {
        "selector": {"matchLabels": {"app": "portal"}},
        "jwtRules": [
            {
                "issuer": AZURE_ISSUER,
                "jwksUri": "https://login.microsoftonline.com/4f1c2a9e-7b1d-4c55-9a3e-2d0c8e6b5a10/discovery/v2.0/keys",
                "audiences": [PORTAL_API_CLIENT_ID],
                "forwardOriginalToken": True,
            }
        ],
    }


def test_every_allow_rule_of_a_token_app_requires_a_valid_token_and_the_claims(prod: engine.Run) -> None:
    policies = _k8s(prod, POLICY)
    teller = policies[("teller", "teller")]["spec"]
    assert teller["rules"], "the gateway at least"
    for rule in teller["rules"]:
        for source in rule["from"]:
            assert source["source"]["requestPrincipals"] == [f"{APM_ISSUER}/*"]
        assert rule["when"] == [
            {"key": "request.auth.claims[groups]", "values": ["CN=Tellers,OU=Groups,DC=example-bank,DC=com"]}
        ]
    gateway = "onprem-syd.cpaas.example-bank.com/ns/istio-ingress/sa/istio-ingressgateway"
    assert teller["rules"][0]["from"][0]["source"]["principals"] == [gateway]


def test_prod_teller_admits_only_the_ingress_gateway_since_no_caller_of_it_holds_a_user_token(
    prod: engine.Run,
) -> None:
    # bookinfo's productpage never gets an sso.example-bank.com token (bookinfo has no access),
    # so a rule for it would be an edge no request can take.
    teller = _k8s(prod, POLICY)[("teller", "teller")]["spec"]
    gateway = "onprem-syd.cpaas.example-bank.com/ns/istio-ingress/sa/istio-ingressgateway"
    assert [r["from"][0]["source"]["principals"] for r in teller["rules"]] == [[gateway]]


# ---------------------------------------------------------------------------------------------
# APM on the BIG-IP
# ---------------------------------------------------------------------------------------------


def test_an_existing_profile_and_per_request_policy_are_attached_to_the_apps_virtual_server(
    prod: engine.Run,
) -> None:
    servers = {(_unit_of(prod, r), r.inputs["metadata"]["name"]): r for r in prod.by_type(VIRTUAL_SERVER)}
    teller = servers[("onprem-syd", "teller")].inputs["spec"]
    assert teller["profileAccess"] == "/Common/cpaas-windows-ad-oauth"
    assert teller["policyPerRequestAccess"] == "/Common/cpaas-windows-ad-prp"
    assert "profileAccess" not in servers[("onprem-syd", "bookinfo")].inputs["spec"]


def test_an_imported_profile_is_an_as3_access_profile_that_the_virtual_server_names_at_the_tenant_root(
    prod: engine.Run,
) -> None:
    imports = [r for r in prod.by_type(AS3) if _unit_of(prod, r) == "aws-syd"]
    assert len(imports) == 1
    body = json.loads(imports[0].inputs["as3Json"])
    shared = body["declaration"]["Common"]["Shared"]
    assert shared["cpaas-aws-syd-portal-access"] == {
        "class": "Access_Profile",
        "url": {"url": "https://idm.example-bank.com/apm-exports/portal-azuread-oidc.tar.gz"},
        "enable": True,
        # Imported once: another change of the declaration does not fetch and re-apply it.
        "ignoreChanges": True,
    }
    assert set(body["declaration"]) == {"class", "schemaVersion", "id", "label", "remark", "Common"}
    portal = next(
        r
        for r in prod.by_type(VIRTUAL_SERVER)
        if _unit_of(prod, r) == "aws-syd" and r.inputs["metadata"]["name"] == "portal"
    )
    # AS3 imports APM objects into the tenant root, never the application folder.
    # Ref: F5Networks/f5-appsvcs-extension@v3.56.0 src/lib/map_as3.js
    #      (Access_Profile: mcpPath(tenantId, '', itemId))
    assert portal.inputs["spec"]["profileAccess"] == "/Common/cpaas-aws-syd-portal-access"
    assert imports[0].urn in prod.upstream(portal)
    assert not [r for r in prod.by_type(AS3) if _unit_of(prod, r) != "aws-syd" and r.name != "gslb-as3"]


def test_fails_an_existing_profile_named_like_an_import_of_the_unit() -> None:
    # ng_import appends a counter to a name that exists (Ref: F5Networks/f5-appsvcs-extension@v3.56.0
    # src/lib/map_cli.js, 'apm profile access'), so the import and the VirtualServer would part ways.
    raw = raw_stack("prod")
    raw["units"][0]["apps"][0]["access"] = {"profile": "/Common/cpaas-aws-syd-portal-access"}
    raw["gslb"]["wideIps"][0]["monitor"] = {"type": "tcp"}  # bookinfo is now behind APM
    assert _errors(raw) == [
        "cpaas:units[0].apps[0].access.profile: /Common/cpaas-aws-syd-portal-access is the name cpaas "
        "imports apps[3] (portal) as; name another existing profile, or import this one under its own app"
    ]


def test_an_import_with_refresh_is_fetched_and_imported_again_in_place_on_each_post() -> None:
    # Ref: F5Networks/f5-appsvcs-extension@v3.56.0 schema/3.56.0/as3-schema.json (Access_Profile,
    #      Per_Request_Access_Policy ignoreChanges), src/lib/fetch.js (ignoreChanges false: the current
    #      object is dropped so the diff imports it again; an iControl-only diff is filtered out, so
    #      a changed url alone imports nothing)
    raw = raw_stack("prod")
    raw["units"][0]["apps"][3]["access"]["import"] |= {
        "refresh": True,
        "perRequestPolicyUrl": "https://idm.example-bank.com/apm-exports/portal-prp-v2.tar.gz",
    }
    unit = config.parse_stack(raw).units[0]
    shared = access.declaration(unit)["declaration"]["Common"]["Shared"]
    assert shared["cpaas-aws-syd-portal-access"]["ignoreChanges"] is False
    assert shared["cpaas-aws-syd-portal-prp"] == {
        "class": "Per_Request_Access_Policy",
        "url": {"url": "https://idm.example-bank.com/apm-exports/portal-prp-v2.tar.gz"},
        "ignoreChanges": False,
    }


def test_the_import_goes_to_the_units_bigip_and_is_held_until_cis_has_let_go_of_it(prod: engine.Run) -> None:
    reg = prod.get("aws-syd-access-as3")
    assert reg.provider.startswith(prod.get("aws-syd-bigip-provider").urn + "::")
    # Deleted only after the CIS drain (the virtual servers are gone), saved with the rest.
    assert reg.urn in prod.get("aws-syd-cis-drain-wait").dependencies
    assert reg.urn in prod.get("aws-syd-bigip-save-command").dependencies
    assert access.profile_path("aws-syd", stack("prod").unit("aws-syd").apps[3]) == (
        "/Common/cpaas-aws-syd-portal-access"
    )


def test_an_imported_per_request_policy_is_named_at_the_tenant_root_too() -> None:
    app = stack("prod").unit("aws-syd").apps[3]
    assert app.access is not None and app.access.import_ is not None
    imported = app.access.import_.model_copy(
        update={"per_request_policy_url": "https://idm.example-bank.com/apm-exports/portal-prp.tar.gz"}
    )
    app = app.model_copy(update={"access": app.access.model_copy(update={"import_": imported})})
    assert access.per_request_policy_path("aws-syd", app) == "/Common/cpaas-aws-syd-portal-prp"


def test_the_prod_render_validates_the_access_declaration_and_writes_it_per_unit(
    prod_render: tuple[Path, int, str],
) -> None:
    tmp_path, code, printed = prod_render
    assert code == 0, printed
    assert "as3 2" in printed and "; 0 violation(s)" in printed
    assert (tmp_path / "bigip/aws-syd/as3-aws-syd-access-as3.json").is_file()
    assert (tmp_path / "bigip/gslb/as3.json").is_file()
    policy = yaml.safe_load((tmp_path / "k8s/onprem-syd/teller/authorizationpolicy-teller.yaml").read_text())
    assert policy["apiVersion"] == "security.istio.io/v1"


# ---------------------------------------------------------------------------------------------
# Bad input: exit 2 and one line through tools.render
# ---------------------------------------------------------------------------------------------


def _render_bad(
    change: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    root = tmp_path / "project"
    root.mkdir()
    (root / "Pulumi.yaml").write_text((render.ROOT / "Pulumi.yaml").read_text())
    doc = yaml.safe_load((render.ROOT / "Pulumi.prod.yaml").read_text())
    change(doc["config"]["cpaas:units"])
    (root / "Pulumi.bad.yaml").write_text(yaml.safe_dump(doc))
    monkeypatch.setattr(render, "ROOT", root)
    code = render.main(["--stack", "bad", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    return [line for line in err.splitlines() if line.startswith("cpaas:")]


def _portal(units: list[dict[str, Any]]) -> dict[str, Any]:
    app: dict[str, Any] = units[0]["apps"][3]
    assert app["name"] == "portal"
    return app


def test_fails_an_access_profile_outside_common_with_exit_2_and_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def change(units: list[dict[str, Any]]) -> None:
        units[2]["apps"][3]["access"]["profile"] = "/cpaas-onprem-syd-cis/windows-ad"

    assert _render_bad(change, tmp_path, monkeypatch, capsys) == [
        "cpaas:units[2].apps[3].access.profile: '/cpaas-onprem-syd-cis/windows-ad' is not an access "
        "profile cpaas can attach; name one in /Common, e.g. /Common/azuread-oidc (a CIS virtual server "
        "references only its own partition and /Common, and CIS owns its partition alone), or import "
        "one with access.import"
    ]


@pytest.mark.parametrize("field", ["issuer", "jwksUri"])
def test_fails_an_issuer_or_jwks_uri_that_is_not_https_with_exit_2_and_one_line(
    field: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def change(units: list[dict[str, Any]]) -> None:
        _portal(units)["access"]["token"][field] = "http://login.example.com/keys"

    assert _render_bad(change, tmp_path, monkeypatch, capsys) == [
        f"cpaas:units[0].apps[3].access.token.{field}: 'http://login.example.com/keys' is not an https "
        "URL; use https://<host>/<path>, e.g. https://login.microsoftonline.com/<tenant>/v2.0 (a token "
        "issuer and its keys are trusted only over TLS)"
    ]


def test_fails_a_claim_rule_on_an_app_without_a_token_with_exit_2_and_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def change(units: list[dict[str, Any]]) -> None:
        del _portal(units)["access"]["token"]

    assert _render_bad(change, tmp_path, monkeypatch, capsys) == [
        "cpaas:units[0].apps[3].access.require: claim rules without access.token; the mesh reads "
        "claims from a token it verified, add token (issuer, jwksUri, audiences) or remove require"
    ]


def test_fails_a_caller_namespace_that_is_not_injected_in_the_unit_with_exit_2_and_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def change(units: list[dict[str, Any]]) -> None:
        _portal(units)["callers"] = [{"namespace": "shop", "serviceAccount": "frontend"}]

    assert _render_bad(change, tmp_path, monkeypatch, capsys) == [
        "cpaas:units[0].apps[3].callers[0].namespace: shop is not in mesh.injectedNamespaces of unit "
        "aws-syd; only mesh workloads of the unit carry a SPIFFE identity the app can trust, add the "
        "namespace there or remove the caller"
    ]


def test_fails_callers_on_a_non_mesh_app_with_exit_2_and_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def change(units: list[dict[str, Any]]) -> None:
        units[0]["apps"][1]["callers"] = [{"namespace": "bookinfo", "serviceAccount": "bookinfo-productpage"}]

    assert _render_bad(change, tmp_path, monkeypatch, capsys) == [
        "cpaas:units[0].apps[1].callers: kind http-nginx is not called in the mesh; callers and "
        "sameNamespaceCalls are for http-mesh apps"
    ]


# ---------------------------------------------------------------------------------------------
# The other access rules (parse errors, one line each)
# ---------------------------------------------------------------------------------------------


_errors = support.config_errors


def test_fails_an_access_block_with_both_or_neither_profile_and_import() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["apps"][3]["access"]["profile"] = "/Common/azuread-oidc"
    expected = [
        "cpaas:units[0].apps[3].access: set exactly one of profile (an existing access profile, e.g. "
        "/Common/azuread-oidc) or import (the identity team's export, by url)"
    ]
    assert _errors(raw) == expected
    del raw["units"][0]["apps"][3]["access"]["profile"]
    del raw["units"][0]["apps"][3]["access"]["import"]
    assert _errors(raw) == expected


@pytest.mark.parametrize("audience", ["api://portal", "https://portal.apps.example-bank.com"])
def test_fails_an_azure_ad_v2_issuer_with_an_audience_that_is_not_a_client_id(audience: str) -> None:
    # Ref: MicrosoftDocs/entra-docs docs/identity-platform/access-token-claims-reference.md (aud: "In
    #      v2.0 tokens, this value is always the client ID of the API"; iss of a v2.0 token ends in /v2.0)
    raw = raw_stack("prod")
    raw["units"][0]["apps"][3]["access"]["token"]["audiences"] = [PORTAL_API_CLIENT_ID, audience]
    assert _errors(raw) == [
        f"cpaas:units[0].apps[3].access.token.audiences[1]: {audience} is not a client id (GUID), and "
        "a v2.0 token of the Azure AD issuer https://login.microsoftonline.com/<tenant>/v2.0 always "
        "carries the API's client id as aud; use the API's application (client) id with "
        "accessTokenAcceptedVersion 2 in its manifest, or the v1 issuer https://sts.windows.net/<tenant>/"
    ]


def test_fails_a_per_request_policy_beside_an_import() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["apps"][3]["access"]["perRequestPolicy"] = "/Common/portal-prp"
    assert _errors(raw) == [
        "cpaas:units[0].apps[3].access.perRequestPolicy: /Common/portal-prp goes with profile; an "
        "imported profile brings its per-request policy as import.perRequestPolicyUrl"
    ]


def test_fails_access_on_an_l4_app_and_a_token_on_an_nginx_app() -> None:
    raw = raw_stack("prod")
    access = {"profile": "/Common/azuread-oidc"}
    raw["units"][0]["apps"][2]["access"] = access
    raw["units"][0]["apps"][1]["access"] = {
        **access,
        "token": {
            "issuer": "https://idp.example.com",
            "jwksUri": "https://idp.example.com/keys",
            "audiences": ["x"],
        },
    }
    assert _errors(raw) == [
        "cpaas:units[0].apps[1].access.token: kind http-nginx is outside the mesh, which verifies the "
        "token; use kind http-mesh or remove token (APM alone then guards the app)",
        "cpaas:units[0].apps[2].access: an access profile protects HTTP; kind tcp cannot have one",
    ]


def test_fails_access_on_a_unit_without_a_bigip() -> None:
    raw = raw_stack("dev")
    raw["units"][0]["apps"][0]["access"] = {"profile": "/Common/azuread-oidc"}
    assert _errors(raw) == [
        "cpaas:units[0].apps[0].access: an access profile runs on the unit's BIG-IP, and this unit has "
        "no bigip; add units[].bigip or remove access"
    ]


def test_fails_same_namespace_calls_in_a_namespace_holding_an_app_with_a_token() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["apps"][3]["sameNamespaceCalls"] = True
    assert _errors(raw) == [
        "cpaas:units[0].apps[3].sameNamespaceCalls: true opens namespace portal to its own workloads, "
        "which could then call portal without a token; give the app with a token a namespace of its "
        "own, or list callers instead"
    ]


def test_fails_same_namespace_calls_on_an_app_without_access_beside_an_app_with_a_token() -> None:
    # bookinfo (no access of its own) moved into portal's namespace, opening it to itself.
    raw = raw_stack("prod")
    bookinfo = raw["units"][0]["apps"][0]
    assert bookinfo["name"] == "bookinfo" and bookinfo["sameNamespaceCalls"] and "access" not in bookinfo
    bookinfo["namespace"] = "portal"
    assert _errors(raw) == [
        "cpaas:units[0].apps[0].sameNamespaceCalls: true opens namespace portal to its own workloads, "
        "which could then call portal without a token; give the app with a token a namespace of its "
        "own, or list callers instead"
    ]


def test_a_nested_claim_is_matched_by_istios_bracket_path() -> None:
    assert meshauthz.claim_key("realm_access.roles") == "request.auth.claims[realm_access][roles]"
    assert meshauthz.claim_key("groups") == "request.auth.claims[groups]"


def test_the_app_policy_matches_the_pods_port_when_it_differs_from_the_service_port() -> None:
    raw = raw_stack("dev")
    raw["units"][0]["apps"][0]["targetPort"] = 9081
    unit = config.parse_stack(raw).units[0]
    for rule in meshauthz.app_policy(unit, unit.apps[0])["rules"]:
        assert rule["to"] == [{"operation": {"ports": ["9081"]}}]


def test_fails_an_import_on_a_bigip_whose_common_shared_another_declaration_owns() -> None:
    raw = raw_stack("prod")
    raw["units"][1]["bigip"]["managementAddress"] = "10.10.16.10"  # azure-mel on aws-syd's BIG-IP
    raw["units"][1]["apps"].append(copy.deepcopy(raw["units"][0]["apps"][3]) | {"vip": "10.20.17.13"})
    raw["units"][1]["mesh"]["injectedNamespaces"].append("portal")
    assert _errors(raw) == [
        "cpaas:units[1].apps[3].access.import: would share /Common/Shared on BIG-IP 10.10.16.10 with "
        "units[0] (aws-syd); AS3 replaces that folder with each declaration, so import for one unit per "
        "BIG-IP or name the profile with access.profile"
    ]
    raw = raw_stack("prod")
    raw["gslb"]["dnsDevice"]["managementAddress"] = "10.10.16.10"
    assert _errors(raw) == [
        "cpaas:units[0].apps[3].access.import: would share /Common/Shared on BIG-IP 10.10.16.10 with "
        "the GSLB declaration (gslb.dnsDevice); AS3 replaces that folder with each declaration, so "
        "import for one unit per BIG-IP or name the profile with access.profile"
    ]


def test_an_apps_policies_select_the_pods_its_service_selects(dev: engine.Run) -> None:
    """The selector is `app: <service>`; in dev the demo's Services select their pods by that label."""
    services = {
        (r.inputs["metadata"]["namespace"], r.inputs["metadata"]["name"]): r.inputs["spec"]["selector"]
        for r in dev.by_type("kubernetes:core/v1:Service")
    }
    unit = stack("dev").units[0]
    for app in meshauthz.mesh_apps(unit):
        policy = _k8s(dev, POLICY)[(app.namespace, app.name)]
        assert policy["spec"]["selector"]["matchLabels"] == services[(app.namespace, app.service)]


def test_an_apps_policies_select_the_workload_labels_the_config_gives() -> None:
    raw = raw_stack("prod")
    labels = {"app.kubernetes.io/name": "portal-api", "tier": "web"}
    raw["units"][0]["apps"][3]["workloadLabels"] = labels
    unit = config.parse_stack(raw).units[0]
    portal = unit.apps[3]
    assert meshauthz.app_policy(unit, portal)["selector"] == {"matchLabels": labels}
    authn = meshauthz.request_authentication(portal)
    assert authn is not None and authn["selector"] == {"matchLabels": labels}
    # Unset: the pods are assumed to carry app: <service>.
    assert unit.apps[0].workload_labels is None and unit.apps[0].pod_labels == {"app": "productpage"}


@pytest.mark.parametrize(
    ("labels", "bad"),
    [({"app/": "x"}, "'app/'"), ({"app": "-x"}, "'-x'"), ({}, "")],
)
def test_fails_workload_labels_kubernetes_would_refuse_or_an_empty_set(
    labels: dict[str, str], bad: str
) -> None:
    raw = raw_stack("prod")
    raw["units"][0]["apps"][3]["workloadLabels"] = labels
    (line,) = _errors(raw)
    assert line.startswith("cpaas:units[0].apps[3].workloadLabels"), line
    assert bad in line


# ---------------------------------------------------------------------------------------------
# JWKS: istiod fetches each issuer's keys itself (no sidecar, so not through the mesh's egress)
# and fails closed, so it needs a way out and trust in the issuer's certificate.
# Ref: istio/istio@1.30.3 pilot/pkg/model/jwks_resolver.go (Proxy: http.ProxyFromEnvironment;
#      extra roots from /cacerts/extra.pem; on a failed fetch, a key nobody can sign with),
#      manifests/charts/istio-control/istio-discovery/templates/configmap-jwks.yaml
#      (jwksResolverExtraRootCA -> ConfigMap pilot-jwks-extra-cacerts, extra.pem, mounted at /cacerts)
# ---------------------------------------------------------------------------------------------


def _istiod(run: engine.Run, unit: str) -> dict[str, Any]:
    values: dict[str, Any] = run.get(f"{unit}-mesh-istiod").inputs["values"]
    return values


def test_istiod_fetches_the_jwks_through_the_configured_proxy_and_not_for_cluster_addresses() -> None:
    unit = stack("prod").unit("aws-syd")
    values = mesh.istiod_values(unit.mesh, unit.name, unit.network)
    assert values["env"]["HTTPS_PROXY"] == "http://10.10.18.10:3128"
    no_proxy = values["env"]["NO_PROXY"].split(",")
    # The Kubernetes API and everything in the cluster stay direct (Go's NO_PROXY takes CIDRs).
    for direct in (
        ".svc",
        ".cluster.local",
        "localhost",
        "127.0.0.1",
        "10.10.64.0/18",
        "172.20.0.0/16",
        "10.10.0.0/20",
    ):
        assert direct in no_proxy, direct
    assert "jwksResolverExtraRootCA" not in values
    bare = mesh.istiod_values(config.Mesh(trust_domain="t.example.com"), "u1", unit.network)
    assert "env" not in bare and "jwksResolverExtraRootCA" not in bare


def test_prod_istiod_trusts_the_banks_ca_for_the_internal_issuer_and_rolls_when_it_changes(
    prod: engine.Run,
) -> None:
    onprem = _istiod(prod, "onprem-syd")
    # The build gets each committed file's content as a deploy input (tests: a mock PEM per path).
    assert onprem["jwksResolverExtraRootCA"] == engine.mock_pem(
        "CERTIFICATE", "trust/prod/jwks-example-bank-root.pem"
    )
    committed = (render.ROOT / "trust/prod/jwks-example-bank-root.pem").read_text(encoding="utf-8")
    assert committed.startswith("-----BEGIN CERTIFICATE-----")
    assert onprem["env"]["HTTPS_PROXY"] == "http://10.30.18.10:3128"
    assert onprem["podAnnotations"][mesh.JWKS_CA_DIGEST_ANNOTATION]
    aws = _istiod(prod, "aws-syd")
    assert aws["env"]["HTTPS_PROXY"] == "http://10.10.18.10:3128"
    assert mesh.JWKS_CA_DIGEST_ANNOTATION not in aws["podAnnotations"]
    assert "trust/prod/jwks-example-bank-root.pem" in stack("prod").trust_files()


@pytest.mark.parametrize("address", ["10.10.18", "Proxy_1.example.com"])
def test_fails_a_jwks_proxy_that_is_neither_an_address_nor_a_host_name(address: str) -> None:
    raw = raw_stack("prod")
    raw["units"][0]["mesh"]["jwks"] = {"proxy": {"address": address, "port": 3128}}
    assert _errors(raw) == [
        f"cpaas:units[0].mesh.jwks.proxy.address: {address!r} is neither an IPv4 address nor a fully "
        "qualified domain name; use e.g. 10.10.18.10 or proxy.example-bank.com (lowercase labels of "
        "letters, digits and '-')"
    ]


def test_a_jwks_proxy_by_host_name_is_istiods_https_proxy_url() -> None:
    raw = raw_stack("prod")
    raw["units"][0]["mesh"]["jwks"] = {"proxy": {"address": "proxy.example-bank.com", "port": 8080}}
    unit = config.parse_stack(raw).units[0]
    assert mesh.istiod_values(unit.mesh, unit.name, unit.network)["env"]["HTTPS_PROXY"] == (
        "http://proxy.example-bank.com:8080"
    )


# ---------------------------------------------------------------------------------------------
# GSLB in front of an app behind APM
# ---------------------------------------------------------------------------------------------


def _portal_wide_ip(monitor: dict[str, Any]) -> dict[str, Any]:
    raw = raw_stack("prod")
    raw["gslb"]["wideIps"].append({"app": "portal", "monitor": monitor})
    return raw


def test_fails_a_wide_ip_monitor_expecting_the_apps_answer_for_an_app_behind_apm() -> None:
    # APM answers a request without a session with a redirect to its logon page, never the app's 200.
    send = "GET / HTTP/1.1\r\nHost: portal.apps.example-bank.com\r\nConnection: close\r\n\r\n"
    raw = _portal_wide_ip({"type": "https", "send": send, "receive": "200 OK"})
    assert _errors(raw) == [
        "cpaas:gslb.wideIps[3].monitor.receive: '200 OK' expects the app's own answer, but app portal "
        "has access: APM answers a probe without a session with a redirect (302) to its logon page, "
        "so every unit would be marked down; expect the redirect (receive 'HTTP/1.1 302'), unset "
        "receive (AS3's default 'HTTP/1.' takes any answer) or use type tcp"
    ]


@pytest.mark.parametrize(
    "monitor",
    [{"type": "https", "receive": "HTTP/1.1 302"}, {"type": "https"}, {"type": "tcp"}],
)
def test_a_wide_ip_monitor_that_takes_apms_redirect_is_accepted_for_an_app_behind_apm(
    monitor: dict[str, Any],
) -> None:
    parsed = config.parse_stack(_portal_wide_ip(monitor))
    assert parsed.gslb is not None and parsed.gslb.wide_ips[3].app == "portal"
