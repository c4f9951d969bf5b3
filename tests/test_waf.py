"""BIG-IP Advanced WAF per app: a created policy (`waf.template`) or an existing one (`waf.policy`),
attached through the app's CIS VirtualServer.

Pulumi.prod.yaml: bookinfo has a templated policy in aws-syd and onprem-syd and names an existing
policy in azure-mel; httpbin and mqtt have no WAF.
"""

from __future__ import annotations

from typing import Any

import pytest

from components import config
from components.bigip import ingress, waf
from components.bigip.device import Login
from components.bigip.waf import WafArgs, WafPolicies
from tests.support import raw_stack, run_build, stack
from tools import engine, render
from tools.validate import Validator, resolve_schema_dir

WAF_TYPE = "f5bigip:index/wafPolicy:WafPolicy"
COMPONENT = "cpaas:bigip:WafPolicies"
VIRTUAL_SERVER = "kubernetes:cis.f5.com/v1:VirtualServer"


APP = dict(
    name="shop",
    kind="http-mesh",
    fqdn="shop.example.com",
    vip="192.0.2.10",
    port=443,
    namespace="shop",
    service="web",
    service_port=8080,
)


def _app(**update: Any) -> config.App:
    return config.App.model_validate({**APP, **update})


def test_a_templated_app_gets_one_waf_policy_named_after_its_unit_app_and_template_in_common(
    prod: engine.Run,
) -> None:
    policies = {r.name: r.inputs for r in prod.by_type(WAF_TYPE)}
    assert set(policies) == {
        "aws-syd-waf-bookinfo-rapid-deployment",
        "onprem-syd-waf-bookinfo-rapid-deployment",
    }
    for unit in ("aws-syd", "onprem-syd"):
        inputs = policies[f"{unit}-waf-bookinfo-rapid-deployment"]
        assert inputs["name"] == f"cpaas-{unit}-bookinfo-waf-rapid-deployment"
        assert inputs["partition"] == "Common"
        assert inputs["templateName"] == "POLICY_TEMPLATE_RAPID_DEPLOYMENT"
        assert inputs["enforcementMode"] == "blocking"
        assert inputs["applicationLanguage"] == "utf-8"
        assert unit in inputs["description"]


def _provider_of(run: engine.Run, reg: engine.Registration) -> engine.Registration:
    return run.by_urn()[reg.provider.rsplit("::", 1)[0]]


def test_each_waf_policy_has_a_provider_of_its_own_for_its_units_bigip_and_sits_in_the_waf_component(
    prod: engine.Run,
) -> None:
    """Its own provider (plugin process): a failed WAF step keeps its process's lock (device.Login)."""
    by_urn = prod.by_urn()
    for reg in prod.by_type(WAF_TYPE):
        unit = reg.name.removesuffix("-waf-bookinfo-rapid-deployment")
        provider = prod.get(f"{unit}-waf-bookinfo-provider")
        assert reg.provider.startswith(provider.urn + "::"), reg.name
        # The same BIG-IP as the unit's other objects (its own, or its shared device's provider).
        assert provider.inputs == _provider_of(prod, prod.get(f"{unit}-bigip-pulumi-partition")).inputs
        assert by_urn[provider.parent].name == f"{unit}-waf"
        parent = by_urn[reg.parent]
        assert (parent.type, parent.name) == (COMPONENT, f"{unit}-waf")
        assert by_urn[parent.parent].name == unit


def test_every_waf_policy_is_deleted_before_it_is_replaced(prod: engine.Run) -> None:
    regs = prod.by_type(WAF_TYPE)
    assert regs
    for reg in regs:
        assert reg.options["deleteBeforeReplace"] is True, reg.name


def test_the_cis_virtual_server_names_the_created_policy_and_waits_for_it(prod: engine.Run) -> None:
    for unit in ("aws-syd", "onprem-syd"):
        vs = prod.get(f"{unit}-ingress-bookinfo-virtualserver")
        policy = prod.get(f"{unit}-waf-bookinfo-rapid-deployment")
        assert vs.inputs["spec"]["waf"] == f"/{policy.inputs['partition']}/{policy.inputs['name']}"
        assert policy.urn in vs.dependencies


def test_a_template_change_makes_a_new_policy_beside_the_old_one_and_the_virtual_server_moves_to_it(
    prod: engine.Run,
) -> None:
    """The provider reads another template back (terraform-provider-bigip issue 871), so the
    template is ignored on an existing policy, and `--replace` would put the old one back too: a
    new template is a new resource, with a new name so it is created before the old is deleted."""
    raw = raw_stack("prod")
    raw["units"][2]["apps"][0]["waf"]["template"] = "POLICY_TEMPLATE_FUNDAMENTAL"
    changed = run_build(config.parse_stack(raw), "prod")
    [old] = [r for r in prod.by_type(WAF_TYPE) if r.name.startswith("onprem-syd-")]
    [new] = [r for r in changed.by_type(WAF_TYPE) if r.name.startswith("onprem-syd-")]
    assert new.urn != old.urn  # no old state, so ignoreChanges has no old template to restore
    assert new.options["ignoreChanges"] == old.options["ignoreChanges"] == ["templateName"]
    assert new.inputs["templateName"] == "POLICY_TEMPLATE_FUNDAMENTAL"
    assert new.inputs["name"] != old.inputs["name"]  # both exist until the old one is deleted
    vs = changed.get("onprem-syd-ingress-bookinfo-virtualserver")
    assert vs.inputs["spec"]["waf"] == f"/Common/{new.inputs['name']}"
    assert new.urn in vs.dependencies
    # The other units keep their policies.
    assert {r.urn for r in changed.by_type(WAF_TYPE)} - {new.urn} == {
        r.urn for r in prod.by_type(WAF_TYPE) if r.urn != old.urn
    }


def test_a_template_change_makes_a_new_wait_so_the_old_one_holds_the_old_policy_until_cis_moved_off_it(
    prod: engine.Run,
) -> None:
    """The old policy is deleted at the end of the update, after CIS resources changed in it;
    CIS applies the VirtualServer change later. The wait named with the old template leaves the
    program with the old policy: it is deleted first, and waits until nothing names the old path."""
    raw = raw_stack("prod")
    raw["units"][2]["apps"][0]["waf"]["template"] = "POLICY_TEMPLATE_FUNDAMENTAL"
    changed = run_build(config.parse_stack(raw), "prod")
    old = prod.get("onprem-syd-cis-drain-bookinfo-waf-rapid-deployment")
    new = changed.get("onprem-syd-cis-drain-bookinfo-waf-fundamental")
    assert old.inputs["environment"]["CPAAS_DRAIN_REFERENCE"] == (
        "/Common/cpaas-onprem-syd-bookinfo-waf-rapid-deployment"
    )
    assert new.inputs["environment"]["CPAAS_DRAIN_REFERENCE"] == (
        "/Common/cpaas-onprem-syd-bookinfo-waf-fundamental"
    )
    assert old.urn not in {r.urn for r in changed.registrations}
    assert prod.get("onprem-syd-waf-bookinfo-rapid-deployment").urn in old.dependencies
    assert changed.get("onprem-syd-waf-bookinfo-fundamental").urn in new.dependencies
    assert new.urn in changed.get("onprem-syd-ingress-bookinfo-virtualserver").dependencies


def test_an_app_naming_an_existing_policy_gets_no_waf_policy_only_the_reference(prod: engine.Run) -> None:
    vs = prod.get("azure-mel-ingress-bookinfo-virtualserver")
    assert vs.inputs["spec"]["waf"] == "/Common/bookinfo-waf"
    assert not [r for r in prod.registrations if r.name.startswith("azure-mel-waf")]
    assert not any(r.type == WAF_TYPE for r in prod.registrations if r.urn in prod.upstream(vs))


def test_apps_without_a_waf_have_none_in_their_virtual_server(prod: engine.Run) -> None:
    # (They still wait for the unit's policies: CisIngress applies its `after` to every child.)
    for unit in ("aws-syd", "azure-mel", "onprem-syd"):
        for app in ("httpbin",):
            vs = prod.get(f"{unit}-ingress-{app}-virtualserver")
            assert "waf" not in vs.inputs["spec"]
        assert "waf" not in prod.get(f"{unit}-ingress-mqtt-transportserver").inputs["spec"]


def test_waf_is_off_by_default_so_a_stack_without_waf_config_has_no_policy() -> None:
    raw = raw_stack("prod")
    for unit in raw["units"]:
        for app in unit["apps"]:
            app.pop("waf", None)
    run = run_build(config.parse_stack(raw), "prod")
    assert not run.by_type(WAF_TYPE)
    assert not run.by_type(COMPONENT)
    assert not any("waf" in r.inputs.get("spec", {}) for r in run.by_type(VIRTUAL_SERVER))


def test_an_nginx_app_can_have_a_templated_policy_in_transparent_mode() -> None:
    raw = raw_stack("prod")
    httpbin = raw["units"][1]["apps"][1]
    assert httpbin["name"] == "httpbin"
    httpbin["waf"] = {"template": "POLICY_TEMPLATE_FUNDAMENTAL", "enforcementMode": "transparent"}
    run = run_build(config.parse_stack(raw), "prod")
    policy = run.get("azure-mel-waf-httpbin-fundamental")
    assert policy.inputs["templateName"] == "POLICY_TEMPLATE_FUNDAMENTAL"
    assert policy.inputs["enforcementMode"] == "transparent"
    vs = run.get("azure-mel-ingress-httpbin-virtualserver")
    assert vs.inputs["spec"]["waf"] == "/Common/cpaas-azure-mel-httpbin-waf-fundamental"
    assert policy.urn in vs.dependencies


def test_policy_inputs_are_a_pure_function_of_unit_and_app() -> None:
    app = _app(waf={"template": "POLICY_TEMPLATE_RAPID_DEPLOYMENT", "enforcement_mode": "transparent"})
    inputs = waf.policy_inputs("u1", app)
    assert inputs == {
        "name": "cpaas-u1-shop-waf-rapid-deployment",
        "partition": "Common",
        "template_name": "POLICY_TEMPLATE_RAPID_DEPLOYMENT",
        "enforcement_mode": "transparent",
        "application_language": "utf-8",
        "description": "cpaas: WAF for shop (shop.example.com) in unit u1; managed by Pulumi",
    }
    assert ingress.waf_policy_path("u1", app) == "/Common/cpaas-u1-shop-waf-rapid-deployment"


def test_only_apps_with_a_template_are_templated() -> None:
    unit = stack("prod").unit("azure-mel")
    assert waf.templated_apps(unit) == []
    assert [a.name for a in waf.templated_apps(stack("prod").unit("aws-syd"))] == ["bookinfo"]


def test_fails_policy_inputs_for_an_app_that_names_an_existing_policy() -> None:
    with pytest.raises(ValueError, match=r"^unit u1: app shop has waf\.policy \(an existing policy\), not"):
        waf.policy_inputs("u1", _app(waf={"policy": "/Common/shop-waf"}))
    with pytest.raises(ValueError, match=r"^unit u1: app shop has no waf, not waf\.template"):
        waf.policy_inputs("u1", _app())


def test_the_component_waits_for_what_it_is_given() -> None:
    unit = stack("prod").unit("onprem-syd")

    def program() -> dict[str, Any]:
        import pulumi
        import pulumi_f5bigip as f5bigip

        gate = f5bigip.Partition("gate", name="gate")
        login = Login(unit.bigip, "pw", "trust/u.pem")  # type: ignore[arg-type]
        WafPolicies("u-waf", WafArgs(unit, login, (gate,)), pulumi.ResourceOptions())
        return {}

    run = engine.run(program, stack="test", mocks=engine.StateMocks())
    gate = run.get("gate")
    policy = run.get("u-waf-bookinfo-rapid-deployment")
    assert gate.urn in policy.dependencies
    assert policy.options["deleteBeforeReplace"] is True


def test_every_virtual_server_with_a_waf_validates_against_the_cis_crd(prod: engine.Run) -> None:
    validator = Validator(resolve_schema_dir(None))
    checked = 0
    for reg in prod.by_type(VIRTUAL_SERVER):
        obj = render.k8s_object(reg)
        assert obj is not None
        if "waf" in obj["spec"]:
            checked += 1
            assert validator.k8s_object(obj, "1.34", reg.name) == [], reg.name
    assert checked == 3
    assert not validator.skipped
