"""Where tools.replicate finds room for a new unit: what every stack of the project that shares
an address plan already uses, and the first free block and BIG-IP ASN past all of it.

A stack file shares the plan when its `cpaas:addressPlan` equals the source stack's; the GSLB
stacks the new unit joins count too, whatever their plan. What they use:

- every IPv4 address and CIDR anywhere in any unit (node, pod and service CIDRs, VIPs, self IPs,
  management, SNAT and forward-proxy addresses, BGP neighbours) and each GSLB device's address.
  GSLB topology `ldnsSubnet`s are client networks, not ours: ignored;
- every BIG-IP and cluster ASN, every partition, every unit name and every `gslb.unitStacks` name.

From the source stack's plan:

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
- The BIG-IP ASN is the lowest of `bigipAsns` that no BIG-IP and no cluster uses; the cluster's
  (Calico) ASN stays as in the source. Partition and unit names must be unused.

Other stack files are read without the full check (a stack may be mid-edit), but one that cannot
be read at all, or whose plan does not validate, is refused: its allocations would be invisible.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from components import config
from tools import stackfile

Span = tuple[int, int]  # first and last address, inclusive
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?$")
_SERVICE_CIDR = ("network", "serviceCidr")


class RefusedError(Exception):
    """A refusal: one line saying what is wrong and what to do."""


def span(net: IPv4Network) -> Span:
    return int(net.network_address), int(net.broadcast_address)


def addresses(tree: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every IPv4 address or CIDR string in a raw config tree, with its path."""
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from addresses(value, (*path, str(key)))
    elif isinstance(tree, list | tuple):
        for i, value in enumerate(tree):
            yield from addresses(value, (*path, i))
    elif isinstance(tree, str) and _IPV4.match(tree):
        yield path, tree


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass
class InUse:
    """What the stacks seen so far use; `where` values name the stack file."""

    spans: list[Span] = field(default_factory=list)
    asns: set[int] = field(default_factory=set)
    partitions: dict[str, str] = field(default_factory=dict)  # lower-case name -> where
    units: dict[str, str] = field(default_factory=dict)  # unit name -> where

    def with_stack(self, raw: Mapping[str, Any], where: str) -> InUse:
        """A copy with what the raw stack (`cpaas:` keys, prefix stripped) uses added; what
        was seen first keeps its `where`."""
        out = copy.deepcopy(self)
        units = [u for u in raw.get("units") or [] if isinstance(u, Mapping)]
        shared = [d for d in raw.get("bigipDevices") or [] if isinstance(d, Mapping)]
        gslb = _mapping(raw.get("gslb"))
        device = _mapping(gslb.get("dnsDevice"))
        for tree in [*units, *shared, device]:
            for _, text in addresses(tree):
                try:
                    out.spans.append(span(IPv4Network(text, strict=False)))
                except ValueError:
                    continue
        for unit in units:
            out._add_unit(unit, where)
        out.asns |= {d["asn"] for d in shared if isinstance(d.get("asn"), int)}
        out._add_partition(device.get("partition"), where)
        for name in _mapping(gslb.get("unitStacks")):
            out.units.setdefault(str(name), where)
        return out

    def _add_unit(self, unit: Mapping[str, Any], where: str) -> None:
        self.units.setdefault(str(unit.get("name")), where)
        bigip = _mapping(unit.get("bigip"))
        cni = _mapping(_mapping(unit.get("network")).get("cni"))
        self.asns |= {a for a in (bigip.get("asn"), cni.get("asn")) if isinstance(a, int)}
        for key in ("cisPartition", "pulumiPartition"):
            self._add_partition(bigip.get(key), where)

    def _add_partition(self, name: Any, where: str) -> None:
        if isinstance(name, str):
            self.partitions.setdefault(name.lower(), where)

    def check_unit(self, name: str) -> None:
        if name in self.units:
            raise RefusedError(
                f"--name {name}: unit {name} is in {self.units[name]} already; choose another name"
            )

    def check_partition(self, partition: str, unit: str) -> None:
        where = self.partitions.get(partition.lower())
        if where is not None:
            raise RefusedError(
                f"--name {unit}: partition {partition} is in {where} already; choose another name"
            )


def block(space: IPv4Network, prefix: int, used: Sequence[Span], blocks: str, size_key: str) -> IPv4Network:
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
    raise RefusedError(
        f"the address plan is exhausted: all {count} /{prefix} blocks of addressPlan.{blocks} "
        f"{space} hold addresses in use; widen {blocks} or use a longer {size_key} "
        "(nothing written)"
    )


def free_asn(plan: config.AddressPlan, used: set[int]) -> int:
    first, last = plan.bigip_asns
    for asn in range(first, last + 1):
        if asn not in used:
            return asn
    raise RefusedError(
        f"the address plan is exhausted: every ASN of addressPlan.bigipAsns [{first}, {last}] "
        "is in use; widen bigipAsns (nothing written)"
    )


# ---------------------------------------------------------------------------------------------
# The stack files of the project
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackFile:
    name: str  # the stack: Pulumi.<name>.yaml
    path: Path
    raw: dict[str, Any]  # `cpaas:` keys, prefix stripped (stackfile.document_raw)


def stack_files(root: Path) -> list[StackFile]:
    """Every Pulumi.<stack>.yaml of the project at `root`, read as the render reads them."""
    found = []
    for path in sorted(root.glob("Pulumi.*.yaml")):
        try:
            raw = stackfile.raw_config(path)
        except stackfile.StackFileError as exc:
            raise RefusedError(
                f"{exc.lines[0]}; every stack file is read to keep allocations apart: fix it or "
                "move it out of the project"
            ) from None
        found.append(StackFile(path.name.removeprefix("Pulumi.").removesuffix(".yaml"), path, raw))
    return found


def in_use(files: list[StackFile], source: str, plan: config.AddressPlan | None, joined: set[str]) -> InUse:
    """What stack `source`, every stack sharing its `plan` and the stacks in `joined` use."""
    used = InUse()
    for f in sorted(files, key=lambda f: f.name != source):  # the source's own names first
        if f.name == source or f.name in joined or (plan is not None and shares(f, plan)):
            used = used.with_stack(f.raw, f.path.name)
    return used


def shares(stack: StackFile, plan: config.AddressPlan) -> bool:
    value = stack.raw.get("addressPlan")
    if value is None:
        return False
    try:
        return config.AddressPlan.model_validate(value) == plan
    except ValidationError:
        raise RefusedError(
            f"{stack.path.name}: cpaas:addressPlan does not validate, so whether it shares the "
            "plan cannot be told; fix it first (python -m tools.stackfile --stack "
            f"{stack.name})"
        ) from None


# ---------------------------------------------------------------------------------------------
# Moving a unit's layout into its new blocks
# ---------------------------------------------------------------------------------------------


def _move(text: str, old: IPv4Network, new: IPv4Network) -> str | None:
    """`text` at the same offset in `new`, or None when it is not inside `old`."""
    offset = int(new.network_address) - int(old.network_address)
    if "/" in text:
        net = IPv4Network(text, strict=False)
        if net.subnet_of(old):
            return str(IPv4Network((int(net.network_address) + offset, net.prefixlen)))
        if net.overlaps(old):
            raise RefusedError(f"{text} straddles the block {old}; it cannot be moved to a new block")
        return None
    addr = IPv4Address(text)
    return str(IPv4Address(int(addr) + offset)) if addr in old else None


@dataclass
class Relocation:
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
