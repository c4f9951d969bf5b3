"""Which input changes make `pulumi up` replace a resource, per type cpaas registers, read from
each provider's source (issue 11). The offline plan (tools.plan) asks `replace_reasons` and
`deletes_first`; resource options (replaceOnChanges, ignoreChanges, a defined deleteBeforeReplace,
replacementTrigger, a replaced provider) are the plan's to apply on top.

Some rules depend on the provider's own config: a kubernetes Secret or ConfigMap updates its data in
place when the provider that serves it sets enableSecretMutable / enableConfigMapMutable
(`replace_reasons(..., provider=<its inputs>)`; the plan passes the provider's new inputs, as the
engine configures an updated provider before it diffs what the provider serves).

Inputs are compared as resources.json holds them: "[secret]" against "[secret]" is no change (a
rotated secret is invisible offline) and "[unknown]" on the new side is a change.

    python -m tools.replace_rules      # the table, with what is not confirmed from source
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tools.engine import SECRET, UNKNOWN

NEVER, ALWAYS, FIXED_NAME = "never", "always", "fixed-name"


@dataclass(frozen=True)
class Rule:
    type: str
    replace_paths: tuple[str, ...]  # camelCase input paths; a change at or below one replaces
    delete_first: str  # NEVER | ALWAYS | FIXED_NAME (kubernetes: a fixed metadata.name kept)
    source: str  # owner/repo@tag-or-commit:path
    confirmed: bool
    note: str = ""


# The upstream files read. The pins (requirements.txt) are newer than some mirrored tags: each
# rule's note says which version was read when it is not the pinned one.
K8S = "pulumi/pulumi-kubernetes@v4.32.0:provider/pkg/provider/"
BIGIP = "F5Networks/terraform-provider-bigip@v1.26.0:bigip/"
TLS = "hashicorp/terraform-provider-tls@v4.2.1:internal/provider/"
ENGINE = "pulumi/pulumi@1b5949891b3cefcb9974752b24a5ecef0acc86c8:"
STEPS = ENGINE + "pkg/resource/deploy/step_generator.go"

K8S_READ = (
    "read at v4.32.0, the newest tag mirrored (the pin 4.34.2 is not); diff.go, provider.go and "
    "helm_release.go say the same at the newest mirrored commit (2026-07-01). Offline, inputs are "
    "compared as cpaas sends them: the provider first defaults an unset namespace to `default` (and "
    "drops it on cluster-scoped kinds; provider.go Diff), so a plan can show a replacement it would not "
    "make, never miss one; and the PULUMI_K8S_ENABLE_SECRET_MUTABLE / _CONFIGMAP_MUTABLE variables "
    "where `pulumi up` runs (provider.go Configure's fallbacks) are assumed unset"
)
K8S_DBR = (
    "the provider deletes first when it replaces an object whose metadata.name is set (not "
    "auto-named) and stays the same, in the same namespace (provider.go Diff)"
)
BIGIP_DBR = (
    "the provider never asks to delete first (pulumi-terraform-bridge@v3.135.0:pkg/tfbridge/"
    "provider.go, the same logic as v3.133.0 which pulumi-f5bigip v3.24.0 requires: "
    "only ResourceInfo.DeleteBeforeReplace or auto-named fields, and "
    "pulumi-f5bigip@v3.24.0:provider/resources.go sets neither); cpaas sets deleteBeforeReplace on its "
    "named BIG-IP objects. Read at v1.26.0, the version pulumi-f5bigip v3.24.0 and its newest "
    "mirrored commit bridge (the pin pulumi-f5bigip 3.25.1 is not mirrored); the ForceNew sets "
    "are the same at v1.28.0 and the newest mirrored commit"
)
TLS_NOTE = (
    "PEM inputs replace when the state holds a PEM (common.go requireReplaceIfStateContainsPEMString); "
    "read at v4.2.1, the newest tag mirrored, and the same at the newest mirrored commit (2026-04-28); "
    "pulumi-tls 5.6.2 bridges a later commit, not mirrored"
)
CERT_RENEWAL = (
    "; earlyRenewalHours updates, but once the clock passes validity end minus earlyRenewalHours "
    "ModifyPlan marks readyForRenewal and the next run replaces the certificate (common_cert.go "
    "modifyPlanIfCertificateReadyForRenewal): time-dependent, not visible offline; with "
    "validityPeriodHours 0 or earlyRenewalHours >= validityPeriodHours it is replaced on every run "
    "(common_cert.go, default_value.go), which pki.renewal_hours never sets (tests/test_pki.py)"
)

_METADATA = ("metadata.name", "metadata.namespace")


def _k8s(type_: str, *paths: str, note: str = "") -> Rule:
    return Rule(
        type=f"kubernetes:{type_}",
        replace_paths=(*_METADATA, *paths),
        delete_first=FIXED_NAME,
        source=K8S + "diff.go",
        confirmed=True,
        note="; ".join(n for n in (note, K8S_DBR, K8S_READ) if n),
    )


def _custom_resource(type_: str) -> Rule:
    return _k8s(type_, note="a custom resource: its group is not in diff.go's forceNew table")


def _bigip(token: str, file: str, *paths: str, note: str = "") -> Rule:
    return Rule(
        type=f"f5bigip:{token}",
        replace_paths=paths,
        delete_first=NEVER,
        source=f"{BIGIP}resource_bigip_{file}.go",
        confirmed=True,
        note="; ".join(n for n in (note, BIGIP_DBR) if n),
    )


def _tls(token: str, file: str, *paths: str, note: str = "") -> Rule:
    return Rule(
        type=f"tls:index/{token}",
        replace_paths=paths,
        delete_first=NEVER,
        source=f"{TLS}resource_{file}.go",
        confirmed=True,
        note=TLS_NOTE + note,
    )


_KUBERNETES = [
    _k8s("apps/v1:Deployment", "spec.selector"),
    _k8s(
        "core/v1:ConfigMap",
        "binaryData",
        "data",
        note="with the provider's enableConfigMapMutable unset (provider.go Configure defaults it "
        "false; cpaas leaves it unset); set to true, data and binaryData update in place unless the "
        "new inputs say `immutable: true` (diff.go forceNewProperties)",
    ),
    _k8s("core/v1:Namespace"),
    _k8s(
        "core/v1:PersistentVolumeClaim",
        "spec.accessModes",
        "spec.selector",
        "spec.storageClassName",
        "spec.volumeName",
    ),
    _k8s(
        "core/v1:Secret",
        "data",
        "stringData",
        "type",
        note="with the provider's enableSecretMutable unset (provider.go Configure defaults it false); "
        "set to true (cpaas's unit providers do), only `type` replaces, and data and stringData too when "
        "the new inputs say `immutable: true` (diff.go forceNewProperties)",
    ),
    _k8s("core/v1:Service", "spec.clusterIP", note="spec.type and ports update"),
    _k8s("core/v1:ServiceAccount"),
    _k8s("networking.k8s.io/v1:Ingress"),
    *(
        _custom_resource(t)
        for t in (
            "cis.f5.com/v1:TLSProfile",
            "cis.f5.com/v1:TransportServer",
            "cis.f5.com/v1:VirtualServer",
            "networking.istio.io/v1:DestinationRule",
            "networking.istio.io/v1:Gateway",
            "networking.istio.io/v1:ServiceEntry",
            "networking.istio.io/v1:VirtualService",
            "projectcalico.org/v3:BGPPeer",
            "security.istio.io/v1:AuthorizationPolicy",
            "security.istio.io/v1:PeerAuthentication",
            "security.istio.io/v1:RequestAuthentication",
            "telemetry.istio.io/v1:Telemetry",
        )
    ),
    _k8s(
        "projectcalico.org/v3:BGPConfigurationPatch",
        note="a Patch resource: only its identity replaces (provider.go Diff, kinds.IsPatchResource)",
    ),
    Rule(
        type="kubernetes:helm.sh/v3:Release",
        replace_paths=("name", "namespace"),
        delete_first=NEVER,
        source=K8S + "helm_release.go",
        confirmed=True,
        note="chart, version and values update; the provider never deletes first (DeleteBeforeReplace: "
        f"false, a TODO upstream); {K8S_READ}",
    ),
    Rule(
        type="kubernetes:yaml/v2:ConfigFile",
        replace_paths=(),
        delete_first=NEVER,
        source=STEPS,
        confirmed=True,
        note="a remote component: no provider diff for itself (step_generator.go diff, prov == nil); "
        "the objects it holds are registered by the provider's Construct and are not visible offline",
    ),
]

_BIGIP = [
    _bigip("index/as3:As3", "as3", note="no ForceNew attribute: every declaration change updates"),
    _bigip(
        "index/command:Command",
        "command",
        note="no ForceNew attribute: commands and when update; cpaas replaces its commands by "
        "replaceOnChanges or replacementTrigger",
    ),
    _bigip("index/partition:Partition", "partition", "name"),
    _bigip("index/sslKeyCert:SslKeyCert", "ssl_key_cert", "certName", note="keyName and contents update"),
    _bigip("index/wafPolicy:WafPolicy", "awaf_policy", "name", "partition", "templateName"),
    _bigip("ltm/dataGroup:DataGroup", "ltm_datagroup", "name", "type"),
    _bigip("ltm/iRule:IRule", "ltm_irule", "name"),
    _bigip("ltm/node:Node", "ltm_node", "name", "address"),
    _bigip("ltm/pool:Pool", "ltm_pool", "name"),
    _bigip("ltm/poolAttachment:PoolAttachment", "ltm_pool_attachment", "pool", "node", "fqdnAutopopulate"),
    _bigip("ltm/profileClientSsl:ProfileClientSsl", "ltm_profile_ssl_client", "name"),
    _bigip("ltm/profileServerSsl:ProfileServerSsl", "ltm_profile_ssl_server", "name"),
    _bigip("ltm/snatPool:SnatPool", "ltm_snatpool", "name"),
    _bigip("ltm/virtualServer:VirtualServer", "ltm_virtual_server", "name"),
    _bigip(
        "ssl/certificate:Certificate",
        "ssl_certificate",
        "name",
        note="content's ForceNew is commented out upstream: a new certificate is an update",
    ),
]

_TLS = [
    _tls("privateKey:PrivateKey", "private_key", "algorithm", "ecdsaCurve", "rsaBits"),
    _tls(
        "certRequest:CertRequest",
        "cert_request",
        "dnsNames",
        "ipAddresses",
        "privateKeyPem",
        "subject",
        "uris",
    ),
    _tls(
        "selfSignedCert:SelfSignedCert",
        "self_signed_cert",
        "allowedUses",
        "dnsNames",
        "ipAddresses",
        "isCaCertificate",
        "maxPathLength",
        "privateKeyPem",
        "setAuthorityKeyId",
        "setSubjectKeyId",
        "subject",
        "uris",
        "validityPeriodHours",
        note=CERT_RENEWAL,
    ),
    _tls(
        "locallySignedCert:LocallySignedCert",
        "locally_signed_cert",
        "allowedUses",
        "caCertPem",
        "caPrivateKeyPem",
        "certRequestPem",
        "isCaCertificate",
        "maxPathLength",
        "setSubjectKeyId",
        "validityPeriodHours",
        note=CERT_RENEWAL,
    ),
]

_OTHERS = [
    Rule(
        type="command:local:Command",
        replace_paths=("triggers",),
        delete_first=NEVER,
        source="pulumi/pulumi-command@v1.2.1:provider/pkg/provider/common/inputs.go",
        confirmed=True,
        note="the provider alone replaces only when triggers is added or removed as a whole (it diffs "
        "triggers[0], triggers[1], ... and those are not tagged); a changed item replaces because the Python "
        "SDK adds replaceOnChanges triggers[*] (pulumi_command/local/command.py), which the engine applies "
        "and the plan reads from the options; create/update/delete, environment and the rest update: the "
        "resource has Update, so "
        "pulumi-go-provider@v1.3.0:infer/resource.go diff replaces only schema replaceOnChanges fields "
        "and sets no DeleteBeforeReplace",
    ),
    Rule(
        type="pulumi:providers:kubernetes",
        replace_paths=("clusterIdentifier", "kubeconfig", "context", "cluster", "renderYamlToDirectory"),
        delete_first=NEVER,
        source=K8S + "provider.go",
        confirmed=True,
        note="DiffConfig: a set clusterIdentifier left unchanged replaces nothing; a changed one replaces; "
        "without one, kubeconfig/context/cluster replace when the active cluster changes or is unknown "
        "(offline any visible change counts, and a secret kubeconfig is '[secret]' on both sides) and "
        "renderYamlToDirectory replaces; adding or removing the identifier alone does not. A replaced "
        f"provider replaces every resource it manages (step_generator.go providerChanged); {K8S_READ}",
    ),
    Rule(
        type="pulumi:providers:f5bigip",
        replace_paths=(),
        delete_first=NEVER,
        source="pulumi/pulumi-terraform-bridge@v3.135.0:pkg/tfbridge/provider.go",
        confirmed=True,
        note="a bridged provider's DiffConfig replaces only on config marked ForcesProviderReplace; "
        "pulumi-f5bigip@v3.24.0:provider/resources.go marks none, so a new address or credential "
        "updates the provider and no resource is replaced",
    ),
    Rule(
        type="pulumi:providers:tls",
        replace_paths=(),
        delete_first=NEVER,
        source="pulumi/pulumi-terraform-bridge@v3.136.0:pkg/pf/tfbridge/provider_diffconfig.go",
        confirmed=True,
        note="the framework bridge's DiffConfig (tfbridge.DiffConfig) replaces only on ForcesProviderReplace "
        "config; pulumi-tls's provider/resources.go marks none (cpaas uses the default tls provider)",
    ),
    Rule(
        type="pulumi:providers:command",
        replace_paths=(),
        delete_first=NEVER,
        source="pulumi/pulumi-go-provider@v1.3.0:provider.go",
        confirmed=True,
        note="pulumi-command has no config, so DiffConfig is unimplemented and the engine never replaces "
        f"the provider ({ENGINE}sdk/go/common/resource/plugin/provider_plugin.go DiffConfig)",
    ),
    Rule(
        type="pulumi:pulumi:StackReference",
        replace_paths=(),
        delete_first=NEVER,
        source=STEPS,
        confirmed=True,
        note="a read resource: read again on every run (GenerateReadSteps); a read is never replaced",
    ),
]

COMPONENT = Rule(
    type="cpaas:*",
    replace_paths=(),
    delete_first=NEVER,
    source=STEPS,
    confirmed=True,
    note="a component has no provider: the engine updates it when its inputs change and never "
    "replaces it for that (step_generator.go diff, prov == nil); replaceOnChanges still applies",
)


class _Rules(Mapping[str, Rule]):
    """The rules by type token; any `cpaas:` type (a component of this project) gets COMPONENT."""

    def __init__(self, rules: Iterable[Rule]):
        self._rules = {r.type: r for r in rules}

    def __getitem__(self, type_: str) -> Rule:
        if type_ in self._rules:
            return self._rules[type_]
        if type_.startswith("cpaas:"):
            return dataclasses.replace(COMPONENT, type=type_)
        raise KeyError(type_)

    def __iter__(self) -> Iterator[str]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)


RULES: Mapping[str, Rule] = _Rules([*_KUBERNETES, *_BIGIP, *_TLS, *_OTHERS])


def rule_for(type_: str) -> Rule:
    try:
        return RULES[type_]
    except KeyError:
        raise KeyError(
            f"{type_}: no replacement rule; add one to tools/replace_rules.py from the provider's source"
        ) from None


# ---------------------------------------------------------------------------------------------
# Comparing inputs
# ---------------------------------------------------------------------------------------------


def _differs(old: Any, new: Any) -> bool:
    return new == UNKNOWN or old != new


def _changed(old: Any, new: Any, prefix: str) -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            out += _changed(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            p for i, (a, b) in enumerate(zip(old, new, strict=True)) for p in _changed(a, b, f"{prefix}[{i}]")
        ]
    return [prefix] if _differs(old, new) else []


def changed_paths(old: Any, new: Any) -> list[str]:
    """Dotted paths (list items as [i]) whose values differ; a missing key and null are alike, a
    list of another length and an added or removed key are reported whole."""
    return _changed(old, new, "")


def _at(doc: Any, path: str) -> Any:
    """The value at a dotted path, None when missing; a masked or unknown ancestor is the value."""
    here = doc
    for key in path.split("."):
        if here in (SECRET, UNKNOWN):
            return here
        if not isinstance(here, Mapping):
            return None
        here = here.get(key)
    return here


Fired = list[tuple[str, str]]  # (changed input path, the rule path it falls under)


def _by_paths(rule: Rule, old: Mapping[str, Any], new: Mapping[str, Any]) -> Fired:
    return [(p, rp) for rp in rule.replace_paths for p in _changed(_at(old, rp), _at(new, rp), rp)]


def _kubernetes_provider(
    rule: Rule, old: Mapping[str, Any], new: Mapping[str, Any], provider: Mapping[str, Any]
) -> Fired:
    """provider.go DiffConfig, for what can be seen offline."""
    before, after = old.get("clusterIdentifier"), new.get("clusterIdentifier")
    if after not in (None, UNKNOWN) and after == before:
        return []
    fired: Fired = []
    if before is not None and after is not None and _differs(before, after):
        fired.append(("clusterIdentifier", "clusterIdentifier"))
    for key in ("kubeconfig", "context", "cluster", "renderYamlToDirectory"):
        if _differs(old.get(key), new.get(key)):
            fired.append((key, key))
    return fired


def _flag_set(provider: Mapping[str, Any], key: str) -> bool:
    """A provider's boolean config as Configure reads it: the SDK sends it as JSON text, and only
    "true" counts (provider.go Configure: `enabled == trueStr`); unknown or absent is false."""
    return provider.get(key) in ("true", True)


Condition = Callable[[Rule, Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], Fired]


def _mutable_data(flag: str, kept: tuple[str, ...]) -> Condition:
    """diff.go forceNewProperties: with `flag` set on the provider and the new object not
    `immutable: true`, only `kept` (and the identity) of the rule's paths replace."""

    def fired(
        rule: Rule, old: Mapping[str, Any], new: Mapping[str, Any], provider: Mapping[str, Any]
    ) -> Fired:
        if _flag_set(provider, flag) and new.get("immutable") is not True:
            rule = dataclasses.replace(rule, replace_paths=(*_METADATA, *kept))
        return _by_paths(rule, old, new)

    return fired


def _by_rule_paths(
    rule: Rule, old: Mapping[str, Any], new: Mapping[str, Any], provider: Mapping[str, Any]
) -> Fired:
    return _by_paths(rule, old, new)


_CONDITIONS: Mapping[str, Condition] = {
    "pulumi:providers:kubernetes": _kubernetes_provider,
    "kubernetes:core/v1:Secret": _mutable_data("enableSecretMutable", ("type",)),
    "kubernetes:core/v1:ConfigMap": _mutable_data("enableConfigMapMutable", ()),
}


def replace_reasons(
    type_: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    provider: Mapping[str, Any] | None = None,
) -> list[str]:
    """Why the provider replaces a resource of `type_` whose inputs go from `old` to `new`, one
    line per changed path; [] when it would update in place (or do nothing). `provider`: the
    inputs of the provider that serves it (none: a default provider, every flag unset). The
    engine applies ignoreChanges before the provider diffs (tools/plan.py _ignored)."""
    rule = rule_for(type_)
    fired = _CONDITIONS.get(type_, _by_rule_paths)(rule, old, new, provider or {})
    tag = "" if rule.confirmed else " [unconfirmed]"
    return [f"{path} changed: {under} forces replacement ({rule.source}){tag}" for path, under in fired]


def deletes_first(type_: str, new: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> bool:
    """Whether the provider asks to delete the old resource before creating its replacement. A
    defined deleteBeforeReplace option overrides this (the engine's rule). With `old`, a kubernetes
    object renamed or moved to another namespace is created first, as the provider decides."""
    rule = rule_for(type_)
    if rule.delete_first != FIXED_NAME:
        return rule.delete_first == ALWAYS
    name = _at(new, "metadata.name")
    if not isinstance(name, str) or name in ("", UNKNOWN):
        return False
    if old is None:
        return True
    same_namespace = (_at(new, "metadata.namespace") or "default") == (
        _at(old, "metadata.namespace") or "default"
    )
    return name == _at(old, "metadata.name") and same_namespace


def unconfirmed() -> list[Rule]:
    return [r for r in RULES.values() if not r.confirmed]


def table() -> str:
    """The rules as a Markdown table."""
    lines = [
        "| type | replaced when these inputs change | deletes first | source | confirmed |",
        "|---|---|---|---|---|",
    ]
    for rule in [*RULES.values(), COMPONENT]:
        paths = ", ".join(rule.replace_paths) or "(none)"
        lines.append(f"| {rule.type} | {paths} | {rule.delete_first} | {rule.source} | {rule.confirmed} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
    for rule in unconfirmed():
        print(f"unconfirmed: {rule.type}: {rule.note}")
