"""Derive a new unit from an existing one and write it into its source's stack, or into a new
stack of its own.

    python -m tools.replicate --stack SRC --unit UNIT --name NEW [--cloud C] [--region R]
                              [--to STACK [--org ORG]]

Copies unit UNIT of Pulumi.SRC.yaml as NEW, allocated from SRC's `cpaas:addressPlan` past what
every stack file of the project sharing that plan uses (tools/allocate.py), and writes it:

- without --to, into Pulumi.SRC.yaml;
- with --to, into a new Pulumi.STACK.yaml holding only what a unit stack needs (README "Scaling
  past one stack"): SRC's environment and address plan, its PKI settings with the org root
  imported (a unit stack never generates a root of its own, so every unit chains to one), and
  NEW. No encryption salt, key or secrets provider and no ciphertext is copied; the tool prints
  the `pulumi stack init` and `pulumi config set` commands the new stack needs.

GSLB: every stack file whose `cpaas:gslb` serves UNIT (SRC itself when it holds the GSLB, or the
stack listing UNIT under `gslb.unitStacks`) gets NEW in every wide IP of an app it serves that
lists its units (last in failover order), with UNIT's ratio; and, when NEW is in another stack
than that GSLB, `unitStacks: {NEW: org/project/STACK}`. The organization and project come from
the GSLB stack's existing entries (UNIT's first), else from --org and Pulumi.yaml's name.

Edited files keep their comments, key order, quoting and flow style. All files are validated as
the render reads them, then written together or not at all (tools/yamledit.py). Exit 0 done, 2
refused (one `replicate: ...` line, nothing written), 1 a file could not be written.

Allocation: tools/allocate.py. Naming: partitions `cpaas-NEW-cis` / `cpaas-NEW`; trust domain
`NEW.<trustDomainSuffix>`; secret config keys and trust files get the unit name replaced
(`bigipPassword-NEW`), or `-NEW` appended; a stackReference cluster points at the placeholder
stack `<org/project>/TODO-NEW`. WAF policies an app references (`waf.policy`) are kept, with a
note that they must exist on the new BIG-IP. k3d (local dev) units are not replicated.

Shared BIG-IPs (`cpaas:bigipDevices`, a unit's `bigip.device`), `--device`:
- `new` (the default): NEW gets a BIG-IP of its own, declared inline from UNIT's device (its
  access, ASN and VLAN), moved to NEW's site block and renamed like a unit's own BIG-IP;
  multi-cluster peers (other units on UNIT's device) are dropped from NEW's apps, with a note.
- `same`: NEW sits on UNIT's shared device (into SRC only, not --to): own partitions, the
  device's VLAN and self IPs (a note says to add a VLAN and self IP facing NEW's nodes).
"""

from __future__ import annotations

import argparse
import copy
import re
import shlex
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn, TypedDict

from pydantic import TypeAdapter, ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from components import config
from tools import allocate, stackfile, yamledit

ROOT = Path(__file__).resolve().parent.parent
PROG = "replicate"
NS = config.CONFIG_NAMESPACE
# A unit stack imports the org root from these keys when its source generated the root.
ROOT_CERT_KEY, ROOT_KEY_SECRET = "orgRootCert", "orgRootKey"
# Ref: pulumi/pulumi@1b59498 sdk/go/common/tokens/stack_name.go (ParseStackName).
_STACK_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")

ReplicateError = allocate.RefusedError


class GslbEdit(TypedDict):
    index: int  # gslb.wideIps[index]
    app: str
    append: bool  # add the unit at the end of wideIps[index].units
    ratio: int | None  # ratios[new] = ratio


class Replica(TypedDict):
    source: str
    unit: dict[str, Any]  # the new unit, camelCase as in the stack file
    gslb: list[GslbEdit]  # edits of the source stack's own gslb
    allocated: dict[str, str]  # what was allocated, for the summary
    secrets: list[str]  # secret config keys the new unit needs
    values: list[str]  # certificate files (trustedCertFile) the new unit needs committed
    notes: list[str]


# ---------------------------------------------------------------------------------------------
# The pure core
# ---------------------------------------------------------------------------------------------


def derive(
    stack: config.StackConfig | Mapping[str, Any],
    source_name: str,
    new_name: str,
    cloud: str | None = None,
    region: str | None = None,
    *,
    in_use: allocate.InUse | None = None,
    device: str = "new",
) -> Replica:
    """The unit `new_name` derived from `source_name` of `stack` (a StackConfig, or its raw
    `cpaas:` keys without the prefix), allocated from its address plan past what `stack` and
    `in_use` (the other stacks sharing the plan) use. Raises ReplicateError when it cannot.
    """
    model, raw = _model_and_raw(stack)
    plan = model.address_plan
    if plan is None:
        raise ReplicateError(
            "the stack has no cpaas:addressPlan; add siteBlocks, sitePrefix, serviceBlocks, "
            "servicePrefix, bigipAsns and trustDomainSuffix (see Pulumi.prod.yaml)"
        )
    _checked(config.UnitName, new_name, "--name")
    used = (in_use or allocate.InUse()).with_stack(raw, "the stack")
    used.check_unit(new_name)
    source, unit_raw = _source_unit(model, raw, source_name)
    if isinstance(source.cluster, config.K3dCluster):
        raise ReplicateError(
            f"{source_name} is a local k3d unit; replicate a unit with a kubeconfig or stackReference cluster"
        )
    cloud = _checked(config.Cloud, cloud, "--cloud") if cloud else source.cloud
    region = _checked(config.DnsLabel, region, "--region") if region else source.region

    site_from = _source_block(source.network.node_cidr, plan.site_prefix, "nodeCidr", source_name)
    if not source.network.pod_cidr.subnet_of(site_from):
        raise ReplicateError(
            f"{source_name}'s podCidr {source.network.pod_cidr} is outside its site block {site_from} "
            "(the sitePrefix block of its nodeCidr); its layout cannot be moved to a new block"
        )
    service_from = _source_block(source.network.service_cidr, plan.service_prefix, "serviceCidr", source_name)
    site_to = allocate.block(plan.site_blocks, plan.site_prefix, used.spans, "siteBlocks", "sitePrefix")
    service_to = allocate.block(
        plan.service_blocks,
        plan.service_prefix,
        [*used.spans, allocate.span(site_to)],
        "serviceBlocks",
        "servicePrefix",
    )

    relocation = allocate.Relocation(site_from, site_to, service_from, service_to)
    unit_raw, device_notes = _device_side(raw, unit_raw, device)
    unit = relocation.copy(unit_raw)
    unit["name"], unit["cloud"], unit["region"] = new_name, cloud, region
    replica = Replica(
        source=source_name,
        unit=unit,
        gslb=[],
        allocated={
            "site block": f"{site_to} (as {source_name}'s {site_from}): nodeCidr "
            f"{unit['network']['nodeCidr']}, podCidr {unit['network']['podCidr']}",
            "service block": f"{service_to} (serviceCidr {unit['network']['serviceCidr']})",
        },
        secrets=[],
        values=[],
        notes=device_notes,
    )
    _rename(replica, source, used, plan)
    replica["gslb"], joins, topology = gslb_edits(model.gslb, source, new_name)
    if joins:
        replica["allocated"]["GSLB"] = f"joins {joins}"
    replica["notes"] += [topology] if topology else []
    _notes(replica, source, relocation)
    return replica


def _device_side(
    raw: Mapping[str, Any], unit_raw: Mapping[str, Any], mode: str
) -> tuple[dict[str, Any], list[str]]:
    """The source unit as NEW starts from: on a shared device, either on that device (`same`)
    or with a BIG-IP of its own made from it (`new`); and the notes that go with it."""
    unit = copy.deepcopy(dict(unit_raw))
    found = unit.get("bigip")
    bigip: dict[str, Any] = found if isinstance(found, dict) else {}
    name = bigip.get("device")
    if mode not in ("new", "same"):
        raise ReplicateError(
            f"--device {mode!r}: use new (a BIG-IP of its own) or same (the source's shared device)"
        )
    if name is None:
        if mode == "same":
            raise ReplicateError(
                f"--device same: {unit.get('name')}'s BIG-IP is its own (inline bigip); declare it under "
                "cpaas:bigipDevices and name it in bigip.device to share it"
            )
        return unit, []
    if mode == "same":
        for key in ("vlan", "selfIps"):
            bigip.pop(key, None)
        return unit, [
            f"on shared device {name}: add a VLAN and a self IP facing the new nodes to its "
            "bigipDevices entry and set bigip.vlan and bigip.selfIps (the device's first VLAN and all "
            "its self IPs until then)"
        ]
    declared = next(d for d in raw.get("bigipDevices") or [] if d.get("name") == name)
    own = {k: copy.deepcopy(declared[k]) for k in (*config.DEVICE_KEYS, "selfIps") if k in declared}
    unit["bigip"] = {**own, **{k: v for k, v in bigip.items() if k != "device"}}
    notes = []
    for app in unit.get("apps") or []:
        if app.pop("multiCluster", None) is not None:
            dropped = f"app {app.get('name')}: multiCluster dropped"
            notes.append(f"{dropped} (its peers are on {name}, not on the new BIG-IP)")
    return unit, notes


def _notes(replica: Replica, source: config.Unit, relocation: allocate.Relocation) -> None:
    unit, new = replica["unit"], replica["unit"]["name"]
    policies = sorted(
        {str(a["waf"]["policy"]) for a in unit.get("apps", []) if (a.get("waf") or {}).get("policy")}
    )
    if policies:
        replica["notes"].append(
            f"WAF policies {', '.join(policies)} are referenced, not created: they must exist on "
            f"{new}'s BIG-IP"
        )
    if relocation.kept:
        where = ""
        if unit["cloud"] != source.cloud:
            where = (
                f"; {new} is in {unit['cloud']}, {source.name} in {source.cloud}: check they are reachable"
            )
        replica["notes"].append(
            f"kept shared address(es) outside {source.name}'s site block: {', '.join(relocation.kept)}{where}"
        )


def apply(raw: Mapping[str, Any], replica: Replica) -> dict[str, Any]:
    """The raw stack (`cpaas:` keys without the prefix) with the replica added; a new dict."""
    out = copy.deepcopy(dict(raw))
    out.setdefault("units", []).append(copy.deepcopy(replica["unit"]))
    name = replica["unit"]["name"]
    for edit in replica["gslb"]:
        wide = out["gslb"]["wideIps"][edit["index"]]
        if edit["append"]:
            wide["units"].append(name)
        if edit["ratio"] is not None:
            wide["ratios"][name] = edit["ratio"]
    return out


def unit_stack(raw: Mapping[str, Any], replica: Replica) -> dict[str, Any]:
    """The raw config of a stack holding only the replica's unit: the source stack's (`raw`)
    environment, PKI (a generated root becomes an imported one) and address plan."""
    pki = copy.deepcopy(raw["pki"])
    if pki["root"].get("source") == "generated":
        pki["root"] = {"source": "imported", "certKey": ROOT_CERT_KEY, "privateKeySecret": ROOT_KEY_SECRET}
    return {
        "environment": raw["environment"],
        "pki": pki,
        "addressPlan": copy.deepcopy(raw["addressPlan"]),
        "units": [copy.deepcopy(replica["unit"])],
    }


def set_commands(stack: config.StackConfig, ref: str) -> list[str]:
    """`pulumi config set` for every deploy-time key `stack` names, from a file where the value
    is one (a kubeconfig, the org root's key and certificate)."""
    files = dict.fromkeys(stack.kubeconfig_keys(), "kubeconfig")
    if stack.pki is not None and isinstance(stack.pki.root, config.ImportedRoot):
        files[stack.pki.root.private_key_secret] = "org-root-key.pem"
        files[stack.pki.root.cert_key] = "org-root-cert.pem"

    def line(key: str, secret: bool) -> str:
        stdin = f" < {files[key]}" if key in files else ""
        return f"pulumi config set{' --secret' if secret else ''} -s {ref} {NS}:{key}{stdin}"

    return [*(line(k, True) for k in stack.secret_keys()), *(line(k, False) for k in stack.plain_keys())]


def _model_and_raw(
    stack: config.StackConfig | Mapping[str, Any],
) -> tuple[config.StackConfig, dict[str, Any]]:
    if isinstance(stack, config.StackConfig):
        raw = stack.model_dump(
            mode="json",
            by_alias=True,
            exclude_unset=True,
            warnings=False,
            fallback=lambda v: dict(v) if isinstance(v, MappingProxyType) else v,
        )
        return stack, raw
    try:
        return config.parse_stack(stack), copy.deepcopy(dict(stack))
    except config.ConfigError as exc:
        raise ReplicateError(f"the stack does not validate; fix it first: {exc.lines[0]}") from None


def _checked(kind: Any, value: str, flag: str) -> str:
    try:
        return str(TypeAdapter(kind).validate_python(value))
    except ValidationError as exc:
        message = config.explain(exc.errors(include_url=False)[0])
        raise ReplicateError(f"{flag} {value!r}: {message}") from None


def _source_unit(
    stack: config.StackConfig, raw: Mapping[str, Any], name: str
) -> tuple[config.Unit, dict[str, Any]]:
    for unit, unit_raw in zip(stack.units, raw.get("units", []), strict=True):
        if unit.name == name:
            return unit, unit_raw
    known = ", ".join(u.name for u in stack.units) or "none"
    raise ReplicateError(f"--unit {name}: no such unit in the stack; its units: {known}")


def _source_block(net: IPv4Network, prefix: int, field: str, unit: str) -> IPv4Network:
    if net.prefixlen < prefix:
        raise ReplicateError(
            f"{unit}'s {field} {net} is wider than a /{prefix} block of the address plan; "
            "it cannot be replicated into one block"
        )
    return net.supernet(new_prefix=prefix)


# ---------------------------------------------------------------------------------------------
# Names, keys and GSLB
# ---------------------------------------------------------------------------------------------


def _renamed_key(key: str, old: str, new: str) -> str:
    return key.replace(old, new) if old in key else f"{key}-{new}"


def _renamed_file(path: str, old: str, new: str) -> str:
    folder, _, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    renamed = name.replace(old, new) if old in name else f"{stem}-{new}{dot}{ext}"
    return f"{folder}/{renamed}" if folder else renamed


def _rename_secret_keys(replica: Replica, cluster: dict[str, Any], old: str, new: str) -> None:
    """The replica's own kubeconfig keys (and the read-only one for CIS, if any), to be set."""
    for key in ("kubeconfigSecret", "cisKubeconfigSecret"):
        if key in cluster:
            cluster[key] = _renamed_key(cluster[key], old, new)
            replica["secrets"].append(cluster[key])


def _rename(replica: Replica, source: config.Unit, used: allocate.InUse, plan: config.AddressPlan) -> None:
    unit, old = replica["unit"], source.name
    new = unit["name"]
    cluster = unit["cluster"]
    if cluster["source"] == "kubeconfig":
        _rename_secret_keys(replica, cluster, old, new)
        if cluster.get("context") and old in cluster["context"]:
            cluster["context"] = cluster["context"].replace(old, new)
        elif cluster.get("context"):
            replica["notes"].append(
                f"cluster.context {cluster['context']} kept; check the new kubeconfig has it"
            )
    elif cluster["source"] == "stackReference":
        head = cluster["stack"].rsplit("/", 1)[0] + "/" if "/" in cluster["stack"] else ""
        cluster["stack"] = f"{head}TODO-{new}"
        replica["notes"].append(
            f"cluster.stack is a placeholder, {cluster['stack']}: set it to the stack that exports "
            f"{new}'s {cluster.get('output', 'kubeconfig')}"
        )
    unit["mesh"]["trustDomain"] = f"{new}.{plan.trust_domain_suffix}"
    replica["allocated"]["trust domain"] = unit["mesh"]["trustDomain"]
    bigip = unit.get("bigip")
    if bigip is None:
        return
    partitions = {"cisPartition": f"cpaas-{new}-cis", "pulumiPartition": f"cpaas-{new}"}
    for key, name in partitions.items():
        used.check_partition(name, new)
        bigip[key] = name
    if "device" in bigip:  # --device same: the device's access and ASN stay the device's
        replica["allocated"]["BIG-IP"] = (
            f"shared device {bigip['device']}, partitions {', '.join(partitions.values())}"
        )
        return
    bigip["passwordSecret"] = _renamed_key(bigip["passwordSecret"], old, new)
    replica["secrets"].insert(0, bigip["passwordSecret"])
    if bigip.get("trustedCertFile"):
        bigip["trustedCertFile"] = _renamed_file(str(bigip["trustedCertFile"]), old, new)
        replica["values"].append(bigip["trustedCertFile"])
    bigip["asn"] = allocate.free_asn(plan, used.asns)
    replica["allocated"]["BIG-IP"] = f"ASN {bigip['asn']}, partitions {', '.join(partitions.values())}"


def gslb_edits(
    gslb: config.Gslb | None, source: config.Unit, new: str
) -> tuple[list[GslbEdit], str, str | None]:
    """The wide IP edits that add `new`, a copy of `source`, to `gslb`; what it joins; a note
    on topology records."""
    apps = {a.name for a in source.apps}
    edits: list[GslbEdit] = []
    joined, topology = [], []
    for w, wide in enumerate(gslb.wide_ips if gslb else ()):
        if wide.app not in apps:
            continue
        ratio = wide.ratios.get(source.name)
        if wide.units or ratio is not None:
            edits.append(GslbEdit(index=w, app=wide.app, append=bool(wide.units), ratio=ratio))
            joined.append(wide.app + (f" (ratio {ratio})" if ratio is not None else ""))
        if wide.topology:
            topology.append(wide.app)
    note = None
    if topology:
        note = (
            f"topology records of {', '.join(topology)} left as they are; add records for {new} "
            "if it should answer some LDNS subnets"
        )
    return edits, ", ".join(joined), note


# ---------------------------------------------------------------------------------------------
# The stack files (tools/yamledit.py keeps their comments)
# ---------------------------------------------------------------------------------------------


def edit_document(doc: Any, replica: Replica, like: Any) -> None:
    """Apply `replica` to the round-trip document `doc`; `like` is the source unit's node."""
    units = doc["config"][f"{NS}:units"]
    yamledit.append(units, yamledit.styled(replica["unit"], like))
    units.yaml_set_comment_before_after_key(
        len(units) - 1, before=f"Replicated from {replica['source']} by tools.replicate.", indent=4
    )
    edit_gslb(doc, replica["gslb"], replica["unit"]["name"])


def edit_gslb(doc: Any, edits: list[GslbEdit], name: str, stack_ref: str | None = None) -> None:
    """Add unit `name` to the round-trip document's gslb: `edits`, and under `unitStacks` when
    it is in another stack."""
    if not edits and stack_ref is None:
        return
    gslb = doc["config"][f"{NS}:gslb"]
    for edit in edits:
        wide = gslb["wideIps"][edit["index"]]
        if edit["append"]:
            yamledit.append(wide["units"], name)
        if edit["ratio"] is not None:
            yamledit.put(wide["ratios"], name, edit["ratio"])
    if stack_ref is not None:
        if gslb.get("unitStacks") is not None:
            yamledit.put(gslb["unitStacks"], name, stack_ref)
        else:
            yamledit.put(gslb, "unitStacks", CommentedMap([(name, stack_ref)]))


def unit_stack_document(
    raw: Mapping[str, Any], source: Any, like: Any, header: str, unit: str
) -> CommentedMap:
    """A new stack file's document for the raw config of `unit_stack`, styled like the source
    stack's document `source` (`like`: the node of the source unit, `unit`), `header` its first
    comment."""
    cfg = CommentedMap()
    for key, value in raw.items():
        if key != "units":
            cfg[f"{NS}:{key}"] = yamledit.styled(value, source["config"].get(f"{NS}:{key}"))
    units = cfg[f"{NS}:units"] = CommentedSeq([yamledit.styled(raw["units"][0], like)])
    units.yaml_set_comment_before_after_key(0, before=f"Replicated from {unit} by tools.replicate.", indent=4)
    cfg.yaml_set_comment_before_after_key(
        f"{NS}:addressPlan",
        before="Shared: tools.replicate allocates past every stack file with this same plan.",
        indent=2,
    )
    doc = CommentedMap([("config", cfg)])
    doc.yaml_set_start_comment(header)
    return doc


def raw_config(text: str, name: str) -> dict[str, Any]:
    """The structured `cpaas:` keys of a stack file's text, prefix stripped, as the render and
    deploy read them (not checked)."""
    try:
        return stackfile.document_raw(stackfile.load_yaml(text, name))
    except stackfile.StackFileError as exc:
        raise ReplicateError(exc.lines[0]) from None


def _checked_text(text: str, path: Path) -> tuple[Any, stackfile.Checked]:
    """The document in `text` and its check, refused (every problem, one line each) unless the
    one stack file reader (tools.stackfile, as the render and deploy) accepts it."""
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    try:
        doc = stackfile.load_yaml(text, path.name)
        return doc, stackfile.check(stackfile.wire_from_document(doc, path.name), stack)
    except stackfile.StackFileError as exc:
        raise _refused(exc, path) from None


def _refused(exc: stackfile.StackFileError, path: Path) -> ReplicateError:
    return ReplicateError("\n".join([*exc.lines, f"{path.name} has {exc.count()}; nothing written"]))


def _validate_text(text: str, path: Path) -> stackfile.Checked:
    """The text about to be written, read back as the render reads it, must pass its check."""
    try:
        return _checked_text(text, path)[1]
    except ReplicateError as exc:
        raise ReplicateError(
            f"{path.name} would not validate (nothing written): {exc}".split("\n")[0]
        ) from None


@dataclass
class _Stack:
    name: str
    path: Path
    doc: Any  # round trip
    raw: dict[str, Any]
    model: config.StackConfig


def _read(stack: str) -> _Stack:
    """A stack file, refused unless it passes the render's check."""
    try:
        path = stackfile.stack_path(stack, ROOT)
    except stackfile.StackFileError as exc:
        raise ReplicateError(exc.lines[0]) from None
    try:
        text = stackfile.read_text(path)
    except stackfile.StackFileError as exc:
        raise _refused(exc, path) from None
    doc, checked = _checked_text(text, path)
    return _Stack(stack, path, yamledit.load(text), stackfile.document_raw(doc), checked.stack)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{PROG}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _check_target(args: argparse.Namespace) -> None:
    to, org = args.to, args.org
    if to is not None and args.device == "same":
        raise ReplicateError(
            "--device same needs the source stack: a shared device is managed by the stack that declares it"
        )
    if to is None:
        if org is not None:
            raise ReplicateError("--org needs --to: it names the organization of the new stack")
        return
    if not _STACK_NAME.fullmatch(to):
        raise ReplicateError(
            f"--to {to!r}: not a Pulumi stack name; use up to 100 letters, digits, '-', '_' or '.'"
        )
    if org is not None and not _STACK_NAME.fullmatch(org):
        raise ReplicateError(
            f"--org {org!r}: not a Pulumi organization name; use letters, digits, '-', '_' or '.'"
        )
    if to == args.stack:
        raise ReplicateError(f"--to {to}: that is the source stack; leave --to out to add the unit to {to}")
    if (ROOT / f"Pulumi.{to}.yaml").exists():
        raise ReplicateError(
            f"--to {to}: Pulumi.{to}.yaml exists; --to makes a new stack holding only the new unit: "
            f"name a new one, or add to {to} with --stack {to} --unit <one of its units>"
        )


def _project() -> str:
    try:
        doc = stackfile.load_yaml(stackfile.read_text(ROOT / "Pulumi.yaml"), "Pulumi.yaml")
        return str(doc["name"])
    except (stackfile.StackFileError, KeyError, TypeError):
        raise ReplicateError(
            "Pulumi.yaml: no project name to qualify the new stack with (org/project/stack); fix Pulumi.yaml"
        ) from None


def _gslb_stacks(files: list[allocate.StackFile], src: _Stack, unit: str) -> list[_Stack]:
    """The stacks whose gslb serves `unit` of `src`: `src` itself when it holds a gslb, and
    every stack listing `unit` under gslb.unitStacks."""
    found = []
    for f in files:
        gslb = f.raw.get("gslb")
        if isinstance(gslb, Mapping) and (f.name == src.name or unit in (gslb.get("unitStacks") or {})):
            found.append(src if f.name == src.name else _read(f.name))
    return found


def _new_stack_ref(args: argparse.Namespace, gslbs: list[_Stack]) -> str:
    """How the GSLB stacks name the new stack: org/project/stack (Pulumi's fully qualified
    stack name), or the bare name when no GSLB lists it and no --org is given."""
    # Ref: https://www.pulumi.com/docs/iac/concepts/stacks (stack name formats); pulumi/pulumi
    # @1b59498 pkg/backend/httpstate/backend.go (parseStackName: 2 parts are org/stack).
    if args.org is not None:
        return f"{args.org}/{_project()}/{args.to}"
    refs = set()
    for g in gslbs:
        stacks = g.model.gslb.unit_stacks if g.model.gslb else {}
        prefixes = {s.rsplit("/", 1)[0] for s in stacks.values() if s.count("/") == 2}
        own = stacks.get(args.unit, "")
        if own.count("/") == 2:
            prefixes = {own.rsplit("/", 1)[0]}
        if len(prefixes) != 1:
            raise ReplicateError(
                f"--to {args.to}: {g.path.name} lists the new stack in gslb.unitStacks as "
                f"org/project/stack, and none of its entries names one organization; pass --org ORG"
            )
        refs.add(f"{prefixes.pop()}/{args.to}")
    if len(refs) > 1:
        raise ReplicateError(
            f"--to {args.to}: the GSLB stacks would name it differently ({', '.join(sorted(refs))}); "
            "pass --org ORG"
        )
    return refs.pop() if refs else args.to


def run(args: argparse.Namespace) -> list[str]:
    """Replicate as `args` say; returns the summary lines. Raises ReplicateError."""
    _check_target(args)
    src = _read(args.stack)
    files = allocate.stack_files(ROOT)
    gslbs = _gslb_stacks(files, src, args.unit)
    used = allocate.in_use(files, src.name, src.model.address_plan, {g.name for g in gslbs})
    replica = derive(
        src.raw,
        args.unit,
        args.name,
        args.cloud,
        args.region,
        in_use=used,
        device=args.device,
    )
    like = next(n for n in src.doc["config"][f"{NS}:units"] if n.get("name") == args.unit)
    docs: dict[Path, Any] = {}
    ref = _new_stack_ref(args, gslbs) if args.to else None
    if args.to:
        docs[ROOT / f"Pulumi.{args.to}.yaml"] = unit_stack_document(
            unit_stack(src.raw, replica), src.doc, like, _header(args, src), args.unit
        )
    else:
        edit_document(src.doc, replica, like)
        docs[src.path] = src.doc
    joins = replica["allocated"].pop("GSLB", None)
    joined = [joins] if joins and not args.to else []  # the source's own gslb, edited with the unit
    source = src.model.unit(args.unit)
    for g in gslbs:
        if g is src and not args.to:
            continue  # edited with the unit
        edits, joins, note = gslb_edits(g.model.gslb, source, args.name)
        stack_ref = ref or (g.model.gslb.unit_stacks[args.unit] if g.model.gslb else "")
        edit_gslb(g.doc, edits, args.name, stack_ref)
        docs[g.path] = g.doc
        joined.append(
            f"{g.path.name} lists {args.name} in gslb.unitStacks as {stack_ref}"
            + (f"; joins {joins}" if joins else "")
        )
        replica["notes"] += [note] if note and g is not src else []
    if joined:
        replica["allocated"]["GSLB"] = "; ".join(joined)
    texts = {path: yamledit.dump(doc) for path, doc in docs.items()}
    checked = {path: _validate_text(text, path) for path, text in texts.items()}
    yamledit.commit(texts, src.path)
    if args.to:
        new = checked[ROOT / f"Pulumi.{args.to}.yaml"].stack
        return _unit_stack_summary(args, src, replica, new, ref or args.to)
    return _summary(args, replica)


def _header(args: argparse.Namespace, src: _Stack) -> str:
    return (
        f"Unit stack {args.to}: unit {args.name} alone, made from {args.unit} of {src.path.name}.\n"
        'No gslb: the GSLB stack lists the unit in gslb.unitStacks (README "Scaling past one stack").\n'
        "Its secrets are its own, never copied; what to set:\n"
        f"  .venv/bin/python -m tools.stackfile --stack {args.to} --new-stack"
    )


def _not_copied(doc: Any) -> list[str]:
    """What of a stack file a new stack does not take: its encryption and other top-level keys,
    its ciphertexts, keys of other namespaces."""
    cfg = doc.get("config") or {}
    secure = sum(1 for v in cfg.values() if isinstance(v, Mapping) and "secure" in v)
    return [
        *(str(k) for k in doc if k != "config"),
        *([f"{secure} secure value(s)"] if secure else []),
        *(str(k) for k in cfg if not str(k).startswith(f"{NS}:")),
    ]


def _details(replica: Replica, notes: list[str]) -> list[str]:
    return [
        *(f"  {key}: {value}" for key, value in replica["allocated"].items()),
        *(f"  note: {note}" for note in [*replica["notes"], *notes]),
    ]


def _files_to_commit(replica: Replica) -> list[str]:
    return [f"    commit the BIG-IP's management certificate (PEM) as {path}" for path in replica["values"]]


def _summary(args: argparse.Namespace, replica: Replica) -> list[str]:
    unit = replica["unit"]
    lines = [
        f"{PROG}: added unit {unit['name']} ({unit['cloud']}, {unit['region']}) from {args.unit} "
        f"to Pulumi.{args.stack}.yaml",
        *_details(replica, []),
    ]
    if replica["secrets"] or replica["values"]:
        lines.append("  set before deploying:")
    kubeconfig = unit["cluster"].get("kubeconfigSecret")
    for key in replica["secrets"]:
        stdin = " < kubeconfig" if key == kubeconfig else ""
        lines.append(f"    pulumi config set --secret -s {args.stack} {NS}:{key}{stdin}")
    return lines + _files_to_commit(replica)


def _unit_stack_summary(
    args: argparse.Namespace, src: _Stack, replica: Replica, new: config.StackConfig, ref: str
) -> list[str]:
    unit = replica["unit"]
    notes = []
    root = new.pki.root if new.pki else None
    if (
        src.model.pki
        and isinstance(src.model.pki.root, config.GeneratedRoot)
        and isinstance(root, config.ImportedRoot)
    ):
        notes.append(
            f"{src.path.name} generates the org root in stack {src.name}'s state; {args.to} imports "
            f"it, so every unit chains to one root: {NS}:{root.cert_key} is `pulumi stack output -s "
            f"{src.name} rootCertPem`, {NS}:{root.private_key_secret} the privateKeyPem of its "
            f"pki-root-key (`pulumi stack export -s {src.name} --show-secrets`)"
        )
    if dropped := _not_copied(src.doc):
        notes.append(f"not copied from {src.path.name}: {', '.join(dropped)}; {args.to} gets its own")
    provider = src.doc.get("secretsprovider")
    init = f"pulumi stack init {ref}" + (
        f" --secrets-provider {shlex.quote(str(provider))}" if provider else ""
    )
    return [
        f"{PROG}: made stack {args.to} (Pulumi.{args.to}.yaml) holding only unit {unit['name']} "
        f"({unit['cloud']}, {unit['region']}), from {args.unit} of {src.path.name}",
        *_details(replica, notes),
        "  create the stack and set what it needs:",
        *(f"    {command}" for command in [init, *set_commands(new, ref)]),
        *_files_to_commit(replica),
    ]


def main(argv: Iterable[str] | None = None) -> int:
    parser = _Parser(prog="python -m tools.replicate", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stack", required=True, help="source stack: reads Pulumi.<stack>.yaml")
    parser.add_argument("--unit", required=True, help="the unit to replicate")
    parser.add_argument("--name", required=True, help="the new unit's name")
    parser.add_argument("--cloud", help="the new unit's cloud (default: the source's)")
    parser.add_argument("--region", help="the new unit's region (default: the source's)")
    parser.add_argument("--to", help="make the new stack Pulumi.<to>.yaml holding only the new unit")
    parser.add_argument(
        "--device",
        choices=("new", "same"),
        default="new",
        help="a unit on a shared BIG-IP: give the new unit a BIG-IP of its own (new) or put it on that "
        "device (same)",
    )
    parser.add_argument(
        "--org", help="with --to: the Pulumi organization of the new stack, when the GSLB stack cannot tell"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        lines = run(args)
    except ReplicateError as exc:
        for line in str(exc).splitlines():
            print(f"{PROG}: {line}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: cannot write the stack files: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
