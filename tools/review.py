"""What a reviewer reads first in a render: summary.md and the Mermaid graphs.

summary.md opens with the verdict (the render's exit code and why), then one overview per unit
(cloud, cluster, CNI, BIG-IP, apps, egress, GSLB), the stack-wide PKI and GSLB, and only then
the resource counts. graph.mmd draws the stack as components (units, PKI, GSLB); graph/<unit>.mmd
draws each unit's resources and graph/_stack.mmd the stack-wide ones, so that each stays within
what Mermaid draws by default.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components import config
from components.bigip.ingress import waf_policy_path
from components.gslb import application_name
from tools import authz, engine

STACK = "_stack"  # the unit name of stack-wide resources (not a DNS label, so no unit has it)
AS3_TYPE = "f5bigip:index/as3:As3"
# Mermaid draws no text longer than maxTextSize and refuses a flowchart with more than maxEdges
# edges; GitHub draws with the defaults.
# Ref: mermaid-js/mermaid@mermaid@11.14.0 packages/mermaid/src/schemas/config.schema.yaml
# (maxTextSize default 50000, maxEdges default 500); mermaidAPI.ts and flowDb.ts enforce them.
MERMAID_MAX_TEXT = 50_000
MERMAID_MAX_EDGES = 500
LISTED_FINDINGS = 50  # the verdict lists this many violations; the render's output has them all


# ---------------------------------------------------------------------------------------------
# The verdict
# ---------------------------------------------------------------------------------------------


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class Verdict:
    """What the render found; its exit code is the render's."""

    violations: tuple[str, ...] | None = None  # None: schemas not validated
    skipped: tuple[str, ...] = ()  # schema families not found
    skipped_is_error: bool = False  # CPAAS_REQUIRE_SCHEMAS=1
    policy: tuple[str, ...] | None = None  # None: the policy pack did not run
    # --preview: "file: path" of each value unknown until deploy (provider-computed), not checked
    unknown: tuple[str, ...] | None = None

    @property
    def exit_code(self) -> int:
        failed = bool(self.violations) or bool(self.policy) or (bool(self.skipped) and self.skipped_is_error)
        return 1 if failed else 0

    def headline(self) -> str:
        word = "FAILS" if self.exit_code else "passes"
        schemas = (
            "not validated (--no-validate)"
            if self.violations is None
            else _count(len(self.violations), "violation")
        )
        policy = (
            "not checked (render without --policy)"
            if self.policy is None
            else _count(len(self.policy), "violation")
        )
        if not self.skipped:
            skipped = "none"
        else:
            why = (
                "an error: CPAAS_REQUIRE_SCHEMAS=1"
                if self.skipped_is_error
                else "its objects were NOT validated"
            )
            skipped = f"{', '.join(f'`{f}`' for f in self.skipped)} ({why})"
        preview = (
            ""
            if self.unknown is None
            else f" Preview: {_count(len(self.unknown), 'value')} unknown until deploy, not checked."
        )
        return (
            f"**Verdict: {word} (exit {self.exit_code}).** Schemas: {schemas}. Policy: {policy}. "
            f"Skipped schema families: {skipped}.{preview}"
        )

    def findings(self) -> list[str]:
        found = [f"- schema: {v}" for v in self.violations or ()]
        found += [f"- policy: {p}" for p in self.policy or ()]
        found += [f"- skipped: schema family `{f}`: its objects were NOT validated" for f in self.skipped]
        found += [f"- unknown until deploy, not checked: {u}" for u in self.unknown or ()]
        if len(found) > LISTED_FINDINGS:
            rest = len(found) - LISTED_FINDINGS
            found = [*found[:LISTED_FINDINGS], f"- ... and {rest} more (the render's output lists them all)"]
        return found


# ---------------------------------------------------------------------------------------------
# One overview per unit
# ---------------------------------------------------------------------------------------------


def _cluster(unit: config.Unit) -> str:
    cluster = unit.cluster
    if isinstance(cluster, config.K3dCluster):
        where = (
            f"k3d `{cluster.image}` created by this stack, {_count(cluster.servers, 'server')}, "
            f"{_count(cluster.agents, 'agent')}"
        )
    elif isinstance(cluster, config.KubeconfigCluster):
        where = f"kubeconfig from secret `{config.CONFIG_NAMESPACE}:{cluster.kubeconfig_secret}`"
    else:
        where = f"kubeconfig from stack `{cluster.stack}` output `{cluster.output}`"
    return f"- cluster: {where}, Kubernetes {cluster.kubernetes_version}"


def _cni(unit: config.Unit) -> str:
    cni = unit.network.cni
    if isinstance(cni, config.CalicoBgp):
        to = "BGP to the BIG-IP" if unit.bigip is not None else "no BIG-IP to peer with"
        return f"- CNI: calico-bgp, AS {cni.asn}, encapsulation {cni.encapsulation}, {to}"
    return f"- CNI: {cni.type} (pod addresses reach the BIG-IP without BGP)"


def _bigip(unit: config.Unit, skipped: Sequence[str]) -> str:
    b = unit.bigip
    if b is None:
        why = next((s for s in skipped if s.startswith("bigip")), "no bigip in the stack file")
        return f"- BIG-IP: none; skipped: {why}"
    return (
        f"- BIG-IP: {b.management_address}:{b.management_port}, self IPs "
        f"{', '.join(str(a) for a in b.self_ips)}, AS {b.asn}; partitions `{b.cis_partition}` (CIS) "
        f"and `{b.pulumi_partition}` (Pulumi)"
    )


def _waf(unit: config.Unit, app: config.App) -> str:
    if app.waf is None:
        return "none"
    path = waf_policy_path(unit.name, app)
    if app.waf.template is None:
        return f"`{path}` (existing)"
    return f"`{path}` (from {app.waf.template}, {app.waf.enforcement_mode})"


@dataclass(frozen=True)
class WideIp:
    fqdn: str
    wide: config.WideIp
    members: tuple[str, ...]  # unit names in pool order


def wide_ips(
    stack: config.StackConfig, outputs: Mapping[str, Any], regs: Sequence[engine.Registration]
) -> list[WideIp]:
    """Each wide IP with its FQDN and its members as the program resolved them (the `gslb.wideIps`
    output, FQDN -> units). The FQDN of an app is read from the AS3 declaration, so apps served
    only by units of other stacks (gslb.unitStacks) are found too."""
    if stack.gslb is None:
        return []
    members = ((outputs.get("gslb") or {}).get("wideIps")) or {}
    fqdns = {a.name: str(a.fqdn) for u in stack.units for a in u.apps if a.fqdn is not None}
    tenant = _as3_tenant(stack.gslb, regs)
    found = []
    for wide in stack.gslb.wide_ips:
        domain = (tenant.get(application_name(wide.app)) or {}).get("wideip") or {}
        fqdn = str(domain.get("domainName") or fqdns.get(wide.app, f"(app {wide.app})"))
        found.append(WideIp(fqdn, wide, tuple(members.get(fqdn) or ())))
    return found


def _as3_tenant(gslb: config.Gslb, regs: Sequence[engine.Registration]) -> Mapping[str, Any]:
    for reg in regs:
        if reg.type == AS3_TYPE:
            try:
                body = json.loads(str(reg.inputs.get("as3Json")))
            except ValueError:
                return {}
            tenant = (body.get("declaration") or {}).get(gslb.dns_device.partition)
            return tenant if isinstance(tenant, dict) else {}
    return {}


def _membership(unit: str, app: config.App, wides: Sequence[WideIp]) -> str:
    for w in wides:
        if w.wide.app != app.name:
            continue
        if unit not in w.members:
            return f"{w.wide.lb_mode}, not a member"
        mode = f"ratio {w.wide.ratios.get(unit, 1)}" if w.wide.lb_mode == "ratio" else w.wide.lb_mode
        last = ", last resort" if w.wide.last_resort_unit == unit else ""
        return f"{mode}, member {w.members.index(unit) + 1} of {len(w.members)}{last}"
    return "-"


def _apps(unit: config.Unit, wides: Sequence[WideIp]) -> list[str]:
    if not unit.apps:
        return ["- apps: none"]
    lines = ["| app | kind | FQDN | VIP:port | WAF | GSLB |", "|---|---|---|---|---|---|"]
    for a in unit.apps:
        lines.append(
            f"| {a.name} | {a.kind} | {a.fqdn or '-'} | {a.vip}:{a.port} | {_waf(unit, a)} | "
            f"{_membership(unit.name, a, wides)} |"
        )
    return lines


def _egress(unit: config.Unit) -> list[str]:
    e = unit.egress
    if e is None:
        return ["- egress: none"]
    lines = [
        f"- egress: {e.vip}:{e.port} to the forward proxy {e.forward_proxy.address}:{e.forward_proxy.port}; "
        f"shared SNAT {', '.join(str(a) for a in e.snat_addresses)}",
        "",
        "| namespace | service accounts | SNAT |",
        "|---|---|---|",
    ]
    for allow in e.allow:
        accounts = ", ".join(allow.service_accounts) or "any"
        snat = f"{allow.snat_address} (its own)" if allow.snat_address else "shared"
        lines.append(f"| {allow.namespace} | {accounts} | {snat} |")
    return lines


def unit_overview(unit: config.Unit, skipped: Sequence[str], wides: Sequence[WideIp]) -> list[str]:
    lines = [
        f"## Unit `{unit.name}`: {unit.cloud}, {unit.region}",
        "",
        _cluster(unit),
        _cni(unit),
        _bigip(unit, skipped),
    ]
    lines += [f"- skipped: {s}" for s in skipped if not (unit.bigip is None and s.startswith("bigip"))]
    lines += ["", *_apps(unit, wides), "", *_egress(unit), ""]
    return lines


def _pki(stack: config.StackConfig) -> str:
    pki = stack.pki
    if pki is None:
        return "- PKI: none"
    root = pki.root
    if isinstance(root, config.GeneratedRoot):
        made = f"root `{root.common_name}` generated here ({root.validity_days} days)"
    else:
        made = f"root imported from `{config.CONFIG_NAMESPACE}:{root.cert_key}`"
    return (
        f"- PKI: {pki.key_algorithm}, {made}; one intermediate per unit ({pki.intermediate_validity_days} "
        f"days, the unit's Istio CA); leaves {pki.leaf_validity_days} days"
    )


def _gslb(stack: config.StackConfig, wides: Sequence[WideIp]) -> list[str]:
    if stack.gslb is None:
        return ["- GSLB: none"]
    d = stack.gslb.dns_device
    listeners = ", ".join(str(a) for a in d.listeners) or "the device's own"
    remote = ", ".join(f"{u} (stack `{s}`)" for u, s in sorted(stack.gslb.unit_stacks.items())) or "none"
    lines = [
        f"- GSLB: DNS device {d.management_address}, partition `{d.partition}`, listeners {listeners}; "
        f"units from other stacks: {remote}",
        "",
        "| wide IP | app | LB mode | members in order |",
        "|---|---|---|---|",
    ]
    for w in wides:
        shown = [f"{m} ({w.wide.ratios.get(m, 1)})" if w.wide.lb_mode == "ratio" else m for m in w.members]
        last = f"; last resort {w.wide.last_resort_unit}" if w.wide.last_resort_unit else ""
        lines.append(f"| {w.fqdn} | {w.wide.app} | {w.wide.lb_mode} | {', '.join(shown)}{last} |")
    return lines


# ---------------------------------------------------------------------------------------------
# summary.md
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the summary is written from: the stack, the run, and the render's own findings."""

    stack: config.StackConfig
    outputs: Mapping[str, Any]
    regs: Sequence[engine.Registration]  # in stable order
    unit_of: Mapping[str, str]  # urn -> unit name, or STACK
    chain: Sequence[engine.Registration]  # the longest dependency chain
    notes: Sequence[str]  # deploy-time values that are placeholders
    graph_notes: Sequence[str]  # graphs over Mermaid's limits


def summary(facts: Facts, verdict: Verdict | None) -> str:
    stack = facts.stack
    head = verdict.headline() if verdict else "**Verdict: not checked.** This render was not validated."
    lines = [f"# Render of stack `{stack.environment}`", "", head, ""]
    findings = verdict.findings() if verdict else []
    if findings:
        lines += [*findings, ""]
    lines += [
        f"{len(facts.regs)} resources in {len(stack.units)} unit(s). Graphs: `graph.mmd` (the stack), "
        "`graph/<unit>.mmd` (each unit), `graph/_stack.mmd` (PKI and GSLB resources).",
        "",
    ]
    lines += [f"- {n}" for n in facts.graph_notes]
    if facts.graph_notes:
        lines.append("")
    wides = wide_ips(stack, facts.outputs, facts.regs)
    unit_outputs = facts.outputs.get("units") or {}
    for unit in stack.units:
        lines += unit_overview(unit, (unit_outputs.get(unit.name) or {}).get("skipped", []), wides)
    lines += ["## Stack-wide", "", _pki(stack), *_gslb(stack, wides), ""]
    lines += reachability(facts)
    lines += _counts(facts)
    lines += [f"## Longest dependency chain: {len(facts.chain)} resources", ""]
    lines += [f"{i + 1}. `{r.type}` {r.name}" for i, r in enumerate(facts.chain)]
    lines.append("")
    if facts.notes:
        lines += ["## Deploy-time values (placeholders in this render)", ""]
        lines += [f"- {n}" for n in facts.notes]
        lines.append("")
    return "\n".join(lines)


def reachability(facts: Facts) -> list[str]:
    """The section "Who can reach what": tools.authz's view over this render's policies, compact."""
    try:
        return authz.markdown(authz.views(facts.stack, facts.regs, facts.unit_of))
    except authz.PolicyError as exc:
        return ["## Who can reach what", "", f"Not evaluated: {exc}.", ""]


def _counts(facts: Facts) -> list[str]:
    per_unit: dict[str, Counter[str]] = defaultdict(Counter)
    for reg in facts.regs:
        per_unit[facts.unit_of[reg.urn]][reg.type] += 1
    lines = ["## Resources per unit", ""]
    for unit in [*(u.name for u in facts.stack.units), STACK]:
        counts = per_unit.get(unit, Counter())
        title = "stack-wide (PKI, GSLB, shared BIG-IPs)" if unit == STACK else f"unit `{unit}`"
        lines += [f"### {title}: {sum(counts.values())} resources", "", "| type | count |", "|---|---|"]
        lines += [f"| `{t}` | {n} |" for t, n in sorted(counts.items())]
        lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------
# Graphs
# ---------------------------------------------------------------------------------------------


def _label(*parts: str) -> str:
    return "<br/>".join(p.replace('"', "#quot;") for p in parts)


def _short(type_: str) -> str:
    return type_.rsplit(":", 1)[-1]


def _top(
    reg: engine.Registration, by_urn: Mapping[str, engine.Registration], stop: str = ""
) -> engine.Registration:
    """The ancestor of `reg` (or itself) whose parent is `stop` or outside the stack's resources."""
    cur = reg
    while cur.parent in by_urn and cur.parent != stop:
        cur = by_urn[cur.parent]
    return cur


def resource_graph(
    regs: Sequence[engine.Registration], by_urn: Mapping[str, engine.Registration], root: str = ""
) -> str:
    """`regs` (one unit's, or the stack-wide ones) as nodes grouped by component: a subgraph per
    child of `root` (the unit's registration). Dependencies outside `regs` are drawn once each."""
    mine = {r.urn for r in regs}
    ids = {r.urn: f"r{i}" for i, r in enumerate(regs)}
    groups: dict[str, list[engine.Registration]] = defaultdict(list)
    for reg in regs:
        groups[_top(reg, by_urn, root).urn].append(reg)
    lines = ["flowchart LR"]
    for n, (top, members) in enumerate(groups.items()):
        indent = "  "
        if len(members) > 1:
            lines.append(f'  subgraph g{n}["{_label(by_urn[top].name)}"]')
            indent = "    "
        lines += [f'{indent}{ids[r.urn]}["{_label(r.name, f"<i>{_short(r.type)}</i>")}"]' for r in members]
        if len(members) > 1:
            lines.append("  end")
    outside = sorted({d for r in regs for d in r.dependencies if d not in mine and d in by_urn})
    if outside:
        lines.append('  subgraph outside["outside this graph"]')
        for i, urn in enumerate(outside):
            ids[urn] = f"x{i}"
            dep = by_urn[urn]
            lines.append(f'    x{i}["{_label(dep.name, f"<i>{_short(dep.type)}</i>")}"]')
        lines.append("  end")
    lines += [f"  {ids[d]} --> {ids[r.urn]}" for r in regs for d in r.dependencies if d in ids]
    return "\n".join(lines) + "\n"


def stack_graph(
    regs: Sequence[engine.Registration],
    by_urn: Mapping[str, engine.Registration],
    stack: config.StackConfig,
    wides: Sequence[WideIp],
) -> str:
    """The stack's top-level components (PKI, units, GSLB) and what joins them: dependencies
    between their resources, and GSLB's wide IPs over the units (dotted, with the apps)."""
    top_of = {r.urn: _top(r, by_urn).urn for r in regs}
    tops = list(dict.fromkeys(top_of.values()))
    ids = {urn: f"n{i}" for i, urn in enumerate(tops)}
    sizes = Counter(top_of.values())
    units = {u.name: u for u in stack.units}
    lines = ["flowchart LR"]
    for urn in tops:
        reg = by_urn[urn]
        where = f"{units[reg.name].cloud} {units[reg.name].region}, " if reg.name in units else ""
        lines.append(
            f'  {ids[urn]}["{_label(reg.name, f"<i>{_short(reg.type)}</i>, {where}{sizes[urn]} resources")}"]'
        )
    edges = sorted(
        {(ids[top_of[d]], ids[top_of[r.urn]]) for r in regs for d in r.dependencies if d in top_of}
    )
    lines += [f"  {a} --> {b}" for a, b in edges if a != b]
    lines += _gslb_edges(tops, by_urn, ids, wides)
    return "\n".join(lines) + "\n"


def _gslb_edges(
    tops: Sequence[str],
    by_urn: Mapping[str, engine.Registration],
    ids: dict[str, str],
    wides: Sequence[WideIp],
) -> list[str]:
    gslb = next((u for u in tops if by_urn[u].type == "cpaas:gslb:Gslb"), None)
    if gslb is None:
        return []
    node = {by_urn[u].name: ids[u] for u in tops if by_urn[u].type == "cpaas:unit:AtomicUnit"}
    apps: dict[str, list[str]] = defaultdict(list)
    for w in wides:
        for member in w.members:
            apps[member].append(w.wide.app)
    lines = []
    for i, (unit, names) in enumerate(apps.items()):
        if unit not in node:  # a unit of another stack (gslb.unitStacks)
            node[unit] = f"e{i}"
            lines.append(f'  e{i}["{_label(unit, "<i>unit of another stack</i>")}"]')
        lines.append(f'  {ids[gslb]} -.->|"{", ".join(names)}"| {node[unit]}')
    return lines


def graphs(
    regs: Sequence[engine.Registration],
    by_urn: Mapping[str, engine.Registration],
    unit_of: Mapping[str, str],
    stack: config.StackConfig,
    outputs: Mapping[str, Any],
) -> dict[str, str]:
    """graph.mmd (components), graph/<unit>.mmd and graph/_stack.mmd (resources)."""
    per_unit: dict[str, list[engine.Registration]] = defaultdict(list)
    for reg in regs:
        per_unit[unit_of[reg.urn]].append(reg)
    roots = {r.name: r.urn for r in regs if r.type == "cpaas:unit:AtomicUnit"}
    files = {"graph.mmd": stack_graph(regs, by_urn, stack, wide_ips(stack, outputs, regs))}
    for unit, members in per_unit.items():
        files[f"graph/{unit}.mmd"] = resource_graph(members, by_urn, roots.get(unit, ""))
    return files


def over_limits(files: Mapping[str, str]) -> list[str]:
    """A note per graph that Mermaid's defaults (and so GitHub) will not draw."""
    notes = []
    for path, text in sorted(files.items()):
        edges = sum(1 for line in text.splitlines() if " --> " in line or " -.->" in line)
        if len(text) > MERMAID_MAX_TEXT or edges > MERMAID_MAX_EDGES:
            notes.append(
                f"`{path}` has {len(text)} characters and {edges} edges; Mermaid draws at most "
                f"{MERMAID_MAX_TEXT} and {MERMAID_MAX_EDGES} by default, so GitHub will not show it"
            )
    return notes
