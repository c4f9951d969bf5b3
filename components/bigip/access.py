"""APM access profiles of the unit's HTTP apps (`apps[].access`): where each one is, and the AS3
declaration that imports the ones the identity team exported.

An app's CIS VirtualServer names its access profile as `profileAccess` (and its per-request policy
as `policyPerRequestAccess`). A CIS virtual server references objects of its own partition and of
/Common only, and CIS owns its partition alone, so every profile is in /Common: an existing one
(`access.profile`), or one imported here. The import is one `f5bigip.As3` resource per unit whose
declaration holds tenant `Common`, application `Shared`: AS3 Access_Profile and
Per_Request_Access_Policy fetch the exports from their URLs (the BIG-IP must reach them) and apply
the profile (`enable`). AS3 imports APM objects into the tenant root whatever their application,
so the objects are /Common/cpaas-<unit>-<app>-access (and -prp), and that is the path the
VirtualServer names; AS3 checks a `bigip` pointer exists, so /Common/Shared/<name> would fail CIS's
whole declaration. AS3 refuses both classes unless APM is provisioned (README "Access:
authentication and authorisation").

Ref: F5Networks/f5-appsvcs-extension@v3.56.0 schema/3.56.0/as3-schema.json (Access_Profile,
     Per_Request_Access_Policy: url, enable, ignoreChanges; f5PostProcess modules apm)
Ref: F5Networks/f5-appsvcs-extension@v3.56.0 src/lib/fetch.js (ignoreChanges false drops the
     current object so it is imported again; a diff only in iControl_* is filtered out),
     src/lib/map_cli.js (a re-import keeps the virtuals on the profile's name and applies it),
     docs/declarations/access-related.rst (the enable / ignoreChanges matrix)
Ref: F5Networks/f5-appsvcs-extension@v3.56.0 src/lib/map_as3.js (Access_Profile,
     Per_Request_Access_Policy: path mcpPath(tenantId, '', itemId)), src/lib/map_cli.js
     ('apm profile access': ng_import ... -p <partition>)
Ref: F5Networks/k8s-bigip-ctlr@v2.20.4 docs/config_examples/customResource/VirtualServer/
     accessProfile-per-request-policy/ (profileAccess, policyPerRequestAccess)
Ref: F5Networks/terraform-provider-bigip@v1.26.0 vendor/github.com/f5devcentral/go-bigip/
     as3bigip.go (GetTenantList: the provider posts to the declaration's tenants, here `Common`)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_f5bigip as f5bigip

from components import config
from components.bigip import as3
from components.bigip.as3 import COMMON, SHARED
from components.config.rules import imported_access_name


def imported_apps(unit: config.Unit) -> list[config.App]:
    """The apps whose access profile AS3 imports, in config order."""
    return [a for a in unit.apps if a.access is not None and a.access.import_ is not None]


def profile_name(unit: str, app: config.App) -> str:
    return imported_access_name(unit, app.name, "access")


def policy_name(unit: str, app: config.App) -> str:
    return imported_access_name(unit, app.name, "prp")


def _access(unit: str, app: config.App) -> config.Access:
    if app.access is None:
        raise ValueError(
            f"unit {unit}: app {app.name} has no access, so it names no access profile; set "
            "apps[].access or build its VirtualServer without one"
        )
    return app.access


def profile_path(unit: str, app: config.App) -> str:
    """The access profile the app's VirtualServer names: the configured one or the imported one."""
    access = _access(unit, app)
    if access.profile is not None:
        return access.profile
    return f"/{COMMON}/{profile_name(unit, app)}"


def per_request_policy_path(unit: str, app: config.App) -> str | None:
    """The per-request policy the app's VirtualServer names, if any."""
    access = _access(unit, app)
    if access.import_ is not None:
        if access.import_.per_request_policy_url is None:
            return None
        return f"/{COMMON}/{policy_name(unit, app)}"
    return access.per_request_policy


def declaration(unit: config.Unit) -> dict[str, Any]:
    """The AS3 request that imports the unit's exported access profiles into /Common."""
    shared: dict[str, Any] = {"class": "Application", "template": "shared"}
    for app in unit.apps:
        imported = app.access.import_ if app.access is not None else None
        if imported is None:
            continue
        # ignoreChanges: imported once; each post of this declaration (another app's import
        # added) would otherwise fetch every export again, re-import it and re-apply it. A new
        # export is taken with `refresh`, in place, so the VirtualServer's path never changes.
        keep = not imported.refresh
        # enable: apply the access policy once imported; an unapplied policy serves no one.
        shared[profile_name(unit.name, app)] = {
            "class": "Access_Profile",
            "url": {"url": imported.url},
            "enable": True,
            "ignoreChanges": keep,
        }
        if imported.per_request_policy_url is not None:
            shared[policy_name(unit.name, app)] = {
                "class": "Per_Request_Access_Policy",
                "url": {"url": imported.per_request_policy_url},
                "ignoreChanges": keep,
            }
    return as3.request(
        f"cpaas-access-{unit.name}",
        f"cpaas access {unit.name}",
        {COMMON: {"class": "Tenant", SHARED: shared}},
    )


@dataclass(frozen=True)
class AccessArgs:
    unit: config.Unit
    # Children wait for these: a component's depends_on does not reach its children.
    after: tuple[pulumi.Resource, ...] = ()


class AccessImports(pulumi.ComponentResource):
    """The unit's imported access profiles, on its BIG-IP (the provider comes from opts)."""

    as3: f5bigip.As3

    def __init__(self, name: str, args: AccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:bigip:AccessImports", name, None, opts)
        unit = args.unit
        self.as3 = f5bigip.As3(
            f"{name}-as3",
            as3_json=json.dumps(declaration(unit), sort_keys=True),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.objects: tuple[pulumi.CustomResource, ...] = (self.as3,)
        self.register_outputs({"profiles": {a.name: profile_path(unit.name, a) for a in imported_apps(unit)}})
