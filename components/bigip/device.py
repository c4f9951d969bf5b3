"""The unit's BIG-IP: its own f5bigip provider and the partition Pulumi owns (CIS's is AS3's).

The provider verifies the BIG-IP's TLS certificate and sends no telemetry. It logs in when it
is configured, so a real `pulumi preview` needs the BIG-IP reachable; `make render` does not.
Ref: https://www.pulumi.com/registry/packages/f5bigip/installation-configuration/
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_f5bigip as f5bigip

from components import config
from components.bigip.persist import SAVE


@dataclass(frozen=True)
class DeviceArgs:
    bigip: config.Bigip
    password: pulumi.Input[str]
    # The committed PEM file of the BIG-IP's management certificate, relative to the project:
    # the provider reads it whenever the engine configures it, also for a refresh or destroy
    # from state, and providers start in the project folder (tools/refresh.py).
    # Ref: F5Networks/terraform-provider-bigip v1.26.0 bigip/provider.go (trusted_cert_path,
    # a path only; no option takes the certificate itself), bigip/config.go (os.ReadFile)
    trusted_cert_path: pulumi.Input[str] | None
    # Replaces the save-on-destroy command, whose old copy then saves after the update's
    # deletions (persist.unit_digest).
    save_trigger: str = ""
    # On a shared device (config.SharedBigip): its provider and save-on-destroy, made once by
    # SharedDevice; the unit's component then holds only the unit's own partition.
    shared: Shared | None = None


@dataclass(frozen=True)
class Shared:
    login: Login
    provider: f5bigip.Provider
    save_on_destroy: f5bigip.Command


def bigip_provider(
    name: str,
    access: config.BigipAccess,
    password: pulumi.Input[str],
    trusted_cert_path: pulumi.Input[str] | None,
    parent: pulumi.Resource,
    *,
    aliases: list[pulumi.Alias] | None = None,
) -> f5bigip.Provider:
    """A provider for one BIG-IP (a unit's, or the DNS device): TLS verified, no telemetry."""
    if not access.insecure_skip_verify and trusted_cert_path is None:
        raise ValueError(
            f"BIG-IP {access.management_address}: the provider verifies TLS, so a trusted "
            "certificate path is required"
        )
    return f5bigip.Provider(
        name,
        address=f"https://{access.management_address}",
        port=str(access.management_port),
        username=access.username,
        password=pulumi.Output.secret(password),
        validate_certs_disable=access.insecure_skip_verify,
        trusted_cert_path=None if access.insecure_skip_verify else trusted_cert_path,
        teem_disable=True,
        opts=pulumi.ResourceOptions(parent=parent, aliases=aliases),
    )


@dataclass(frozen=True)
class Login:
    """What a provider for one BIG-IP is made of, so a component can make another provider for
    the same device (`provider`): another plugin process.

    Why another process: the f5bigip provider guards SslKeyCert's and WafPolicy's create and
    update with one mutex per process and returns on an error without unlocking it, so after one
    failed step every later SslKeyCert or WafPolicy step on that process waits forever, and so does
    `pulumi up`. Each of those resources gets a provider of its own; the rest share the unit's.
    The engine starts one plugin process per provider resource; a resource moved to another
    provider with the same inputs is not replaced (the bridge's DiffConfig finds no change).
    Ref: F5Networks/terraform-provider-bigip@v1.26.0:bigip/resource_bigip_awaf_policy.go (the
         package-level `mutex`; create and update return before `mutex.Unlock()` on errors),
         bigip/resource_bigip_ssl_key_cert.go (the same mutex, the same early returns)
    Ref: pulumi/pulumi@v3.259.0:pkg/resource/deploy/providers/registry.go (Check loads a provider
         per provider resource), pkg/host/host.go (Provider starts a new plugin each call),
         pkg/resource/deploy/step_generator.go (providerChanged: replace only when DiffConfig says)
    Ref: pulumi/pulumi-terraform-bridge@v3.135.0:pkg/tfbridge/provider.go (configDiffer)
    """

    access: config.BigipAccess
    password: pulumi.Input[str]
    trusted_cert_path: pulumi.Input[str] | None

    def provider(self, name: str, parent: pulumi.Resource) -> f5bigip.Provider:
        return bigip_provider(name, self.access, self.password, self.trusted_cert_path, parent)


def save_on_destroy(
    name: str,
    parent: pulumi.Resource,
    provider: f5bigip.Provider,
    trigger: str,
    aliases: list[pulumi.Alias] | None = None,
) -> f5bigip.Command:
    """Every BIG-IP object of the device depends on this, so it is deleted after them, and its
    deletion saves the configuration without them (see persist.py for when that happens)."""
    return f5bigip.Command(
        name,
        commands=[SAVE],
        when="destroy",
        opts=pulumi.ResourceOptions(
            parent=parent, provider=provider, replacement_trigger=trigger or None, aliases=aliases
        ),
    )


class BigipDevice(pulumi.ComponentResource):
    provider: f5bigip.Provider
    login: Login
    save_on_destroy: f5bigip.Command
    pulumi_partition: f5bigip.Partition

    def __init__(self, name: str, args: DeviceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:bigip:BigipDevice", name, None, opts)
        bigip = args.bigip
        if args.shared is not None:
            self.login, self.provider = args.shared.login, args.shared.provider
            self.save_on_destroy = args.shared.save_on_destroy
        else:
            self.login = Login(bigip, args.password, args.trusted_cert_path)
            self.provider = self.login.provider(f"{name}-provider", self)
            self.save_on_destroy = save_on_destroy(
                f"{name}-save-on-destroy", self, self.provider, args.save_trigger
            )
        after_save = pulumi.ResourceOptions(
            parent=self, provider=self.provider, depends_on=[self.save_on_destroy]
        )
        self.pulumi_partition = f5bigip.Partition(
            f"{name}-pulumi-partition",
            name=bigip.pulumi_partition,
            description="cpaas: objects managed by Pulumi (egress gateway); CIS never writes here",
            opts=after_save,
        )
        # Not the CIS partition: AS3 creates and deletes its tenants itself (CIS posts them), so a
        # Pulumi-managed copy would fail to delete, or to refresh, once AS3 has removed it.
        self.objects: tuple[pulumi.CustomResource, ...] = (self.pulumi_partition,)
        self.register_outputs({"address": str(bigip.management_address)})
