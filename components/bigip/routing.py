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


def device_bgp_name(device: config.SharedBigip) -> str:
    return f"/Common/cpaas-{device.name}"


def peer_group(unit: config.Unit) -> str:
    return f"cpaas-{unit.name}"


def _delete_if_present(name: str) -> str:
    return (
        f'run util bash -c "if tmsh list net routing bgp {name} >/dev/null 2>&1; then '
        f'tmsh delete net routing bgp {name}; fi"'
    )


def device_tmsh_commands(device: config.SharedBigip, units: tuple[config.Unit, ...]) -> list[str]:
    """One BGP instance for a shared device: a peer group per calico-bgp unit (remote AS = that
    unit's), its nodes as the group's neighbours. It also deletes each unit's own instance from
    before the device was shared (one instance per route domain). Pure: test it directly.
    Ref: F5Networks/f5-declarative-onboarding@v1.45.0:src/lib/networkHandler.js (handleRoutingBGP:
         one net routing bgp with a list of peer groups, each with remoteAs, neighbours naming a
         peer group, and routeDomain)"""
    bgp = _bgp_units(units)
    if not bgp:
        return []  # no calico-bgp unit: no BGP instance
    name = device_bgp_name(device)
    groups = " ".join(f"{peer_group(u)} {{ remote-as {calico.calico_cni(u).asn} }}" for u in bgp)
    neighbors = " ".join(
        f"{ip} {{ peer-group {peer_group(u)} }}"
        for u in bgp
        for ip in (u.bigip.bgp_neighbors if u.bigip else ())
    )
    return [
        "modify sys db tmrouted.tmos.routing value enable",
        *(_delete_if_present(n) for n in (name, *(bgp_name(u) for u in bgp))),
        f"create net routing bgp {name} local-as {device.asn} "
        f"graceful-restart {{ graceful-reset enabled restart-time {calico.GRACEFUL_RESTART[:-1]} }} "
        f"peer-group add {{ {groups} }} neighbor add {{ {neighbors} }}",
    ]


def do_declaration(unit: config.Unit) -> dict[str, Any]:
    """The same peering as a DO RoutingBGP class, for BIG-IPs that are onboarded with DO."""
    bigip, cni = peering(unit)
    groups = [{"name": PEER_GROUP, "remoteAS": cni.asn}]
    neighbors = [{"address": str(ip), "peerGroup": PEER_GROUP} for ip in bigip.bgp_neighbors]
    return _do(f"cpaas-{unit.name}", bigip.asn, groups, neighbors)


def device_do_declaration(device: config.SharedBigip, units: tuple[config.Unit, ...]) -> dict[str, Any]:
    """A shared device's one BGP instance as a DO RoutingBGP class: a peer group per calico-bgp unit."""
    bgp = _bgp_units(units)
    groups = [{"name": peer_group(u), "remoteAS": calico.calico_cni(u).asn} for u in bgp]
    neighbors = [
        {"address": str(ip), "peerGroup": peer_group(u)}
        for u in bgp
        for ip in (u.bigip.bgp_neighbors if u.bigip else ())
    ]
    return _do(f"cpaas-{device.name}", device.asn, groups, neighbors)


def _bgp_units(units: tuple[config.Unit, ...]) -> list[config.Unit]:
    """The calico-bgp units among a device's (config rules refuse a route domain but 0 for now)."""
    return [u for u in units if u.bigip is not None and u.uses_calico]


def _do(name: str, asn: int, groups: list[dict[str, Any]], neighbors: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemaVersion": versions.DO_SCHEMA_VERSION,
        "class": "Device",
        "async": True,
        "Common": {
            "class": "Tenant",
            name: {
                "class": "RoutingBGP",
                "localAS": asn,
                "gracefulRestart": {
                    "gracefulResetEnabled": True,
                    "restartTime": int(calico.GRACEFUL_RESTART[:-1]),
                },
                "peerGroups": groups,
                "neighbors": neighbors,
            },
        },
    }


@dataclass(frozen=True)
class BgpArgs:
    # The BGP instance, the tmsh that makes it, and what it is for the check's message.
    instance: str
    commands: tuple[str, ...]
    what: str
    after: tuple[pulumi.Resource, ...] = ()

    @classmethod
    def of_unit(cls, unit: config.Unit, after: tuple[pulumi.Resource, ...] = ()) -> BgpArgs:
        return cls(bgp_name(unit), tuple(tmsh_commands(unit)), f"unit {unit.name}: BGP configuration", after)


class BigipBgp(pulumi.ComponentResource):
    def __init__(self, name: str, args: BgpArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:bigip:BigipBgp", name, None, opts)
        commands = list(args.commands)
        apply = f5bigip.Command(
            f"{name}-apply",
            commands=commands,
            when="apply",
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )

        # A step that fails when the output is a tmsh error: the unit's save waits for it.
        self.check = output_check(
            f"{name}-check",
            CheckArgs(apply, args.commands, args.what),
            pulumi.ResourceOptions(parent=self),
        )
        remove = f5bigip.Command(
            f"{name}-remove",
            commands=[f"delete net routing bgp {args.instance}", SAVE],
            when="destroy",
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.objects: tuple[pulumi.CustomResource, ...] = (apply, remove)
        self.register_outputs({"bgp": args.instance})
