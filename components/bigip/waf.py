"""BIG-IP Advanced WAF policies that Pulumi creates for the unit's apps (`waf.template`).

An app with `waf.template` gets one `f5bigip.WafPolicy` named `cpaas-<unit>-<app>-waf-<template>`
(e.g. `-waf-rapid-deployment`) in /Common, built from the F5 template with the configured
enforcement mode; the app's CIS VirtualServer names it as its `waf` (`ingress.waf_policy_path`).
/Common, not the CIS partition (CIS owns that one alone) nor Pulumi's (CIS objects never point
into it). An app with `waf.policy` references an existing policy: nothing is created here, and
the policy must exist on the BIG-IP.

The provider reads the template back from the policy export, where BIG-IP 17.1 reports another
one, so the template of an existing policy is ignored (else every refresh would replace it). The
engine puts an ignored input back from the old state, on `--replace` too, so a template change
cannot be applied to an existing resource: another template is another resource (the template is
in its Pulumi name) and another policy (and in its BIG-IP name). It is created beside the old
one, the VirtualServer moves to it, and the old one is deleted at the end of the update, once CIS
has moved the virtual server off it (drain.py). `pulumi up --replace` is no way to change or
re-create a policy: it deletes the policy first (same name), while the VirtualServer still uses
it, and would create it again from the old template.

Ref: https://www.pulumi.com/registry/packages/f5bigip/api-docs/wafpolicy/
Ref: https://clouddocs.f5.com/containers/latest/userguide/crd/virtualserver.html (the `waf` field)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_f5bigip as f5bigip

from components import config
from components.bigip.device import Login
from components.bigip.ingress import template_slug, waf_policy_path, waf_template

PARTITION = "Common"


def templated_apps(unit: config.Unit) -> list[config.App]:
    """The apps whose WAF policy Pulumi creates, in config order."""
    return [a for a in unit.apps if a.waf is not None and a.waf.template is not None]


def policy_inputs(unit: str, app: config.App) -> dict[str, Any]:
    """The WafPolicy's inputs for an app with `waf.template`. Pure: test it directly."""
    waf, template = waf_template(f"unit {unit}", app)
    path = waf_policy_path(unit, app)
    partition, _, name = path.removeprefix("/").partition("/")
    if partition != PARTITION:
        raise ValueError(
            f"unit {unit}: app {app.name}'s WAF policy {path} is outside /{PARTITION}, where Pulumi "
            "creates them; ingress.waf_policy_path and waf.PARTITION must agree"
        )
    return {
        "name": name,
        "partition": partition,
        "template_name": template,
        "enforcement_mode": waf.enforcement_mode,
        "application_language": "utf-8",
        "description": f"cpaas: WAF for {app.name} ({app.fqdn}) in unit {unit}; managed by Pulumi",
    }


def resource_name(component: str, app: config.App) -> str:
    """The policy's Pulumi name: the template is in it, so another template is another resource."""
    return f"{component}-{app.name}-{template_slug(waf_template(component, app)[1])}"


@dataclass(frozen=True)
class WafArgs:
    unit: config.Unit
    # The unit's BIG-IP: each policy gets a provider of its own for it (device.Login).
    login: Login
    # Children wait for these: a component's depends_on does not reach its children.
    after: tuple[pulumi.Resource, ...] = ()


class WafPolicies(pulumi.ComponentResource):
    """One WAF policy per templated app, on the unit's BIG-IP (the provider comes from opts)."""

    policies: dict[str, f5bigip.WafPolicy]

    def __init__(self, name: str, args: WafArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:bigip:WafPolicies", name, None, opts)
        unit = args.unit
        self.policies = {
            app.name: f5bigip.WafPolicy(
                resource_name(name, app),
                **policy_inputs(unit.name, app),
                # The provider reads templateName back from the policy export, where BIG-IP 17.1
                # reports another template: without this every refresh would replace the policy.
                # A new template gets a new resource (its name), which nothing old is put back on.
                # Ref: https://github.com/F5Networks/terraform-provider-bigip/issues/871
                # Ref: F5Networks/terraform-provider-bigip@v1.26.0:bigip/resource_bigip_awaf_policy.go
                #      (name and template_name ForceNew; read sets template_name from the export)
                # Ref: pulumi/pulumi@v3.259.0:pkg/resource/deploy/step_generator.go
                #      (processIgnoreChanges restores ignored inputs from the old state)
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # One per app, never shared with the unit's other objects: a failed step
                    # keeps its provider process locked (device.Login). A new template's policy
                    # shares it with the old one, whose deletion takes no lock.
                    provider=args.login.provider(f"{name}-{app.name}-provider", self),
                    depends_on=list(args.after),
                    delete_before_replace=True,
                    ignore_changes=["templateName"],
                ),
            )
            for app in templated_apps(unit)
        }
        self.objects: tuple[pulumi.CustomResource, ...] = tuple(self.policies.values())
        self.register_outputs(
            {"policies": {a.name: waf_policy_path(unit.name, a) for a in templated_apps(unit)}}
        )
