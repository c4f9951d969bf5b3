"""The BIG-IP side of the Calico BGP peering, as idempotent tmsh (TMOS routing mode).

tmsh `net routing bgp` objects (TMOS mode, `tmrouted.tmos.routing` enabled) rather than imish:
ordinary config objects. BIG-IP cannot overwrite a peer group that has members or change
`local-as` in place, so, as DO does, the commands delete the object when it exists and create it
whole; re-running converges (the BGP sessions restart). Not DO itself: DO owns every object of the
classes it declares (VLANs, self IPs, routes...), which would take the device from its other owners.
Ref: https://clouddocs.f5.com/cli/tmsh-reference/latest/modules/net/net_routing_bgp.html
Ref: https://github.com/F5Networks/f5-declarative-onboarding/blob/main/src/lib/networkHandler.js
     (handleRoutingBGP: "Pre-deleting RoutingBGP")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_f5bigip as f5bigip

from components import calico, config, versions
from components.bigip.persist import SAVE
from components.bigip.tmsh_check import CheckArgs, output_check

PEER_GROUP = "calico"


def bgp_name(unit: config.Unit) -> str:
    return f"/Common/cpaas-{unit.name}"


def peering(unit: config.Unit) -> tuple[config.Bigip, config.CalicoBgp]:
    """The two sides of the unit's BGP peering: its BIG-IP and its Calico."""
    if unit.bigip is None:
        raise ValueError(
            f"unit {unit.name}: no bigip is configured, so there is no BIG-IP side of a BGP peering; "
            "build it only for units with bigip"
        )
    return unit.bigip, calico.calico_cni(unit)


def tmsh_commands(unit: config.Unit) -> list[str]:
    """The tmsh commands (without the `tmsh` prefix the provider adds). Pure: test it directly."""
    bigip, cni = peering(unit)
    name = bgp_name(unit)
    neighbors = " ".join(f"{ip} {{ peer-group {PEER_GROUP} }}" for ip in bigip.bgp_neighbors)
    return [
        "modify sys db tmrouted.tmos.routing value enable",
        f'run util bash -c "if tmsh list net routing bgp {name} >/dev/null 2>&1; then '
        f'tmsh delete net routing bgp {name}; fi"',
        f"create net routing bgp {name} local-as {bigip.asn} "
        f"graceful-restart {{ graceful-reset enabled restart-time {calico.GRACEFUL_RESTART[:-1]} }} "
        f"peer-group add {{ {PEER_GROUP} {{ remote-as {cni.asn} }} }} "
        f"neighbor add {{ {neighbors} }}",
        # No save here: the unit's ConfigSave saves once the output shows no tmsh error.
    ]


def do_declaration(unit: config.Unit) -> dict[str, Any]:
    """The same peering as a DO RoutingBGP class, for BIG-IPs that are onboarded with DO."""
    bigip, cni = peering(unit)
    return {
        "schemaVersion": versions.DO_SCHEMA_VERSION,
        "class": "Device",
        "async": True,
        "Common": {
            "class": "Tenant",
            f"cpaas-{unit.name}": {
                "class": "RoutingBGP",
                "localAS": bigip.asn,
                "gracefulRestart": {
                    "gracefulResetEnabled": True,
                    "restartTime": int(calico.GRACEFUL_RESTART[:-1]),
                },
                "peerGroups": [{"name": PEER_GROUP, "remoteAS": cni.asn}],
                "neighbors": [{"address": str(ip), "peerGroup": PEER_GROUP} for ip in bigip.bgp_neighbors],
            },
        },
    }


@dataclass(frozen=True)
class BgpArgs:
    unit: config.Unit
    after: tuple[pulumi.Resource, ...] = ()


class BigipBgp(pulumi.ComponentResource):
    def __init__(self, name: str, args: BgpArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:bigip:BigipBgp", name, None, opts)
        unit = args.unit
        commands = tmsh_commands(unit)
        apply = f5bigip.Command(
            f"{name}-apply",
            commands=commands,
            when="apply",
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )

        # A step that fails when the output is a tmsh error: the unit's save waits for it.
        self.check = output_check(
            f"{name}-check",
            CheckArgs(apply, tuple(commands), f"unit {unit.name}: BGP configuration"),
            pulumi.ResourceOptions(parent=self),
        )
        remove = f5bigip.Command(
            f"{name}-remove",
            commands=[f"delete net routing bgp {bgp_name(unit)}", SAVE],
            when="destroy",
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.objects: tuple[pulumi.CustomResource, ...] = (apply, remove)
        self.register_outputs({"bgp": bgp_name(unit)})
