"""Draining CIS before what its BIG-IP objects reference is deleted: a unit removed or destroyed,
an app removed, a WAF template changed.

CIS turns the unit's VirtualServer/TransportServer resources into AS3 declarations for its
partition, and those virtual servers reference objects Pulumi owns: the re-encrypt server-ssl
profiles and the WAF policies in /Common. The BIG-IP refuses to delete an object in use, and CIS
applies a deleted resource later, asynchronously. So on deletion, in reverse dependency order:
the CIS resources (they depend on the drain), then the drain's `delete` waits until the partition
holds no virtual server, then the profiles, the WAF policies and the CIS release (the drain
depends on them). The drain does nothing on create or update. The partition itself is AS3's: for
its default partition CIS posts a tenant with an empty Shared application, and AS3 creates and
removes tenants itself, so Pulumi does not manage it.

One object can also go while the unit stays: an app's re-encrypt profile and WAF policy when the
app is removed, the old WAF policy when its template changes (a new name, so a new policy). Its
VirtualServer is deleted or moved in the same update, and CIS applies that later. So each such
object has a wait of its own, in the same place in the order (the CIS resources depend on it, it
depends on the object and CIS), whose `delete` waits until nothing on the BIG-IP names the
object's path. Its name holds the path, so a WAF policy of another template has another wait, and
the old one is deleted, and waits, with the old policy.

The wait asks the BIG-IP's iControl REST with curl, as the unit's provider does (same address,
user, password and trusted certificate); the certificate PEM, not a file path, is in the state,
since deletion runs with the inputs stored at the last update, maybe on another machine.
Ref: F5Networks/k8s-bigip-ctlr@v2.20.2:pkg/controller/as3Parser.go (getDeletedTenantDeclaration;
     v2.20.4 publishes no Go source), pkg/controller/types.go (a VirtualServer's `waf` is AS3's
     policyWAF)
Ref: F5Networks/f5-appsvcs-extension@v3.56.0:src/lib/map_as3.js (policyWAF becomes an LTM policy
     `_WAF_<virtual>` in the tenant whose rule action enables the WAF policy by its path)
Ref: pulumi/pulumi-command@v1.2.1:provider/pkg/provider/local/commandController.go (Delete runs
     `delete` with the stored inputs; a non-zero exit fails the step)
Ref: https://community.f5.com/t5/technical-articles/demystifying-icontrol-rest-part-3-how-to-pass-query-parameters/ta-p/286957
     ($select on a collection)
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import pulumi
import pulumi_command as command

from components import cis, config
from components.bigip import reencrypt
from components.bigip.ingress import template_slug, waf_policy_path
from components.bigip.tmsh_check import INTERPRETER
from components.bigip.waf import templated_apps

# How long a deletion waits for CIS (CIS posts a change within seconds; AS3 may take minutes).
TIMEOUT_SECONDS = 600
INTERVAL_SECONDS = 10


def script() -> str:
    """The wait, as the step's `delete` command."""
    return resources.files(__package__).joinpath("cis_drain.sh").read_text(encoding="utf-8")


def environment(
    *,
    url: str,
    username: str,
    password: str,
    ca_pem: str,
    partition: str,
    reference: str = "",
    timeout: int = TIMEOUT_SECONDS,
    interval: int = INTERVAL_SECONDS,
) -> dict[str, str]:
    """The wait's environment. Pure: test it directly. An empty `ca_pem` skips verification;
    `reference`, a BIG-IP path, waits for that object to be unused instead of the partition."""
    return {
        "CPAAS_BIGIP_URL": url,
        "CPAAS_BIGIP_USER": username,
        "CPAAS_BIGIP_PASSWORD": password,
        "CPAAS_BIGIP_CA_PEM": ca_pem,
        "CPAAS_CIS_PARTITION": partition,
        "CPAAS_CIS_NAMESPACE": cis.NAMESPACE,
        "CPAAS_CIS_DEPLOYMENT": cis.RELEASE,
        "CPAAS_DRAIN_TIMEOUT": str(timeout),
        "CPAAS_DRAIN_INTERVAL": str(interval),
        # Only when set: the unit's drain keeps the environment it was stored with.
        **({"CPAAS_DRAIN_REFERENCE": reference} if reference else {}),
    }


def released_objects(unit: config.Unit) -> tuple[tuple[str, str], ...]:
    """(role, BIG-IP path) of each object that CIS resources name and Pulumi deletes: the
    re-encrypt profiles and the WAF policies made from a template. Pure: test it directly."""
    profiles = [
        (f"{a.name}-reencrypt", reencrypt.profile_path(unit.name, a))
        for a in unit.apps
        if a.kind == "http-mesh" and a.fqdn is not None
    ]
    policies = [
        (f"{a.name}-waf-{template_slug(a.waf.template)}", waf_policy_path(unit.name, a))
        for a in templated_apps(unit)
        if a.waf is not None and a.waf.template is not None
    ]
    return (*profiles, *policies)


@dataclass(frozen=True)
class DrainArgs:
    bigip: config.Bigip
    password: pulumi.Input[str]
    # PEM of the BIG-IP management certificate (None only with insecureSkipVerify).
    trusted_cert: pulumi.Input[str] | None
    # What CIS's objects reference, and CIS itself: deleted only after the drain.
    referenced: tuple[pulumi.Resource, ...]
    # (role, BIG-IP path) of the objects among them that can go on their own (released_objects).
    objects: tuple[tuple[str, str], ...] = ()


class CisDrain(pulumi.ComponentResource):
    """Make the unit's CIS resources depend on every one of `waits`."""

    waits: tuple[command.local.Command, ...]

    def __init__(self, name: str, args: DrainArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:bigip:CisDrain", name, None, opts)
        bigip = args.bigip
        if not bigip.insecure_skip_verify and args.trusted_cert is None:
            raise ValueError(f"{name}: the drain verifies BIG-IP TLS: a trusted certificate is required")
        plain = environment(
            url=cis.bigip_url(bigip),
            username=bigip.username,
            password="",
            ca_pem="",
            partition=bigip.cis_partition,
        )
        env: dict[str, pulumi.Input[str]] = {
            **plain,
            "CPAAS_BIGIP_PASSWORD": pulumi.Output.secret(args.password),
            "CPAAS_BIGIP_CA_PEM": "" if bigip.insecure_skip_verify else args.trusted_cert or "",
        }

        def wait(role: str, reference: str) -> command.local.Command:
            # Each depends on all of `referenced`: that orders the deletions (a wait is deleted
            # before every object and CIS), and no object needs matching to its resource.
            return command.local.Command(
                f"{name}-{role}",
                delete=script(),
                environment={**env, **({"CPAAS_DRAIN_REFERENCE": reference} if reference else {})},
                interpreter=list(INTERPRETER),
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.referenced)),
            )

        self.waits = (wait("wait", ""), *(wait(role, path) for role, path in args.objects))
        self.register_outputs({"partition": bigip.cis_partition, "objects": [p for _, p in args.objects]})
