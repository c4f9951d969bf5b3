"""Derive a new unit from an existing one and write it into the stack file.

    python -m tools.replicate --stack SRC --unit UNIT --name NEW [--cloud C] [--region R] [--to STACK]

Copies unit UNIT of Pulumi.SRC.yaml as NEW and writes it into Pulumi.SRC.yaml, or into
Pulumi.STACK.yaml with --to (created as a byte copy of Pulumi.SRC.yaml the first time, appended
to after). Comments, key order, quoting and flow style of the file are kept; the file is replaced
atomically, and only once the whole new stack validates. Exit 0 done, 2 refused (one
`replicate: ...` line, nothing written), 1 the file could not be written.

Allocation, from the stack's `cpaas:addressPlan`:

- Addresses in use are every IPv4 address and CIDR anywhere in any unit (node, pod and service
  CIDRs, VIPs, self IPs, management, SNAT and forward-proxy addresses, BGP neighbours) and the
  GSLB device's address. GSLB topology `ldnsSubnet`s are client networks, not ours: ignored.
- The source's site block is the `sitePrefix` block holding its nodeCidr (its podCidr must be in
  it too). The new site block is the first `sitePrefix` block of `siteBlocks` that holds no
  address in use. Every address or CIDR of the source inside its site block moves to the same
  offset in the new block, so a unit keeps its layout.
- Addresses outside the source's site block are kept: they are shared (a central forward proxy,
  a BIG-IP serving several units). The tool cannot know of a proxy near the new unit, and an
  address moved into the new block would point at nothing, so it keeps the shared one and says
  so, loudly when the new unit is in another cloud than the source (egress would cross clouds).
- The serviceCidr moves the same way into the first free `servicePrefix` block of
  `serviceBlocks` (free also of the new site block).
- The BIG-IP ASN is the lowest of `bigipAsns` that no BIG-IP and no cluster of the stack uses;
  the cluster's (Calico) ASN stays as in the source.
- Partitions `cpaas-NEW-cis` / `cpaas-NEW`; trust domain `NEW.<trustDomainSuffix>`; secret and
  plain config key names get the unit name replaced (`bigipPassword-NEW`), or `-NEW` appended
  when they do not contain it. A stackReference cluster points at the placeholder stack
  `<org/project>/TODO-NEW`. k3d (local dev) units are not replicated.
- GSLB: NEW joins every wide IP of an app it serves that lists its units explicitly (at the
  end, i.e. last in failover order) and gets the source's ratio; topology records stay as they
  are. Wide IPs listing no units take every unit serving the app anyway.
- WAF policies an app references (`waf.policy`) are kept, with a note that they must exist on
  the new BIG-IP; policies created from a template are named after the unit by the program.
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn, TypedDict

import yaml
from pydantic import TypeAdapter, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import ScalarString
from ruamel.yaml.tokens import CommentToken

from components import config

ROOT = Path(__file__).resolve().parent.parent
PROG = "replicate"

_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?$")
_SERVICE_CIDR = ("network", "serviceCidr")


class ReplicateError(Exception):
    """A refusal: one line saying what is wrong and what to do."""


class GslbEdit(TypedDict):
    index: int  # gslb.wideIps[index]
    app: str
    append: bool  # add the unit at the end of wideIps[index].units
    ratio: int | None  # ratios[new] = ratio


class Replica(TypedDict):
    source: str
    unit: dict[str, Any]  # the new unit, camelCase as in the stack file
    gslb: list[GslbEdit]
    allocated: dict[str, str]  # what was allocated, for the summary
    secrets: list[str]  # secret config keys the new unit needs
    values: list[str]  # plain config keys (certificates) the new unit needs
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
    source_stack: config.StackConfig | Mapping[str, Any] | None = None,
) -> Replica:
    """The unit `new_name` derived from `source_name`, allocated from `stack`'s address plan.

    `stack` is the stack the unit joins (a StackConfig, or its raw `cpaas:` keys without the
    prefix). With `source_stack`, the source unit comes from there, and its addresses count as
    in use too. Raises ReplicateError when it cannot.
    """
    model, raw = _model_and_raw(stack)
    src_model, src_raw = _model_and_raw(source_stack) if source_stack is not None else (model, raw)
    plan = model.address_plan
    if plan is None:
        raise ReplicateError(
            "the stack has no cpaas:addressPlan; add siteBlocks, sitePrefix, serviceBlocks, "
            "servicePrefix, bigipAsns and trustDomainSuffix (see Pulumi.prod.yaml)"
        )
    _check_name(new_name, model, src_model)
    source, unit_raw = _source_unit(src_model, src_raw, source_name)
    if isinstance(source.cluster, config.K3dCluster):
        raise ReplicateError(
            f"{source_name} is a local k3d unit; replicate a unit with a kubeconfig or stackReference cluster"
        )
    cloud = _checked(config.Cloud, cloud, "--cloud") if cloud else source.cloud
    region = _checked(config.DnsLabel, region, "--region") if region else source.region

    units_raw = [*raw.get("units", []), *(src_raw.get("units", []) if source_stack is not None else [])]
    used = _used_spans(units_raw, raw.get("gslb"))
    site_from = _source_block(source.network.node_cidr, plan.site_prefix, "nodeCidr", source_name)
    if not source.network.pod_cidr.subnet_of(site_from):
        raise ReplicateError(
            f"{source_name}'s podCidr {source.network.pod_cidr} is outside its site block {site_from} "
            "(the sitePrefix block of its nodeCidr); its layout cannot be moved to a new block"
        )
    service_from = _source_block(source.network.service_cidr, plan.service_prefix, "serviceCidr", source_name)
    site_to = _allocate(plan.site_blocks, plan.site_prefix, used, "siteBlocks", "sitePrefix")
    service_to = _allocate(
        plan.service_blocks,
        plan.service_prefix,
        [*used, _span(site_to)],
        "serviceBlocks",
        "servicePrefix",
    )

    relocation = _Relocation(site_from, site_to, service_from, service_to)
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
        notes=[],
    )
    _rename(replica, source, model, src_model, plan)
    _gslb_edits(replica, model, {a.name for a in source.apps})
    policies = sorted(
        {str(a["waf"]["policy"]) for a in unit.get("apps", []) if (a.get("waf") or {}).get("policy")}
    )
    if policies:
        replica["notes"].append(
            f"WAF policies {', '.join(policies)} are referenced, not created: they must exist on "
            f"{new_name}'s BIG-IP"
        )
    if relocation.kept:
        where = ""
        if cloud != source.cloud:
            where = f"; {new_name} is in {cloud}, {source_name} in {source.cloud}: check they are reachable"
        replica["notes"].append(
            f"kept shared address(es) outside {source_name}'s site block: {', '.join(relocation.kept)}{where}"
        )
    return replica


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
        message = str(exc.errors(include_url=False)[0]["msg"]).removeprefix("Value error, ")
        raise ReplicateError(f"{flag} {value!r}: {message}") from None


def _check_name(name: str, *stacks: config.StackConfig) -> None:
    _checked(config.UnitName, name, "--name")
    for stack in stacks:
        taken = {u.name for u in stack.units} | set(stack.gslb.unit_stacks if stack.gslb else ())
        if name in taken:
            raise ReplicateError(f"--name {name}: a unit of that name already exists; choose another name")


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
# Addresses in use and block allocation
# ---------------------------------------------------------------------------------------------

Span = tuple[int, int]  # first and last address, inclusive


def _span(net: IPv4Network) -> Span:
    return int(net.network_address), int(net.broadcast_address)


def _addresses(tree: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every IPv4 address or CIDR string in a raw config tree, with its path."""
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from _addresses(value, (*path, str(key)))
    elif isinstance(tree, list | tuple):
        for i, value in enumerate(tree):
            yield from _addresses(value, (*path, i))
    elif isinstance(tree, str) and _IPV4.match(tree):
        yield path, tree


def _used_spans(units: Iterable[Any], gslb: Any) -> list[Span]:
    spans: list[Span] = []
    trees: list[Any] = list(units)
    if isinstance(gslb, Mapping):
        trees.append(gslb.get("dnsDevice"))  # wide IPs' topology ldnsSubnets are client networks
    for tree in trees:
        for _, text in _addresses(tree):
            try:
                spans.append(_span(IPv4Network(text, strict=False)))
            except ValueError:
                continue
    return sorted(spans)


def _allocate(
    space: IPv4Network, prefix: int, used: Sequence[Span], blocks: str, size_key: str
) -> IPv4Network:
    """The first `prefix` block of `space` that overlaps nothing in `used`."""
    size = 1 << (32 - prefix)
    start, stop = int(space.network_address), int(space.broadcast_address) + 1
    for lo, hi in sorted(used):
        if start + size > stop:
            break
        if hi < start:
            continue
        if lo >= start + size:
            return IPv4Network((start, prefix))
        start = (hi // size + 1) * size
    if start + size <= stop:
        return IPv4Network((start, prefix))
    count = 1 << (prefix - space.prefixlen)
    raise ReplicateError(
        f"the address plan is exhausted: all {count} /{prefix} blocks of addressPlan.{blocks} "
        f"{space} hold addresses in use; widen {blocks} or use a longer {size_key} "
        "(nothing written)"
    )


def _move(text: str, old: IPv4Network, new: IPv4Network) -> str | None:
    """`text` at the same offset in `new`, or None when it is not inside `old`."""
    offset = int(new.network_address) - int(old.network_address)
    if "/" in text:
        net = IPv4Network(text, strict=False)
        if net.subnet_of(old):
            return str(IPv4Network((int(net.network_address) + offset, net.prefixlen)))
        if net.overlaps(old):
            raise ReplicateError(f"{text} straddles the block {old}; it cannot be moved to a new block")
        return None
    addr = IPv4Address(text)
    return str(IPv4Address(int(addr) + offset)) if addr in old else None


@dataclass
class _Relocation:
    """Moves a unit's addresses from the source's blocks to the new ones."""

    site_from: IPv4Network
    site_to: IPv4Network
    service_from: IPv4Network
    service_to: IPv4Network
    kept: list[str] = field(default_factory=list)  # addresses left as they are, with their paths

    def copy(self, tree: Any, path: tuple[str | int, ...] = ()) -> Any:
        """A deep copy of `tree` with its addresses moved."""
        if isinstance(tree, Mapping):
            return {k: self.copy(v, (*path, str(k))) for k, v in tree.items()}
        if isinstance(tree, list | tuple):
            return [self.copy(v, (*path, i)) for i, v in enumerate(tree)]
        if not (isinstance(tree, str) and _IPV4.match(tree)):
            return copy.deepcopy(tree)
        try:
            if path == _SERVICE_CIDR:
                return _move(tree, self.service_from, self.service_to)
            moved = _move(tree, self.site_from, self.site_to)
        except ValueError:
            return tree
        if moved is None:
            self.kept.append(f"{'.'.join(map(str, path))} {tree}")
            return tree
        return moved


# ---------------------------------------------------------------------------------------------
# Names, keys, ASN and GSLB
# ---------------------------------------------------------------------------------------------


def _renamed_key(key: str, old: str, new: str) -> str:
    return key.replace(old, new) if old in key else f"{key}-{new}"


def _rename(
    replica: Replica,
    source: config.Unit,
    stack: config.StackConfig,
    src_stack: config.StackConfig,
    plan: config.AddressPlan,
) -> None:
    unit, old = replica["unit"], source.name
    new = unit["name"]
    cluster = unit["cluster"]
    if cluster["source"] == "kubeconfig":
        cluster["kubeconfigSecret"] = _renamed_key(cluster["kubeconfigSecret"], old, new)
        replica["secrets"].append(cluster["kubeconfigSecret"])
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
    taken = _partitions(stack) | _partitions(src_stack)
    for key, name in partitions.items():
        if name.lower() in taken:
            raise ReplicateError(
                f"--name {new}: partition {name} is already used in the stack; choose another name"
            )
        bigip[key] = name
    bigip["passwordSecret"] = _renamed_key(bigip["passwordSecret"], old, new)
    replica["secrets"].insert(0, bigip["passwordSecret"])
    if bigip.get("trustedCertKey"):
        bigip["trustedCertKey"] = _renamed_key(bigip["trustedCertKey"], old, new)
        replica["values"].append(bigip["trustedCertKey"])
    bigip["asn"] = _free_asn(plan, stack, src_stack)
    replica["allocated"]["BIG-IP"] = f"ASN {bigip['asn']}, partitions {', '.join(partitions.values())}"


def _partitions(stack: config.StackConfig) -> set[str]:
    names = {stack.gslb.dns_device.partition.lower()} if stack.gslb else set()
    for u in stack.units:
        if u.bigip is not None:
            names |= {u.bigip.cis_partition.lower(), u.bigip.pulumi_partition.lower()}
    return names


def _free_asn(plan: config.AddressPlan, *stacks: config.StackConfig) -> int:
    used: set[int] = set()
    for stack in stacks:
        for u in stack.units:
            used |= {u.bigip.asn} if u.bigip is not None else set()
            used |= {u.network.cni.asn} if isinstance(u.network.cni, config.CalicoBgp) else set()
    first, last = plan.bigip_asns
    for asn in range(first, last + 1):
        if asn not in used:
            return asn
    raise ReplicateError(
        f"the address plan is exhausted: every ASN of addressPlan.bigipAsns [{first}, {last}] "
        "is in use; widen bigipAsns (nothing written)"
    )


def _gslb_edits(replica: Replica, stack: config.StackConfig, apps: set[str]) -> None:
    if stack.gslb is None:
        return
    source, joined, topology = replica["source"], [], []
    for w, wide in enumerate(stack.gslb.wide_ips):
        if wide.app not in apps:
            continue
        ratio = wide.ratios.get(source)
        if wide.units or ratio is not None:
            replica["gslb"].append(GslbEdit(index=w, app=wide.app, append=bool(wide.units), ratio=ratio))
            joined.append(wide.app + (f" (ratio {ratio})" if ratio is not None else ""))
        if wide.topology:
            topology.append(wide.app)
    if joined:
        replica["allocated"]["GSLB"] = "joins " + ", ".join(joined)
    if topology:
        replica["notes"].append(
            f"topology records of {', '.join(topology)} left as they are; add records for "
            f"{replica['unit']['name']} if it should answer some LDNS subnets"
        )


# ---------------------------------------------------------------------------------------------
# The stack file: ruamel round trip, comments kept
# ---------------------------------------------------------------------------------------------


def _yaml() -> YAML:
    rt = YAML()  # round trip: comments, key order, quoting and flow style survive
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)
    return rt


def _styled(value: Any, like: Any) -> Any:
    """`value` as ruamel nodes, taking flow style and quoting from `like` (the source's node)."""
    if isinstance(value, Mapping):
        node = CommentedMap()
        for key, item in value.items():
            node[key] = _styled(item, like.get(key) if isinstance(like, Mapping) else None)
        if isinstance(like, CommentedMap) and like.fa.flow_style():
            node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        seq = CommentedSeq()
        for i, item in enumerate(value):
            template = like[min(i, len(like) - 1)] if isinstance(like, list) and like else None
            seq.append(_styled(item, template))
        if isinstance(like, CommentedSeq) and like.fa.flow_style():
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, str) and isinstance(like, ScalarString):
        return type(like)(value)
    return value


def _is_block(node: Any) -> bool:
    return isinstance(node, CommentedMap | CommentedSeq) and not node.fa.flow_style() and len(node) > 0


def _last(node: Any) -> Any:
    return node[len(node) - 1] if isinstance(node, CommentedSeq) else node[next(reversed(node))]


def _detach_trailing(node: Any) -> str:
    """Remove and return (as text, indentation included) the full-line comments that follow
    the block collection `node`.

    ruamel keeps them on the deepest last node (they are the lines before the next key), so an
    item appended after `node`'s last one would otherwise land below them.
    """
    text = ""
    while _is_block(node):
        key = len(node) - 1 if isinstance(node, CommentedSeq) else next(reversed(node))
        slot = node.ca.items.get(key)
        index = 0 if isinstance(node, CommentedSeq) else 2
        if slot and len(slot) > index and isinstance(slot[index], CommentToken):
            head, newline, tail = slot[index].value.partition("\n")
            text += tail
            if head.strip():
                slot[index].value = head + newline  # an end-of-line comment stays where it is
            else:
                slot[index] = None
        for token in node.ca.end or []:
            column = token.start_mark.column if token.value.startswith("#") else 0
            text += " " * column + token.value
        node.ca.end = []
        node = _last(node)
    return text


def _attach_trailing(node: Any, text: str) -> None:
    while _is_block(_last(node)):
        node = _last(node)
    if isinstance(node, CommentedSeq):
        if node.ca.comment is None:
            node.ca.comment = [None, None]  # the representer emits `end` only beside a comment
        node.ca.end = [CommentToken(text, CommentMark(0))]
    else:
        node.ca.items[next(reversed(node))] = [None, None, CommentToken("\n" + text, CommentMark(0)), None]


def _append(seq: Any, item: Any) -> None:
    trailing = _detach_trailing(seq) if _is_block(seq) else ""
    seq.append(item)
    if trailing:
        _attach_trailing(seq, trailing)


def edit_document(doc: Any, replica: Replica, like: Any) -> None:
    """Apply `replica` to the round-trip document `doc`; `like` is the source unit's node."""
    cfg = doc["config"]
    key = f"{config.CONFIG_NAMESPACE}:units"
    units = cfg[key]
    _append(units, _styled(replica["unit"], like))
    units.yaml_set_comment_before_after_key(
        len(units) - 1, before=f"Replicated from {replica['source']} by tools.replicate.", indent=4
    )
    name = replica["unit"]["name"]
    for edit in replica["gslb"]:
        wide = cfg[f"{config.CONFIG_NAMESPACE}:gslb"]["wideIps"][edit["index"]]
        if edit["append"]:
            _append(wide["units"], name)
        if edit["ratio"] is not None:
            ratios = wide["ratios"]
            trailing = _detach_trailing(ratios) if _is_block(ratios) else ""
            ratios[name] = edit["ratio"]
            if trailing:
                _attach_trailing(ratios, trailing)


def _dump(doc: Any) -> str:
    out = io.StringIO()
    _yaml().dump(doc, out)
    return out.getvalue()


def raw_config(text: str, name: str) -> dict[str, Any]:
    """The structured `cpaas:` keys of a stack file's text, prefix stripped (as the renderer
    reads them; libyaml when available, as this runs twice per replication)."""
    try:
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except yaml.YAMLError as exc:
        raise ReplicateError(f"{name}: cannot read: {exc}".replace("\n", " ")) from None
    entries = doc.get("config") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise ReplicateError(f"{name}: no 'config' mapping")
    structured = set(config.config_keys())
    prefix = f"{config.CONFIG_NAMESPACE}:"
    return {
        k.removeprefix(prefix): v
        for k, v in entries.items()
        if isinstance(k, str) and k.startswith(prefix) and k.removeprefix(prefix) in structured
    }


def _validate_text(text: str, path: Path) -> None:
    """The text about to be written, read back as the renderer reads it, must validate."""
    try:
        config.parse_stack(raw_config(text, path.name))
    except config.ConfigError as exc:
        raise ReplicateError(f"{path.name} would not validate (nothing written): {exc.lines[0]}") from None


def write_atomically(path: Path, text: str, mode_from: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode_from.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{PROG}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _read(stack: str) -> tuple[dict[str, Any], Any, str]:
    """A stack file's raw `cpaas:` keys, its round-trip document and its text."""
    path = ROOT / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
        raise ReplicateError(f"{path.name}: no such stack file; known stacks: {', '.join(known)}")
    text = path.read_text()
    return raw_config(text, path.name), _yaml().load(text), text


def _unit_node(doc: Any, name: str) -> Any:
    for node in doc["config"][f"{config.CONFIG_NAMESPACE}:units"]:
        if node.get("name") == name:
            return node
    return None


def run(args: argparse.Namespace) -> list[str]:
    """Replicate as `args` say; returns the summary lines. Raises ReplicateError."""
    target = args.to or args.stack
    src_raw, src_doc, src_text = _read(args.stack)
    target_path = ROOT / f"Pulumi.{target}.yaml"
    created = target != args.stack and not target_path.is_file()
    try:
        if target != args.stack and not created:
            raw, doc, _ = _read(target)
            replica = derive(raw, args.unit, args.name, args.cloud, args.region, source_stack=src_raw)
        else:
            # A fresh load, not a deepcopy: ruamel's comment and style attributes do not deepcopy.
            doc = _yaml().load(src_text) if created else src_doc
            replica = derive(src_raw, args.unit, args.name, args.cloud, args.region)
    except ReplicateError as exc:
        raise ReplicateError(f"{exc} [{target_path.name}]") from None
    edit_document(doc, replica, _unit_node(src_doc, args.unit))
    text = _dump(doc)
    _validate_text(text, target_path)
    write_atomically(target_path, text, ROOT / f"Pulumi.{args.stack if created else target}.yaml")
    notes = []
    if created and "secure:" in src_text:
        notes.append(
            f"the secure values copied from {args.stack} are encrypted for that stack; set them "
            f"again for {target} (pulumi config cp, or pulumi config set --secret)"
        )
    return _summary(args, target, replica, created, notes)


def _summary(
    args: argparse.Namespace, target: str, replica: Replica, created: bool, notes: list[str]
) -> list[str]:
    unit = replica["unit"]
    where = f"Pulumi.{target}.yaml" + (f" (new, a copy of Pulumi.{args.stack}.yaml)" if created else "")
    lines = [
        f"{PROG}: added unit {unit['name']} ({unit['cloud']}, {unit['region']}) from {args.unit} to {where}"
    ]
    lines += [f"  {key}: {value}" for key, value in replica["allocated"].items()]
    lines += [f"  note: {note}" for note in [*replica["notes"], *notes]]
    if replica["secrets"] or replica["values"]:
        lines.append("  set before deploying:")
    kubeconfig = unit["cluster"].get("kubeconfigSecret")
    for key in replica["secrets"]:
        stdin = " < kubeconfig" if key == kubeconfig else ""
        lines.append(f"    pulumi config set --secret -s {target} cpaas:{key}{stdin}")
    lines += [f"    pulumi config set -s {target} cpaas:{key} < bigip.pem" for key in replica["values"]]
    return lines


def main(argv: Iterable[str] | None = None) -> int:
    parser = _Parser(prog="python -m tools.replicate", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stack", required=True, help="source stack: reads Pulumi.<stack>.yaml")
    parser.add_argument("--unit", required=True, help="the unit to replicate")
    parser.add_argument("--name", required=True, help="the new unit's name")
    parser.add_argument("--cloud", help="the new unit's cloud (default: the source's)")
    parser.add_argument("--region", help="the new unit's region (default: the source's)")
    parser.add_argument("--to", help="write into Pulumi.<to>.yaml (created as a copy of the source)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        lines = run(args)
    except ReplicateError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: cannot write the stack file: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
