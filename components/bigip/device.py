"""The unit's BIG-IP: its own f5bigip provider and the two partitions Pulumi and CIS own.

The provider verifies the BIG-IP's TLS certificate and sends no telemetry. It logs in when it
is configured, so a real `pulumi preview` needs the BIG-IP reachable; `make render` does not.
Ref: https://www.pulumi.com/registry/packages/f5bigip/installation-configuration/
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_f5bigip as f5bigip

from components import config


@dataclass(frozen=True)
class DeviceArgs:
    bigip: config.Bigip
    password: pulumi.Input[str]
    # Path of a PEM file holding the BIG-IP's management certificate (the provider reads a file).
    trusted_cert_path: pulumi.Input[str] | None


class BigipDevice(pulumi.ComponentResource):
    provider: f5bigip.Provider
    pulumi_partition: f5bigip.Partition
    cis_partition: f5bigip.Partition

    def __init__(self, name: str, args: DeviceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:bigip:BigipDevice", name, None, opts)
        bigip = args.bigip
        if not bigip.insecure_skip_verify and args.trusted_cert_path is None:
            raise ValueError("the BIG-IP provider verifies TLS: a trusted certificate path is required")
        self.provider = f5bigip.Provider(
            f"{name}-provider",
            address=f"https://{bigip.management_address}",
            port=str(bigip.management_port),
            username=bigip.username,
            password=pulumi.Output.secret(args.password),
            validate_certs_disable=bigip.insecure_skip_verify,
            trusted_cert_path=None if bigip.insecure_skip_verify else args.trusted_cert_path,
            teem_disable=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_device = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.pulumi_partition = f5bigip.Partition(
            f"{name}-pulumi-partition",
            name=bigip.pulumi_partition,
            description="cpaas: objects managed by Pulumi (egress gateway); CIS never writes here",
            opts=on_device,
        )
        # CIS needs its partition to exist; it owns everything inside it.
        self.cis_partition = f5bigip.Partition(
            f"{name}-cis-partition",
            name=bigip.cis_partition,
            description="cpaas: owned by F5 CIS (AS3); Pulumi never writes inside it",
            opts=on_device,
        )
        self.register_outputs({"address": str(bigip.management_address)})
