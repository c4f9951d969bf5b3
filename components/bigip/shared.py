"""A BIG-IP in front of several units (config.SharedBigip): what the device holds once.

One f5bigip provider, one save-on-destroy under every object of every unit on it, one BGP
instance with a peer group per calico-bgp unit, and one configuration save after all of the
units' objects. Each unit keeps its own partitions and objects (BigipDevice with `shared`).

A unit that had the device to itself (inline `bigip:`) and now names it as a shared device moves
these to this component: the first unit on the device (in stack order) keeps their URNs through
aliases (children inherit their parent's alias), so the move deletes nothing on the device; the
saves run once more, their triggers being new. The instance's tmsh also deletes each unit's own
BGP instance (BIG-IP runs one per route domain). A unit that joins a device later has its own
provider, BGP commands and save deleted: the old BGP `remove` deletes an instance already gone
(the provider ignores what a destroy-time command prints), the old save-on-destroy saves.
Ref: https://www.pulumi.com/docs/iac/concepts/options/aliases/
Ref: pulumi/pulumi@v3.259.0:pkg/resource/deploy/step_generator.go (inheritedChildAlias)
Ref: F5Networks/terraform-provider-bigip@v1.26.0:bigip/resource_bigip_command.go (commands is not
     ForceNew: a changed list updates in place; delete ignores the output)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_f5bigip as f5bigip

from components import config
from components.bigip import persist
from components.bigip.device import Login, Shared, bigip_provider, save_on_destroy
from components.bigip.persist import ConfigSave, SaveArgs
from components.bigip.routing import BgpArgs, BigipBgp, device_bgp_name, device_tmsh_commands

UNIT_TYPE = "cpaas:unit:AtomicUnit"
DEVICE_TYPE = "cpaas:bigip:BigipDevice"


@dataclass(frozen=True)
class SharedDeviceArgs:
    device: config.SharedBigip
    units: tuple[config.Unit, ...]  # the units on the device, in stack order
    password: pulumi.Input[str]
    trusted_cert_path: pulumi.Input[str] | None


def device_digest(args: SharedDeviceArgs, bgp_commands: list[str]) -> str:
    """What the device is asked for, as known before deployment: its config, each unit's digest
    (persist.unit_digest) and the BGP tmsh."""
    units = [persist.unit_digest(u) for u in args.units]
    return persist.digest([args.device.model_dump(mode="json"), units, bgp_commands])


@dataclass
class _Contributions:
    objects: list[pulumi.CustomResource] = field(default_factory=list)
    uploaded: list[pulumi.Input[str]] = field(default_factory=list)


class SharedDevice(pulumi.ComponentResource):
    provider: f5bigip.Provider
    shared: Shared

    def __init__(self, name: str, args: SharedDeviceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:bigip:SharedDevice", name, None, opts)
        if not args.units:
            raise ValueError(f"device {args.device.name}: no unit names it; build it only for units on it")
        self.device = args.device
        self._device_name = name
        self._first = args.units[0].name
        self._bgp = device_tmsh_commands(args.device, args.units)
        self._digest = device_digest(args, self._bgp)
        login = Login(args.device, args.password, args.trusted_cert_path)
        was_device = self._was(f"{self._first}-bigip", DEVICE_TYPE, self._unit_urn())
        self.provider = bigip_provider(
            f"{name}-provider",
            args.device,
            args.password,
            args.trusted_cert_path,
            self,
            aliases=[pulumi.Alias(name=f"{self._first}-bigip-provider", parent=was_device)],
        )
        alias = pulumi.Alias(name=f"{self._first}-bigip-save-on-destroy", parent=was_device)
        command = save_on_destroy(f"{name}-save-on-destroy", self, self.provider, self._digest, [alias])
        self.shared = Shared(login, self.provider, command)
        self._given = _Contributions()
        self.register_outputs({"address": str(args.device.management_address)})

    def _unit_urn(self) -> pulumi.Output[str]:
        return pulumi.resource.create_urn(self._first, UNIT_TYPE)

    @staticmethod
    def _was(name: str, type_: str, parent: pulumi.Input[str]) -> pulumi.Output[str]:
        return pulumi.resource.create_urn(name, type_, parent=parent)

    def contribute(
        self, objects: tuple[pulumi.CustomResource, ...], uploaded: list[pulumi.Input[str]]
    ) -> None:
        """A unit's objects on the device, and the certificates it uploads: the save waits for them."""
        self._given.objects += objects
        self._given.uploaded += uploaded

    def finish(self) -> None:
        """The BGP instance and the one save, once every unit on the device has contributed."""
        on_device = pulumi.ResourceOptions(parent=self, providers=[self.provider])
        routing = None
        if self._bgp:
            d = self.device
            what = f"device {d.name}: BGP configuration"
            bgp_args = BgpArgs(device_bgp_name(d), tuple(self._bgp), what, (self.shared.save_on_destroy,))
            alias = pulumi.Alias(name=f"{self._first}-bgp", parent=self._unit_urn())
            routing = BigipBgp(
                f"{self._device_name}-bgp",
                bgp_args,
                pulumi.ResourceOptions.merge(on_device, pulumi.ResourceOptions(aliases=[alias])),
            )
        objects = (self.shared.save_on_destroy, *self._given.objects, *(routing.objects if routing else ()))
        trigger = pulumi.Output.all(self._digest, *self._given.uploaded).apply(persist.digest)
        checks = (routing.check,) if routing else ()
        alias = pulumi.Alias(name=f"{self._first}-bigip-save", parent=self._unit_urn())
        ConfigSave(
            f"{self._device_name}-save",
            SaveArgs(objects, trigger, checks),
            pulumi.ResourceOptions.merge(on_device, pulumi.ResourceOptions(aliases=[alias])),
        )
