"""Saving the BIG-IP's running configuration after Pulumi changes it.

The f5bigip provider writes through iControl REST into the running configuration and never
saves it, so without a save the objects are gone after a reboot. AS3 (GSLB, and CIS's own
declarations) saves by itself (`persist`, default true); everything else needs `save sys config`.
`ConfigSave` runs it after the unit's objects are created or changed: its replacement trigger is
a digest of their state, so it runs again exactly when one of them changed. The save on destroy
lives in `BigipDevice`, underneath everything else, so it runs after the last deletion.
Ref: https://github.com/F5Networks/terraform-provider-bigip/issues/1111
Ref: https://clouddocs.f5.com/cli/tmsh-reference/latest/modules/sys/sys_save.html
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_f5bigip as f5bigip

SAVE = "save sys config"


# Secret by the provider's choice, and never set by cpaas: left out of the digest.
_SECRET_PROPERTIES = frozenset({"passphrase"})


def _outputs(resource: pulumi.CustomResource) -> list[pulumi.Output[Any]]:
    """The output properties the resource's typed class declares (its getters), without secrets.

    Keys are left out: a key changes only together with its certificate. Certificates are public,
    but the provider marks every ssl `content` secret (the same field carries keys), so theirs is
    unmarked here; a digest of them reveals nothing."""
    if isinstance(resource, f5bigip.ssl.Key):
        return []
    getters = [
        name
        for name, attr in vars(type(resource)).items()
        if isinstance(attr, property) and name not in _SECRET_PROPERTIES
    ]
    outputs: list[pulumi.Output[Any]] = [getattr(resource, name) for name in getters]
    if isinstance(resource, f5bigip.ssl.Certificate):
        outputs = [pulumi.Output.unsecret(output) for output in outputs]
    return outputs


def digest(values: Sequence[Any]) -> str:
    return hashlib.sha256(json.dumps(list(values), sort_keys=True, default=str).encode()).hexdigest()


def state_digest(objects: Sequence[pulumi.CustomResource]) -> pulumi.Output[str]:
    """A digest of the objects' state as the provider returns it: it changes when any of them
    is created, replaced or updated, and stays put when none is. Holds no secret."""
    outputs = [output for resource in objects for output in _outputs(resource)]
    return pulumi.Output.all(*outputs).apply(digest)


@dataclass(frozen=True)
class SaveArgs:
    # Every object Pulumi manages on the device (the provider comes from opts).
    objects: tuple[pulumi.CustomResource, ...]


class ConfigSave(pulumi.ComponentResource):
    def __init__(self, name: str, args: SaveArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:bigip:ConfigSave", name, None, opts)
        if not args.objects:
            raise ValueError(f"{name}: nothing to save; give the objects Pulumi manages on the device")
        trigger = state_digest(args.objects)
        # The trigger's own dependencies do not order the command: depends_on does.
        self.command = f5bigip.Command(
            f"{name}-command",
            commands=[SAVE],
            when="apply",
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=list(args.objects), replacement_trigger=trigger
            ),
        )
        self.register_outputs({"saves": len(args.objects)})
