"""The stack file's `cpaas:` keys as strict, typed models.

Every key is camelCase under the `cpaas:` namespace of a stack file (`Pulumi.<stack>.yaml`).
Unknown keys are refused and values are typed strictly: `true` is not a port, an address is text.
`parse_stack` turns the keys into a `StackConfig` or raises `ConfigError`, one line per problem,
each naming its config path, the value, what is allowed and the fix:

```
cpaas:units[1].network.podCidr: 10.10.64.0/20 overlaps units[0].network.podCidr (aws-syd: 10.10.64.0/18);
use a disjoint range
```

(one line, shown wrapped here).

**Secrets and deploy-time values.** Secrets never sit in the models or in Helm values: the stack
file names the config key that holds each one (the fields ending in `Secret`), and `__main__.py`
reads those keys with `require_secret`; in the render they become placeholders marked secret.

| secret key (example) | set with |
|---|---|
| `cpaas:bigipPassword-<unit>` | `pulumi config set --secret -s prod cpaas:bigipPassword-aws-syd` |
| `cpaas:kubeconfig-<unit>` | `pulumi config set --secret -s prod cpaas:kubeconfig-aws-syd < kubeconfig` |

An imported root's certificate (`pki.root.certKey`) is a plain config value. Each BIG-IP's
management certificate (the one CIS and the f5bigip provider trust) is not a config value but a
committed PEM file, named by `trustedCertFile` as a path relative to the project, e.g.
`trust/prod/bigip-aws-syd.pem`: a certificate is public, so it belongs in the repository, and a
change to it is reviewed like code. The files under `trust/prod/` are stand-ins: replace each with
your device's certificate (`openssl s_client -connect <managementAddress>:443 -showcerts`, checked
against the device's own copy). `__main__.py` reads them and fails with one line per missing file;
the render notes a missing one and uses a placeholder.

The package: `types` (constrained types), `models` (the models), `rules` (cross-field rules that
yield Problems), `errors` (pydantic errors as lines). docs/config.md is generated from them
(`make docs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from components.config.errors import (
    CONFIG_NAMESPACE,
    ConfigError,
    explain,
    format_validation_error,
    shown,
)
from components.config.models import (
    DEVICE_KEYS,
    Access,
    AccessImport,
    AccessToken,
    AddressPlan,
    App,
    AppKind,
    Bigip,
    BigipAccess,
    CalicoBgp,
    Caller,
    ClaimRule,
    Cloud,
    CloudNativeCni,
    ClusterPeer,
    ClusterSource,
    Cni,
    DnsDevice,
    Egress,
    EgressAllow,
    Environment,
    ForwardProxy,
    GeneratedRoot,
    Gslb,
    ImportedRoot,
    JwksFetch,
    K3dCluster,
    KeyAlgorithm,
    KubeconfigCluster,
    Mesh,
    Model,
    Monitor,
    MultiCluster,
    Network,
    Nginx,
    Observability,
    Pki,
    SharedBigip,
    StackConfig,
    StackReferenceCluster,
    TopologyRecord,
    Tracing,
    Unit,
    Waf,
    WideIp,
    every_model,
    named_keys,
)
from components.config.rules import Problem, renewal_window_hours

# The constrained types are in components.config.types; these few are what callers outside use.
from components.config.types import DnsLabel, UnitName, image_ref


def config_keys() -> list[str]:
    """The structured `cpaas:` keys a stack file may hold, in camelCase."""
    return [field.alias or name for name, field in StackConfig.model_fields.items()]


def parse_stack(raw: Mapping[str, Any]) -> StackConfig:
    """Validate the stack's `cpaas:` keys (without the prefix). Raises ConfigError."""
    try:
        return StackConfig.model_validate(dict(raw))
    except ValidationError as exc:
        # The stack-wide rules report with an empty location; without them, they did not run.
        partial = all(err["loc"] for err in exc.errors(include_url=False))
        raise ConfigError(format_validation_error(exc), partial) from None


__all__ = [
    "CONFIG_NAMESPACE",
    "DEVICE_KEYS",
    "Access",
    "AccessImport",
    "AccessToken",
    "AddressPlan",
    "App",
    "AppKind",
    "Bigip",
    "BigipAccess",
    "CalicoBgp",
    "Caller",
    "ClaimRule",
    "Cloud",
    "CloudNativeCni",
    "ClusterPeer",
    "ClusterSource",
    "Cni",
    "ConfigError",
    "DnsDevice",
    "DnsLabel",
    "Egress",
    "EgressAllow",
    "Environment",
    "ForwardProxy",
    "GeneratedRoot",
    "Gslb",
    "ImportedRoot",
    "JwksFetch",
    "K3dCluster",
    "KeyAlgorithm",
    "KubeconfigCluster",
    "Mesh",
    "Model",
    "Monitor",
    "MultiCluster",
    "Network",
    "Nginx",
    "Observability",
    "Pki",
    "Problem",
    "SharedBigip",
    "StackConfig",
    "StackReferenceCluster",
    "TopologyRecord",
    "Tracing",
    "Unit",
    "UnitName",
    "Waf",
    "WideIp",
    "config_keys",
    "every_model",
    "explain",
    "format_validation_error",
    "image_ref",
    "named_keys",
    "parse_stack",
    "renewal_window_hours",
    "shown",
]
