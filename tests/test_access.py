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

from components import config, meshauthz
from components.bigip import access
from tests.support import raw_stack, stack
from tools import engine, graph, render

POLICY = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
REQUEST_AUTHN = "kubernetes:security.istio.io/v1:RequestAuthentication"
VIRTUAL_SERVER = "kubernetes:cis.f5.com/v1:VirtualServer"
AS3 = "f5bigip:index/as3:As3"
AZURE_ISSUER = "https://login.microsoftonline.com/4f1c2a9e-7b1d-4c55-9a3e-2d0c8e6b5a10/v2.0"
APM_ISSUER = "https://sso.example-bank.com"


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
                "audiences": ["api://portal"],
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


def test_an_imported_profile_is_an_as3_access_profile_in_common_shared_that_the_virtual_server_waits_for(
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
    }
    assert set(body["declaration"]) == {"class", "schemaVersion", "id", "label", "remark", "Common"}
    portal = next(
        r
        for r in prod.by_type(VIRTUAL_SERVER)
        if _unit_of(prod, r) == "aws-syd" and r.inputs["metadata"]["name"] == "portal"
    )
    assert portal.inputs["spec"]["profileAccess"] == "/Common/Shared/cpaas-aws-syd-portal-access"
    assert imports[0].urn in prod.upstream(portal)
    assert not [r for r in prod.by_type(AS3) if _unit_of(prod, r) != "aws-syd" and r.name != "gslb-as3"]


def test_the_import_goes_to_the_units_bigip_and_is_held_until_cis_has_let_go_of_it(prod: engine.Run) -> None:
    reg = prod.get("aws-syd-access-as3")
    assert reg.provider.startswith(prod.get("aws-syd-bigip-provider").urn + "::")
    # Deleted only after the CIS drain (the virtual servers are gone), saved with the rest.
    assert reg.urn in prod.get("aws-syd-cis-drain-wait").dependencies
    assert reg.urn in prod.get("aws-syd-bigip-save-command").dependencies
    assert access.profile_path("aws-syd", stack("prod").unit("aws-syd").apps[3]) == (
        "/Common/Shared/cpaas-aws-syd-portal-access"
    )


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


def _errors(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(config.ConfigError) as info:
        config.parse_stack(raw)
    return info.value.lines


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
