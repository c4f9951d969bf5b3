"""A component function handed what config never gives it (a TCP app where an HTTP one belongs, a
unit without the part asked for) says what is wrong and what to do, instead of a bare assert,
which `python -O` drops and which names nothing (issue 15)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from components import calico, cluster, config, platform, routes
from components.bigip import egress, ingress, routing, waf
from components.unit import AtomicUnit
from tests.support import placeholder_inputs, stack
from tools import engine


def _unit(stack_name: str, name: str) -> config.Unit:
    return stack(stack_name).unit(name)


def _app(unit: config.Unit, name: str) -> config.App:
    return next(a for a in unit.apps if a.name == name)


DEV = _unit("dev", "dev")  # k3d, calico-bgp, no bigip, no egress
AWS = _unit("prod", "aws-syd")  # kubeconfig, cloud-native CNI, bigip, egress
MQTT = _app(AWS, "mqtt").model_copy(update={"fqdn": None})  # tcp without an fqdn, no waf
HTTPBIN = _app(AWS, "httpbin")  # http-nginx without waf
BOOKINFO_AZURE = _app(_unit("prod", "azure-mel"), "bookinfo")  # waf.policy: an existing policy

CASES: dict[str, tuple[Callable[[], Any], str]] = {
    "ingress.istio_gateway": (
        lambda: ingress.istio_gateway(MQTT),
        r"^app mqtt \(kind tcp\) has no fqdn, the Host an HTTP route matches; pass an HTTP app \(config "
        r"gives every http-mesh and http-nginx app an fqdn\)$",
    ),
    "ingress.nginx_ingress": (
        lambda: ingress.nginx_ingress(MQTT, "nginx"),
        r"^app mqtt \(kind tcp\) has no fqdn",
    ),
    "ingress.mesh_virtual_server": (
        lambda: ingress.mesh_virtual_server("aws-syd", MQTT),
        r"^app mqtt \(kind tcp\) has no fqdn",
    ),
    "routes.http_gateway": (lambda: routes.http_gateway(MQTT), r"^app mqtt \(kind tcp\) has no fqdn"),
    "ingress.waf_policy_path": (
        lambda: ingress.waf_policy_path("aws-syd", HTTPBIN),
        r"^unit aws-syd: app httpbin has no waf, so it names no WAF policy; set apps\[\]\.waf",
    ),
    "waf.policy_inputs": (
        lambda: waf.policy_inputs("azure-mel", BOOKINFO_AZURE),
        r"^unit azure-mel: app bookinfo has waf\.policy \(an existing policy\), not waf\.template: Pulumi "
        r"creates a WAF policy only from a template; pick the apps with waf\.templated_apps",
    ),
    "waf.resource_name": (
        lambda: waf.resource_name("aws-syd-waf", HTTPBIN),
        r"^aws-syd-waf: app httpbin has no waf, not waf\.template",
    ),
    "calico.operator_values": (
        lambda: calico.operator_values(AWS),
        r"^unit aws-syd: network\.cni is cloud-native, not calico-bgp, so it has no Calico; build Calico "
        r"only where unit\.uses_calico",
    ),
    "routing.tmsh_commands without calico": (
        lambda: routing.tmsh_commands(AWS),
        r"^unit aws-syd: network\.cni is cloud-native, not calico-bgp",
    ),
    "routing.tmsh_commands without bigip": (
        lambda: routing.tmsh_commands(DEV),
        r"^unit dev: no bigip is configured, so there is no BIG-IP side of a BGP peering; build it only "
        r"for units with bigip",
    ),
    "routing.do_declaration without bigip": (
        lambda: routing.do_declaration(DEV),
        r"^unit dev: no bigip is configured",
    ),
    "cluster.k3d_config": (
        lambda: cluster.k3d_config(AWS),
        r"^unit aws-syd: cluster\.source is kubeconfig, not k3d, so there is no k3d config; use it only "
        r"where unit\.is_local",
    ),
    "egress.service_entry": (
        lambda: egress.service_entry(DEV, "spiffe://x/ns/y/sa/z"),
        r"^unit dev: no egress is configured, so there is no egress gateway to register in the mesh; "
        r"build it only for units with egress",
    ),
    "egress.destination_rule": (lambda: egress.destination_rule(DEV), r"^unit dev: no egress is configured"),
}


@pytest.mark.parametrize("call", CASES, ids=list(CASES))
def test_fails_with_a_value_error_that_names_the_unit_or_app_and_the_fix(call: str) -> None:
    function, message = CASES[call]
    with pytest.raises(ValueError, match=message) as raised:
        function()
    assert "\n" not in str(raised.value)


def test_fails_when_a_unit_with_a_bigip_is_given_no_bigip_password() -> None:
    """Not an empty password that the BIG-IP and CIS would refuse only at deploy time."""
    prod = stack("prod")
    unit = prod.unit("aws-syd")
    assert prod.pki is not None and unit.bigip is not None

    def program() -> None:
        inputs = placeholder_inputs(prod)
        pki = platform._pki(prod, prod.pki, inputs)  # type: ignore[arg-type]
        args = replace(platform._unit_args(prod, unit, pki, inputs, {}), bigip_password=None)
        AtomicUnit(unit.name, args)

    key = f"cpaas:{unit.bigip.password_secret}"
    message = rf"^unit aws-syd: bigip\.passwordSecret {key}: no password was passed to the unit; set it"
    with pytest.raises(ValueError, match=message):
        engine.run(program)
