"""Server-ssl profiles for ingress re-encryption: the BIG-IP verifies the Istio gateway.

`/Common/serverssl` sends no SNI and verifies nothing. The gateway picks its certificate by SNI
(one Gateway server per app FQDN), and a bank wants the hop to the gateway authenticated. So
each http-mesh app gets a profile in /Common (shared: CIS's TLSProfile may reference it, and CIS
never references Pulumi's partition) that sends the app's FQDN as SNI, requires the gateway's
certificate and verifies it against the org root. The provider exposes no authenticate-name,
so the name itself is not checked by the BIG-IP; the chain is.
Ref: https://clouddocs.f5.com/containers/latest/userguide/crd/virtualserver.html#tls-profile
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_f5bigip as f5bigip

from components import config


def root_cert_name(unit: str) -> str:
    return f"cpaas-{unit}-org-root.crt"


def profile_path(unit: str, app: config.App) -> str:
    return f"/Common/cpaas-{unit}-{app.name}-reencrypt"


@dataclass(frozen=True)
class ReencryptArgs:
    unit: config.Unit
    root_pem: pulumi.Input[str]
    after: tuple[pulumi.Resource, ...] = ()


class ReencryptProfiles(pulumi.ComponentResource):
    profiles: list[pulumi.CustomResource]

    def __init__(self, name: str, args: ReencryptArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:bigip:ReencryptProfiles", name, None, opts)
        unit = args.unit
        # Fixed names: deleted before they are replaced (see egress.py).
        root = f5bigip.ssl.Certificate(
            f"{name}-org-root",
            name=root_cert_name(unit.name),
            partition="Common",
            content=args.root_pem,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after), delete_before_replace=True),
        )
        self.profiles = []
        for app in unit.apps:
            if app.kind != "http-mesh" or app.fqdn is None:
                continue
            self.profiles.append(
                f5bigip.ltm.ProfileServerSsl(
                    f"{name}-{app.name}",
                    name=profile_path(unit.name, app),
                    defaults_from="/Common/serverssl",
                    server_name=app.fqdn,
                    ca_file=f"/Common/{root_cert_name(unit.name)}",
                    peer_cert_mode="require",
                    authenticate="always",
                    untrusted_cert_response_control="drop",
                    expire_cert_response_control="drop",
                    # Also on `after` directly: a removed profile must be deleted before the
                    # save-on-destroy (the engine orders deletions by direct dependencies only).
                    opts=pulumi.ResourceOptions(
                        parent=self, depends_on=[root, *args.after], delete_before_replace=True
                    ),
                )
            )
        self.objects: tuple[pulumi.CustomResource, ...] = (root, *self.profiles)
        self.register_outputs(
            {"profiles": [profile_path(unit.name, a) for a in unit.apps if a.kind == "http-mesh"]}
        )
