"""Cross-field rules: what no single field can say, over one model or the whole stack.

A rule is a function of a parsed model that yields `Problem`s. A model lists its rules in
`checked_by`; `enforce` runs them after the fields parse and hands the problems to pydantic, and
`errors.format_validation_error` turns each into a `cpaas:<path>: <message>` line. A rule's
docstring is its one-line summary in docs/config.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    from components.config.models import (
        Access,
        AccessToken,
        AddressPlan,
        App,
        Bigip,
        BigipAccess,
        DnsDevice,
        Egress,
        Mesh,
        MultiCluster,
        Pki,
        SharedBigip,
        StackConfig,
        Unit,
        Waf,
        WideIp,
    )

# The pydantic error type that carries Problems (in its context, under "problems").
RULE_ERROR = "cpaas_rule"


@dataclass(frozen=True)
class Problem:
    """What a rule refuses: where (a config path relative to the model the rule checks), the
    value, what is wrong or allowed, and the fix. Any part but the path may be empty."""

    path: str
    value: str
    allowed: str
    fix: str

    @property
    def message(self) -> str:
        head = " ".join(part for part in (self.value, self.allowed) if part)
        return "; ".join(part for part in (head, self.fix) if part)

    def at(self, base: str) -> str:
        """This problem's path below the config path `base` of the model it is about."""
        if not base or not self.path:
            return base or self.path
        return f"{base}{self.path}" if self.path.startswith("[") else f"{base}.{self.path}"


Rule = Callable[[Any], Iterable[Problem]]
M = TypeVar("M")


def enforce(model: M, rules: tuple[Rule, ...], every: bool) -> M:
    """Run `rules` over `model`: raise the first problem (or, with `every`, all of them) as one
    pydantic error that errors.format_validation_error expands, else return the model."""
    if not rules:
        return model
    found = (problem for rule in rules for problem in rule(model))
    problems = tuple(found) if every else tuple(islice(found, 1))
    _refuse(problems)
    return model


def _refuse(problems: tuple[Problem, ...]) -> None:
    if problems:
        text = "\n".join(f"{p.path}: {p.message}" if p.path else p.message for p in problems)
        raise PydanticCustomError(RULE_ERROR, "{text}", {"text": text, "problems": problems})


def enforce_merge(data: Any, device_keys: tuple[str, ...]) -> Any:
    """A unit whose bigip names a device of bigipDevices takes that device's keys (`device_keys`,
    and its first VLAN unless the unit names one); refused when the device is unknown or the unit
    sets one of those keys itself; vlan and selfIps default to the device's first VLAN and all its
    self IPs. Runs on the raw stack, before the fields parse."""
    if not isinstance(data, Mapping) or not isinstance(data.get("units"), list | tuple):
        return data
    declared = data.get("bigipDevices", data.get("bigip_devices"))
    devices = [d for d in declared if isinstance(d, Mapping)] if isinstance(declared, list | tuple) else []
    by_name = {str(d.get("name")): (k, d) for k, d in reversed(list(enumerate(devices)))}
    problems: list[Problem] = []
    units: list[Any] = []
    for i, unit in enumerate(data["units"]):
        bigip = unit.get("bigip") if isinstance(unit, Mapping) else None
        if not isinstance(bigip, Mapping) or "device" not in bigip:
            units.append(unit)
            continue
        found = by_name.get(str(bigip["device"]))
        if found is None:
            known = ", ".join(sorted(by_name)) or "none"
            problems.append(
                Problem(
                    path("units", i, "bigip", "device"),
                    str(bigip["device"]),
                    f"is not a device of bigipDevices (known: {known})",
                    "declare the BIG-IP under cpaas:bigipDevices or name one of those",
                )
            )
            units.append(unit)
            continue
        k, device = found
        problems += [
            Problem(
                path("units", i, "bigip", key),
                "",
                f"is declared by bigipDevices[{k}] ({bigip['device']}), the device this unit names",
                "remove it here; a unit on a shared device takes it from the device",
            )
            for key in device_keys
            if key in bigip
        ]
        vlans = device.get("vlans")
        defaults = {"vlan": vlans[0]} if isinstance(vlans, list | tuple) and vlans else {}
        if "selfIps" in device:
            defaults["selfIps"] = device["selfIps"]
        merged = {**{key: device[key] for key in device_keys if key in device}, **defaults, **bigip}
        units.append({**unit, "bigip": merged})
    _refuse(tuple(problems))
    return {**data, "units": units}


def path(*parts: str | int) -> str:
    """A config path from keys and list indexes: path("units", 1, "name") is units[1].name."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def snake(camel: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)


# ---------------------------------------------------------------------------------------------
# Rules over one model (the path is relative to it; the first problem is reported)
# ---------------------------------------------------------------------------------------------


def pki_lifetimes(pki: Pki) -> Iterator[Problem]:
    """A leaf must not outlive its intermediate, nor an intermediate a generated root."""
    if pki.leaf_validity_days > pki.intermediate_validity_days:
        yield Problem(
            "",
            f"leafValidityDays {pki.leaf_validity_days}",
            f"exceeds intermediateValidityDays {pki.intermediate_validity_days}",
            "a leaf must not outlive its issuer",
        )
    if pki.root.source == "generated" and pki.intermediate_validity_days > pki.root.validity_days:
        yield Problem(
            "",
            f"intermediateValidityDays {pki.intermediate_validity_days}",
            f"exceeds root.validityDays {pki.root.validity_days}",
            "shorten the intermediate",
        )


def istio_serves_v1_apis(mesh: Mesh) -> Iterator[Problem]:
    """istioVersion is 1.22 or later, the first Istio that serves the v1 APIs cpaas renders."""
    # We render networking/security/telemetry.istio.io/v1, which Istio serves from 1.22;
    # Aspen Mesh's last public builds are based on Istio 1.21.
    major, minor, _ = (int(p) for p in mesh.istio_version.split("."))
    if (major, minor) < (1, 22):
        yield Problem(
            "istioVersion",
            mesh.istio_version,
            "predates Istio 1.22, which first serves the v1 APIs cpaas renders (e.g. an Aspen Mesh "
            "1.21 build)",
            "use 1.22 or later",
        )


def trusted_cert_key_moved(data: Any) -> Iterator[Problem]:
    """trustedCertKey is gone: the certificate is a committed file named by trustedCertFile."""
    if isinstance(data, Mapping) and "trustedCertKey" in data:
        yield Problem(
            "trustedCertKey",
            "",
            "replaced by trustedCertFile",
            "commit the certificate (the value of that config key) as a PEM file and name its path "
            'in trustedCertFile, e.g. trust/prod/bigip-aws-syd.pem (README "The refresh model")',
        )


def tls_is_verified(access: BigipAccess) -> Iterator[Problem]:
    """trustedCertFile is set unless insecureSkipVerify is true: TLS to the management API is
    verified against the committed certificate."""
    if access.trusted_cert_file is None and not access.insecure_skip_verify:
        yield Problem(
            "trustedCertFile",
            "",
            "neither trustedCertFile nor insecureSkipVerify is set",
            "commit the BIG-IP's management certificate (PEM) and name its path here, e.g. "
            "trust/prod/bigip-aws-syd.pem (or, in dev only, insecureSkipVerify: true)",
        )


def partitions_differ(bigip: Bigip) -> Iterator[Problem]:
    """cisPartition and pulumiPartition differ: CIS owns its partition alone."""
    if bigip.cis_partition == bigip.pulumi_partition:
        yield Problem(
            "pulumiPartition",
            bigip.pulumi_partition,
            "is also cisPartition",
            "CIS owns its partition alone, so give Pulumi's objects another one",
        )


def egress_allow_entries(egress: Egress) -> Iterator[Problem]:
    """Each namespace is allowed once; a namespace's own snatAddress is in no other entry and not
    in the shared snatAddresses."""
    seen: set[str] = set()
    owners: dict[object, int] = {}
    for i, entry in enumerate(egress.allow):
        if entry.namespace in seen:
            yield Problem(
                path("allow", i, "namespace"), entry.namespace, "is listed twice", "merge the entries"
            )
        seen.add(entry.namespace)
        address = entry.snat_address
        if address is None:
            continue
        if address in egress.snat_addresses:
            yield Problem(
                path("allow", i, "snatAddress"),
                str(address),
                "is also in snatAddresses, the pool every namespace without its own address shares",
                f"remove it from snatAddresses so only {entry.namespace} leaves with it",
            )
        if address in owners:
            j = owners[address]
            yield Problem(
                path("allow", i, "snatAddress"),
                str(address),
                f"is already {egress.allow[j].namespace}'s (allow[{j}])",
                "give each namespace an address of its own, or drop snatAddress to share snatAddresses",
            )
        owners.setdefault(address, i)


def waf_has_one_source(waf: Waf) -> Iterator[Problem]:
    """A WAF sets exactly one of policy and template."""
    if (waf.policy is None) == (waf.template is None):
        yield Problem(
            "",
            "",
            "",
            "set exactly one of policy (an existing policy, e.g. /Common/bookinfo-waf) or "
            "template (create one, e.g. POLICY_TEMPLATE_RAPID_DEPLOYMENT)",
        )


def access_sources(access: Access) -> Iterator[Problem]:
    """Access sets exactly one of profile and import; perRequestPolicy goes with profile (an
    import brings its own); claim rules need a token."""
    if (access.profile is None) == (access.import_ is None):
        yield Problem(
            "",
            "",
            "",
            "set exactly one of profile (an existing access profile, e.g. /Common/azuread-oidc) or "
            "import (the identity team's export, by url)",
        )
    if access.per_request_policy is not None and access.profile is None:
        yield Problem(
            "perRequestPolicy",
            access.per_request_policy,
            "goes with profile",
            "an imported profile brings its per-request policy as import.perRequestPolicyUrl",
        )
    if access.require and access.token is None:
        yield Problem(
            "require",
            "",
            "claim rules without access.token",
            "the mesh reads claims from a token it verified, add token (issuer, jwksUri, audiences) "
            "or remove require",
        )


# Azure AD's v2.0 issuer, https://login.microsoftonline.com/<tenant>/v2.0, and an application
# (client) id. Ref: MicrosoftDocs/entra-docs docs/identity-platform/access-token-claims-reference.md
# (aud: in v2.0 tokens always the client ID of the API; iss: ends in /v2.0 for a v2.0 token)
_AZURE_V2_ISSUER = re.compile(r"https://login\.microsoftonline\.com/[^/]+/v2\.0/?")
_CLIENT_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def azure_v2_audiences(token: AccessToken) -> Iterator[Problem]:
    """An Azure AD v2.0 issuer's tokens carry the API's client id (a GUID) as aud, never an App ID
    URI such as api://portal, so every audience of that issuer is a GUID."""
    if not _AZURE_V2_ISSUER.fullmatch(token.issuer):
        return
    for k, audience in enumerate(token.audiences):
        if not _CLIENT_ID.fullmatch(audience):
            yield Problem(
                f"audiences[{k}]",
                audience,
                "is not a client id (GUID), and a v2.0 token of the Azure AD issuer "
                "https://login.microsoftonline.com/<tenant>/v2.0 always carries the API's client id as aud",
                "use the API's application (client) id with accessTokenAcceptedVersion 2 in its "
                "manifest, or the v1 issuer https://sts.windows.net/<tenant>/",
            )


def app_kind_fields(app: App) -> Iterator[Problem]:
    """HTTP apps have an fqdn (the Host the BIG-IP matches); only HTTP apps have a waf or access;
    only http-mesh apps have a token, callers or sameNamespaceCalls; only tcp and udp apps have
    multiCluster."""
    if app.kind.startswith("http") and app.fqdn is None:
        yield Problem("fqdn", "", f"kind {app.kind} needs an fqdn (the Host the BIG-IP matches)", "")
    if app.waf is not None and not app.kind.startswith("http"):
        yield Problem("waf", "", "a WAF policy protects HTTP", f"kind {app.kind} cannot have one")
    if app.multi_cluster is not None and app.kind.startswith("http"):
        yield Problem(
            "multiCluster",
            "",
            f"kind {app.kind} with multiCluster",
            "multi-cluster apps are tcp or udp (their pool is the app's Service in each cluster); HTTP "
            "apps would need their routes in every peer, which cpaas does not build",
        )
    if app.access is not None and not app.kind.startswith("http"):
        yield Problem("access", "", "an access profile protects HTTP", f"kind {app.kind} cannot have one")
    if app.kind == "http-mesh":
        return
    if app.access is not None and app.access.token is not None:
        yield Problem(
            "access.token",
            "",
            f"kind {app.kind} is outside the mesh, which verifies the token",
            "use kind http-mesh or remove token (APM alone then guards the app)",
        )
    for key, set_ in (("callers", bool(app.callers)), ("sameNamespaceCalls", app.same_namespace_calls)):
        if set_:
            yield Problem(
                key,
                "",
                f"kind {app.kind} is not called in the mesh",
                "callers and sameNamespaceCalls are for http-mesh apps",
            )


def multi_cluster_weights(multi: MultiCluster) -> Iterator[Problem]:
    """mode ratio gives weight and every peer's weight; active-active gives none (equal shares)."""
    weighted = [("weight", multi.weight)] + [
        (path("peers", k, "weight"), p.weight) for k, p in enumerate(multi.peers)
    ]
    for where, weight in weighted:
        if multi.mode == "ratio" and weight is None:
            yield Problem(where, "", "is missing for mode ratio", "give every cluster its weight (0-100)")
        if multi.mode == "active-active" and weight is not None:
            yield Problem(
                where,
                str(weight),
                "is set for mode active-active, which shares equally",
                "remove it or use mode ratio",
            )


def listeners_distinct(device: DnsDevice) -> Iterator[Problem]:
    """Each DNS listener address is listed once."""
    seen: set[str] = set()
    for i, address in enumerate(device.listeners):
        if str(address) in seen:
            yield Problem(path("listeners", i), str(address), "is listed twice", "list each address once")
        seen.add(str(address))


def address_plan_ranges(plan: AddressPlan) -> Iterator[Problem]:
    """Prefixes are no wider than their blocks; site and service blocks are disjoint; bigipAsns is
    a [first, last] range."""
    if plan.site_prefix < plan.site_blocks.prefixlen:
        yield Problem(
            "sitePrefix", f"/{plan.site_prefix}", f"is wider than siteBlocks {plan.site_blocks}", ""
        )
    if plan.service_prefix < plan.service_blocks.prefixlen:
        yield Problem(
            "servicePrefix",
            f"/{plan.service_prefix}",
            f"is wider than serviceBlocks {plan.service_blocks}",
            "",
        )
    if plan.site_blocks.overlaps(plan.service_blocks):
        yield Problem(
            "serviceBlocks",
            str(plan.service_blocks),
            f"overlaps siteBlocks {plan.site_blocks}",
            "service CIDRs need their own range",
        )
    if plan.bigip_asns[0] > plan.bigip_asns[1]:
        yield Problem("bigipAsns", str(list(plan.bigip_asns)), "is not a [first, last] range", "")


# ---------------------------------------------------------------------------------------------
# Rules over the whole stack (paths from the stack's root; every problem is reported)
# ---------------------------------------------------------------------------------------------


def renewal_window_hours(validity_hours: int) -> int:
    """The last third of a certificate's life, in which an update renews it (pki.renewal_hours)."""
    return validity_hours // 3


_WEEK_HOURS = 7 * 24


def stack_shape(stack: StackConfig) -> Iterator[Problem]:
    """A stack has units (or, GSLB-only, unitStacks), and pki when it has units; a unit is in one
    stack only; with an addressPlan, every unit's pod and node CIDRs lie in siteBlocks and its
    service CIDR in serviceBlocks."""
    remote = stack.gslb.unit_stacks if stack.gslb else {}
    if not stack.units and not remote:
        yield Problem("units", "", "no units", "a stack needs at least one unit under cpaas:units")
    if stack.units and stack.pki is None:
        yield Problem("pki", "", "required key is missing", "a stack with units needs the org PKI")
    for name in remote:
        if any(u.name == name for u in stack.units):
            yield Problem(
                path("gslb", "unitStacks", name),
                name,
                "is also a unit of this stack",
                "a unit is deployed by one stack only",
            )
    if stack.address_plan is not None:
        yield from _inside_address_plan(stack, stack.address_plan)


def _inside_address_plan(stack: StackConfig, plan: AddressPlan) -> Iterator[Problem]:
    for i, unit in enumerate(stack.units):
        for field in ("podCidr", "nodeCidr"):
            net: IPv4Network = getattr(unit.network, snake(field))
            if not net.subnet_of(plan.site_blocks):
                yield Problem(
                    path("units", i, "network", field),
                    str(net),
                    f"is outside addressPlan.siteBlocks {plan.site_blocks}",
                    "move it inside or widen the plan",
                )
        if not unit.network.service_cidr.subnet_of(plan.service_blocks):
            yield Problem(
                path("units", i, "network", "serviceCidr"),
                str(unit.network.service_cidr),
                f"is outside addressPlan.serviceBlocks {plan.service_blocks}",
                "move it inside or widen the plan",
            )


def renewal_fits_the_schedule(stack: StackConfig) -> Iterator[Problem]:
    """Outside dev, the renewal window (the last third of an intermediate's or leaf's life) is at
    least the week between the deploy workflow's scheduled runs."""
    if stack.pki is None or stack.environment == "dev":
        return
    for field in ("intermediateValidityDays", "leafValidityDays"):
        days: int = getattr(stack.pki, snake(field))
        window = renewal_window_hours(days * 24)
        if window < _WEEK_HOURS:
            yield Problem(
                path("pki", field),
                f"{days} days",
                f"leaves a renewal window of {window // 24} days (the last third of the life), shorter "
                "than the week between scheduled deploys",
                "use 21 or more",
            )


def unit_names_unique(stack: StackConfig) -> Iterator[Problem]:
    """Unit names are unique (they key every resource)."""
    first: dict[str, int] = {}
    for i, unit in enumerate(stack.units):
        if unit.name in first:
            yield Problem(
                path("units", i, "name"),
                unit.name,
                f"duplicates units[{first[unit.name]}]",
                "unit names must be unique (they key every resource), rename one",
            )
        else:
            first[unit.name] = i


def cidrs_disjoint(stack: StackConfig) -> Iterator[Problem]:
    """Pod, service and node CIDRs never overlap across units."""
    # Across units only; unit_network reports overlaps inside one unit.
    seen: list[tuple[IPv4Network, str, str]] = []
    for i, unit in enumerate(stack.units):
        mine: list[tuple[IPv4Network, str, str]] = []
        for field in ("podCidr", "serviceCidr", "nodeCidr"):
            net: IPv4Network = getattr(unit.network, snake(field))
            where = path("units", i, "network", field)
            for other, other_where, owner in seen:
                if net.overlaps(other):
                    yield Problem(
                        where, str(net), f"overlaps {other_where} ({owner}: {other})", "use a disjoint range"
                    )
                    break
            mine.append((net, where, unit.name))
        seen.extend(mine)


def partitions_unique(stack: StackConfig) -> Iterator[Problem]:
    """BIG-IP partitions (CIS's, Pulumi's and the GSLB's) are unique across the stack."""
    owners: dict[str, str] = {}
    if stack.gslb is not None:
        owners[stack.gslb.dns_device.partition.lower()] = "gslb.dnsDevice.partition"
    for i, unit in enumerate(stack.units):
        if unit.bigip is None:
            continue
        for field in ("cisPartition", "pulumiPartition"):
            name = getattr(unit.bigip, snake(field))
            where = path("units", i, "bigip", field)
            if name.lower() in owners:
                yield Problem(
                    where,
                    name,
                    f"is already used by {owners[name.lower()]}",
                    "BIG-IP partitions must be unique across the stack, e.g. prefix them with the unit name",
                )
            else:
                owners[name.lower()] = where


# A listener on a BIG-IP: (device, owning partition, config path, address, port, protocol).
Listener = tuple[str, str, str, IPv4Address, int, str]


def _listeners(stack: StackConfig) -> Iterator[Listener]:
    for i, unit in enumerate(stack.units):
        if unit.bigip is None:
            continue
        device = str(unit.bigip.management_address)
        for j, app in enumerate(unit.apps):
            proto = "udp" if app.kind == "udp" else "tcp"
            yield (
                device,
                unit.bigip.cis_partition,
                path("units", i, "apps", j, "vip"),
                app.vip,
                app.port,
                proto,
            )
        if unit.egress is not None:
            where = path("units", i, "egress", "vip")
            yield device, unit.bigip.pulumi_partition, where, unit.egress.vip, unit.egress.port, "tcp"
    if stack.gslb is not None:
        dns = stack.gslb.dns_device
        for k, address in enumerate(dns.listeners):
            for proto in ("udp", "tcp"):
                where = path("gslb", "dnsDevice", "listeners", k)
                yield str(dns.management_address), dns.partition, where, address, 53, proto


def virtual_addresses(stack: StackConfig) -> Iterator[Problem]:
    """On each BIG-IP (units with the same managementAddress share one), a virtual address belongs
    to one partition: CIS's virtual servers, the egress virtual server, other units' virtual servers
    and the GSLB listeners never share one, on any port; each address:port/protocol is used once."""
    owners: dict[tuple[str, str], tuple[str, str]] = {}
    taken: dict[tuple[str, str, int, str], str] = {}
    refused: set[str] = set()  # a DNS listener is two listeners (UDP, TCP) at one path
    for device, partition, where, vip, port, proto in _listeners(stack):
        owner, first = owners.setdefault((device, str(vip)), (partition, where))
        if owner != partition:
            if where in refused:
                continue
            refused.add(where)
            yield Problem(
                where,
                str(vip),
                f"is already a virtual address of partition {owner} ({first}) on BIG-IP {device}",
                "a virtual address belongs to one partition, give this virtual server another address",
            )
            continue
        key = (device, str(vip), port, proto)
        if key in taken:
            yield Problem(
                where,
                f"{vip}:{port}/{proto}",
                f"is already used by {taken[key]} on BIG-IP {device}",
                "give each virtual server its own address or port",
            )
        else:
            taken[key] = where


def one_bgp_unit_per_bigip(stack: StackConfig) -> Iterator[Problem]:
    """Two calico-bgp units share a BIG-IP only as units of one device of bigipDevices: it runs
    one BGP instance per route domain, with a peer group per unit (cloud-native units may share
    one, within these rules)."""
    first: dict[str, tuple[int, str]] = {}
    for i, unit in enumerate(stack.units):
        if unit.bigip is None or not unit.uses_calico:
            continue
        device = str(unit.bigip.management_address)
        if device in first:
            k, name = first[device]
            other = stack.units[k].bigip
            if unit.bigip.device is not None and other is not None and unit.bigip.device == other.device:
                continue  # one shared device: one BGP instance, a peer group per unit
            yield Problem(
                path("units", i, "bigip", "managementAddress"),
                device,
                f"is also the BIG-IP of units[{k}] ({name}), and both units peer BGP with Calico",
                "a BIG-IP runs one BGP instance per route domain, so declare it once under "
                "cpaas:bigipDevices and name it in both units' bigip.device",
            )
        else:
            first[device] = (i, unit.name)


def route_domain_zero(device: SharedBigip) -> Iterator[Problem]:
    """Only route domain 0: cpaas puts pools, virtual servers and egress objects there, so a BGP
    instance in another would route the pods where no pool member is."""
    if device.route_domain != 0:
        yield Problem(
            "routeDomain",
            str(device.route_domain),
            "is not supported yet",
            "cpaas puts the pools, virtual servers and egress objects in route domain 0, so its BGP "
            "instance must be there too: set 0 or remove it",
        )


def shared_devices(stack: StackConfig) -> Iterator[Problem]:
    """Devices of bigipDevices have unique names and management addresses, no unit declares one of
    them inline, each is named by a unit, and a unit's vlan and selfIps are the device's."""
    names: dict[str, int] = {}
    addresses: dict[str, str] = {}
    for k, device in enumerate(stack.bigip_devices):
        where = path("bigipDevices", k)
        if device.name in names:
            yield Problem(
                f"{where}.name", device.name, f"duplicates bigipDevices[{names[device.name]}]", "rename one"
            )
        names.setdefault(device.name, k)
        address = str(device.management_address)
        if address in addresses:
            yield Problem(
                f"{where}.managementAddress",
                address,
                f"is also {addresses[address]}",
                "declare each BIG-IP once",
            )
        addresses.setdefault(address, f"bigipDevices[{k}] ({device.name})")
        if not stack.units_on(device.name):
            yield Problem(
                f"{where}.name",
                device.name,
                "is named by no unit",
                "name it in units[].bigip.device or remove it",
            )
    for i, unit in enumerate(stack.units):
        yield from _on_device(stack, i, unit, addresses)


def _on_device(stack: StackConfig, i: int, unit: Unit, addresses: Mapping[str, str]) -> Iterator[Problem]:
    bigip = unit.bigip
    if bigip is None:
        return
    if bigip.device is None:
        address = str(bigip.management_address)
        if address in addresses:
            yield Problem(
                path("units", i, "bigip", "managementAddress"),
                address,
                f"is the BIG-IP {addresses[address]}",
                "name it in bigip.device instead of declaring it again",
            )
        return
    device = stack.device(bigip.device)
    if bigip.vlan not in device.vlans:
        yield Problem(
            path("units", i, "bigip", "vlan"),
            bigip.vlan,
            f"is not a VLAN of device {device.name} ({', '.join(device.vlans)})",
            "add it to the device's vlans or pick one of them",
        )
    for k, ip in enumerate(bigip.self_ips):
        if ip not in device.self_ips:
            yield Problem(
                path("units", i, "bigip", "selfIps", k),
                str(ip),
                f"is not a self IP of device {device.name}",
                "list the device's self IPs this cluster peers with, or drop selfIps to use them all",
            )


def snat_addresses(stack: StackConfig) -> Iterator[Problem]:
    """On each BIG-IP, an egress SNAT address belongs to one unit and is no virtual address or
    self IP there."""
    owners: dict[tuple[str, str], str] = {}
    for device, _, where, vip, _, _ in _listeners(stack):
        owners.setdefault((device, str(vip)), where)
    for i, unit in enumerate(stack.units):
        if unit.bigip is None or unit.egress is None:
            continue
        device = str(unit.bigip.management_address)
        for ip in unit.bigip.self_ips:
            owners.setdefault((device, str(ip)), f"a self IP of units[{i}]")
        for where, address in _snats(i, unit.egress):
            key = (device, str(address))
            first = owners.setdefault(key, where)
            if first != where:
                yield Problem(
                    where,
                    str(address),
                    f"is already {first} on BIG-IP {device}",
                    "give each unit's egress SNAT addresses of their own",
                )


def _snats(i: int, egress: Egress) -> Iterator[tuple[str, IPv4Address]]:
    for k, address in enumerate(egress.snat_addresses):
        yield path("units", i, "egress", "snatAddresses", k), address
    for k, entry in enumerate(egress.allow):
        if entry.snat_address is not None:
            yield path("units", i, "egress", "allow", k, "snatAddress"), entry.snat_address


def multi_cluster_peers(stack: StackConfig) -> Iterator[Problem]:
    """A multi-cluster app's peers are other units of the stack, each once, behind the same shared
    device as the app's unit, with a kubeconfig cluster (its kubeconfig becomes a Secret that
    CIS reads)."""
    for i, unit in enumerate(stack.units):
        for j, app in enumerate(unit.apps):
            if app.multi_cluster is not None:
                yield from _peers(stack, path("units", i, "apps", j, "multiCluster"), unit, app)


def _peers(stack: StackConfig, where: str, unit: Unit, app: App) -> Iterator[Problem]:
    multi = app.multi_cluster
    if multi is None:
        return
    device = unit.bigip.device if unit.bigip else None
    seen: set[str] = set()
    for k, peer in enumerate(multi.peers):
        at = f"{where}.peers[{k}].unit"
        other = next((u for u in stack.units if u.name == peer.unit), None)
        if peer.unit == unit.name or peer.unit in seen or other is None:
            what = (
                "is this app's own unit"
                if peer.unit == unit.name
                else ("is listed twice" if peer.unit in seen else "is not a unit of this stack")
            )
            yield Problem(at, peer.unit, what, "list each other unit that serves the app once")
        elif device is None or other.bigip is None or other.bigip.device != device:
            yield Problem(
                at,
                peer.unit,
                f"is not behind this unit's shared device ({device or 'none: bigip.device is unset'})",
                "one virtual server reaches the pods of clusters whose BIG-IP is that device; name "
                "the same bigipDevices entry in both units' bigip.device",
            )
        elif other.cluster.source != "kubeconfig":
            yield Problem(
                at,
                peer.unit,
                f"has a {other.cluster.source} cluster",
                "CIS reads a peer through a kubeconfig Secret made from its kubeconfigSecret, so "
                "the peer needs cluster.source kubeconfig",
            )
        elif getattr(other.cluster, "cis_kubeconfig_secret", None) is None:
            yield Problem(
                at,
                peer.unit,
                "has no cluster.cisKubeconfigSecret",
                "name the secret config key holding a kubeconfig of a read-only ServiceAccount of that "
                "cluster for CIS (docs/bigip.md), never the deployer's own",
            )
        elif app.namespace in other.mesh.injected_namespaces:
            yield Problem(
                at,
                peer.unit,
                f"injects namespace {app.namespace} into its mesh (STRICT mTLS)",
                f"the BIG-IP sends plain L4 to the pods, so keep {app.namespace} out of that unit's "
                "mesh.injectedNamespaces",
            )
        seen.add(peer.unit)


def forward_proxy_nodes(stack: StackConfig) -> Iterator[Problem]:
    """A node address belongs to one partition: a forward proxy is never inside a pod CIDR on its
    BIG-IP (CIS makes nodes of pod IPs) nor another unit's forward proxy there."""
    proxies: dict[tuple[str, str], tuple[str, str]] = {}
    for i, unit in enumerate(stack.units):
        if unit.bigip is None or unit.egress is None:
            continue
        device, address = str(unit.bigip.management_address), unit.egress.forward_proxy.address
        where = path("units", i, "egress", "forwardProxy", "address")
        in_pods = _pod_owner(stack, device, address)
        partition, first = proxies.setdefault((device, str(address)), (unit.bigip.pulumi_partition, where))
        if in_pods is not None:
            pod_where, net, cis = in_pods
            yield Problem(
                where,
                str(address),
                f"is inside {pod_where} {net}, whose pod IPs CIS makes nodes of in partition {cis} on "
                f"BIG-IP {device}",
                "a node address belongs to one partition, so the forward proxy needs an address "
                "outside the pod CIDRs",
            )
        elif first != where:
            yield Problem(
                where,
                str(address),
                f"is already a node of partition {partition} ({first}) on BIG-IP {device}",
                "a node address belongs to one partition, use another forward proxy address or "
                "another BIG-IP",
            )


def _pod_owner(stack: StackConfig, device: str, address: IPv4Address) -> tuple[str, IPv4Network, str] | None:
    """(config path, pod CIDR, CIS partition) of the unit on `device` whose pods hold `address`."""
    for i, unit in enumerate(stack.units):
        bigip = unit.bigip
        if bigip is not None and str(bigip.management_address) == device and address in unit.network.pod_cidr:
            return path("units", i, "network", "podCidr"), unit.network.pod_cidr, bigip.cis_partition
    return None


def each_unit(stack: StackConfig) -> Iterator[Problem]:
    """Within each unit: its CIDRs are disjoint; a calico-bgp unit has a bigip (unless local) whose
    ASN differs from the cluster's (the peering is eBGP) and lists its BGP neighbours inside nodeCidr,
    and Calico's blocks fit the pod CIDR; a k3d cluster is cloud local; insecureSkipVerify only in
    dev; egress needs a bigip; VIPs are not BIG-IP self IPs; app names are unique; http-mesh apps
    and egress allow-lists name injected namespaces; http-nginx apps name non-mesh namespaces that
    NGINX watches; tcp/udp apps name non-mesh namespaces (STRICT mTLS would refuse the BIG-IP's
    plain L4 traffic); app callers are in injected namespaces of the unit; access needs a bigip;
    sameNamespaceCalls never opens a namespace holding an app with a token."""
    for i, unit in enumerate(stack.units):
        yield from _one_unit(stack, i, unit)


def _one_unit(stack: StackConfig, i: int, unit: Unit) -> Iterator[Problem]:
    device = unit.bigip.device if unit.bigip else None
    k = next((k for k, d in enumerate(stack.bigip_devices) if d.name == device), None)
    yield from _unit_network(
        i, unit, path("units", i, "bigip", "asn") if k is None else path("bigipDevices", k, "asn")
    )
    if unit.is_local and unit.cloud != "local":
        yield Problem(
            path("units", i, "cloud"),
            unit.cloud,
            "with a k3d cluster",
            "k3d clusters are local, set cloud: local",
        )
    if unit.bigip is not None and unit.bigip.insecure_skip_verify and stack.environment != "dev":
        yield _insecure_outside_dev(path("units", i, "bigip", "insecureSkipVerify"), stack)
    if unit.egress is not None and unit.bigip is None:
        yield Problem(
            path("units", i, "egress"),
            "",
            "an egress gateway needs a bigip",
            "add units[].bigip or remove egress",
        )
    if unit.egress is not None and unit.bigip is not None and unit.egress.vip in unit.bigip.self_ips:
        yield Problem(
            path("units", i, "egress", "vip"),
            str(unit.egress.vip),
            "is a BIG-IP self IP",
            "virtual servers need their own address",
        )
    yield from _apps(i, unit)
    yield from _egress_allow(i, unit)


def _insecure_outside_dev(where: str, stack: StackConfig) -> Problem:
    return Problem(
        where,
        "true",
        f"in a {stack.environment} stack",
        "TLS verification may only be skipped in dev, set trustedCertFile instead",
    )


def _unit_network(i: int, unit: Unit, asn_path: str) -> Iterator[Problem]:
    """`asn_path`: where the unit's BIG-IP ASN is set (its own bigip, or its shared device)."""
    net = unit.network
    pairs = (("podCidr", net.pod_cidr), ("serviceCidr", net.service_cidr), ("nodeCidr", net.node_cidr))
    for a in range(len(pairs)):
        for b in range(a + 1, len(pairs)):
            if pairs[a][1].overlaps(pairs[b][1]):
                yield Problem(
                    path("units", i, "network", pairs[b][0]),
                    str(pairs[b][1]),
                    f"overlaps {pairs[a][0]} {pairs[a][1]} of the same unit",
                    "use a disjoint range",
                )
    cni = net.cni
    if cni.type != "calico-bgp":
        return
    if net.pod_cidr.prefixlen > cni.block_size:
        yield Problem(
            path("units", i, "network", "cni", "blockSize"),
            "",
            f"blocks of /{cni.block_size} are bigger than the pod CIDR {net.pod_cidr}",
            f"use blockSize {net.pod_cidr.prefixlen} or more, or widen podCidr",
        )
    if unit.bigip is None and not unit.is_local:
        yield Problem(
            path("units", i, "network", "cni"),
            "",
            "calico-bgp needs a bigip to peer with",
            "add units[].bigip or use cloud-native",
        )
    yield from _bgp_neighbors(i, unit)
    if unit.bigip is not None and unit.bigip.asn == cni.asn:
        yield Problem(
            asn_path,
            str(unit.bigip.asn),
            "equals the cluster's ASN" + (f" of units[{i}] ({unit.name})" if unit.bigip.device else ""),
            "the Calico peering is eBGP, so give the BIG-IP its own private ASN (64512-65534)",
        )


def _bgp_neighbors(i: int, unit: Unit) -> Iterator[Problem]:
    if unit.bigip is not None and not unit.bigip.bgp_neighbors:
        yield Problem(
            path("units", i, "bigip", "bgpNeighbors"),
            "",
            "empty for a calico-bgp unit",
            "list the node IPs the BIG-IP peers with",
        )
    for k, ip in enumerate(unit.bigip.bgp_neighbors if unit.bigip else ()):
        if ip not in unit.network.node_cidr:
            yield Problem(
                path("units", i, "bigip", "bgpNeighbors", k),
                str(ip),
                f"is outside nodeCidr {unit.network.node_cidr}",
                "BGP neighbours are cluster nodes",
            )


def _apps(i: int, unit: Unit) -> Iterator[Problem]:
    names: dict[str, int] = {}
    self_ips = unit.bigip.self_ips if unit.bigip else ()
    for j, app in enumerate(unit.apps):
        if app.name in names:
            yield Problem(
                path("units", i, "apps", j, "name"),
                app.name,
                f"duplicates apps[{names[app.name]}]",
                "app names are unique per unit",
            )
        names.setdefault(app.name, j)
        yield from _app_namespace(i, j, unit, app)
        yield from _app_access(i, j, unit, app)
        if app.vip in self_ips:
            yield Problem(
                path("units", i, "apps", j, "vip"),
                str(app.vip),
                "is a BIG-IP self IP",
                "virtual servers need their own address",
            )


def _app_namespace(i: int, j: int, unit: Unit, app: App) -> Iterator[Problem]:
    injected = set(unit.mesh.injected_namespaces)
    where = path("units", i, "apps", j, "namespace")
    if app.kind == "http-mesh" and app.namespace not in injected:
        yield Problem(
            where,
            app.namespace,
            "is not in mesh.injectedNamespaces",
            "an http-mesh app must run in the mesh, add the namespace there or use kind http-nginx",
        )
    if app.kind in ("tcp", "udp") and app.namespace in injected:
        yield Problem(
            where,
            app.namespace,
            "is a mesh namespace with STRICT mTLS",
            f"the BIG-IP sends {app.kind} straight to the pods without it, so put L4 apps in a "
            "non-mesh namespace",
        )
    if app.kind != "http-nginx":
        return
    if not unit.nginx.enabled:
        yield Problem(
            path("units", i, "apps", j, "kind"),
            "",
            "http-nginx while nginx.enabled is false",
            "enable NGINX or change the kind",
        )
    if app.namespace in injected:
        yield Problem(
            where,
            app.namespace,
            "is a mesh namespace",
            "http-nginx apps serve non-mesh namespaces, use kind http-mesh",
        )
    elif unit.nginx.namespaces and app.namespace not in unit.nginx.namespaces:
        yield Problem(
            where,
            app.namespace,
            "is not in nginx.namespaces, the namespaces NGINX watches",
            "add it there",
        )


def _app_access(i: int, j: int, unit: Unit, app: App) -> Iterator[Problem]:
    injected = set(unit.mesh.injected_namespaces)
    for k, caller in enumerate(app.callers):
        if caller.namespace not in injected:
            yield Problem(
                path("units", i, "apps", j, "callers", k, "namespace"),
                caller.namespace,
                f"is not in mesh.injectedNamespaces of unit {unit.name}",
                "only mesh workloads of the unit carry a SPIFFE identity the app can trust, add the "
                "namespace there or remove the caller",
            )
    if app.access is not None and unit.bigip is None:
        yield Problem(
            path("units", i, "apps", j, "access"),
            "",
            "an access profile runs on the unit's BIG-IP, and this unit has no bigip",
            "add units[].bigip or remove access",
        )
    yield from _named_like_an_import(i, j, unit, app)
    yield from _same_namespace_beside_a_token(i, j, unit, app)


def _same_namespace_beside_a_token(i: int, j: int, unit: Unit, app: App) -> Iterator[Problem]:
    """sameNamespaceCalls would let the namespace's workloads call its token apps without a token."""
    if app.same_namespace_calls and app.kind == "http-mesh":
        tokened = [
            a.name
            for a in unit.apps
            if a.namespace == app.namespace and a.access is not None and a.access.token is not None
        ]
        if tokened:
            yield Problem(
                path("units", i, "apps", j, "sameNamespaceCalls"),
                "true",
                f"opens namespace {app.namespace} to its own workloads, which could then call "
                f"{', '.join(tokened)} without a token",
                "give the app with a token a namespace of its own, or list callers instead",
            )


def imported_access_name(unit: str, app: str, part: str) -> str:
    """The name an imported access profile (`access`) or per-request policy (`prp`) gets in /Common
    (components/bigip/access.py names them so)."""
    return f"cpaas-{unit}-{app}-{part}"


def _named_like_an_import(i: int, j: int, unit: Unit, app: App) -> Iterator[Problem]:
    """An existing profile or per-request policy must not take the name an import of the unit gets
    (/Common/cpaas-<unit>-<app>-access, -prp; components/bigip/access.py): APM's import would then
    add a counter to the imported name, and the VirtualServer would name the other object."""
    if app.access is None:
        return
    imports = {
        f"/Common/{imported_access_name(unit.name, a.name, suffix)}": (k, a.name)
        for k, a in enumerate(unit.apps)
        if a.access is not None and a.access.import_ is not None
        for suffix in ("access", "prp")
    }
    for field, value in (
        ("profile", app.access.profile),
        ("perRequestPolicy", app.access.per_request_policy),
    ):
        if value in imports:
            k, name = imports[value]
            yield Problem(
                path("units", i, "apps", j, "access", field),
                value,
                f"is the name cpaas imports apps[{k}] ({name}) as",
                "name another existing profile, or import this one under its own app",
            )


def _egress_allow(i: int, unit: Unit) -> Iterator[Problem]:
    if unit.egress is None:
        return
    injected = set(unit.mesh.injected_namespaces)
    for k, entry in enumerate(unit.egress.allow):
        if entry.namespace not in injected:
            yield Problem(
                path("units", i, "egress", "allow", k, "namespace"),
                entry.namespace,
                "is not in mesh.injectedNamespaces",
                "only mesh workloads carry a SPIFFE identity, add the namespace there",
            )


def access_imports_per_bigip(stack: StackConfig) -> Iterator[Problem]:
    """An AS3 declaration owns /Common/Shared on its BIG-IP: access profiles are imported for one
    unit per BIG-IP, and not on the GSLB DNS device."""
    owners: dict[str, str] = {}
    if stack.gslb is not None:
        owners[str(stack.gslb.dns_device.management_address)] = "the GSLB declaration (gslb.dnsDevice)"
    for i, unit in enumerate(stack.units):
        imports = [j for j, a in enumerate(unit.apps) if a.access is not None and a.access.import_]
        if unit.bigip is None or not imports:
            continue
        device = str(unit.bigip.management_address)
        if device in owners:
            yield Problem(
                path("units", i, "apps", imports[0], "access", "import"),
                "",
                f"would share /Common/Shared on BIG-IP {device} with {owners[device]}",
                "AS3 replaces that folder with each declaration, so import for one unit per BIG-IP "
                "or name the profile with access.profile",
            )
        else:
            owners[device] = f"units[{i}] ({unit.name})"


def gslb_references(stack: StackConfig) -> Iterator[Problem]:
    """GSLB names only units of the stack (or of unitStacks) and apps they serve: one wide IP per
    app, every unit a wide IP names (in units, ratios, lastResortUnit, topology) serves its app,
    with one FQDN across units and a bigip; lbMode ratio has ratios and topology has records; an
    http(s) monitor of an app behind APM expects APM's redirect or any answer; the DNS device skips
    TLS verification only in dev."""
    if stack.gslb is None:
        return
    if stack.gslb.dns_device.insecure_skip_verify and stack.environment != "dev":
        yield _insecure_outside_dev(path("gslb", "dnsDevice", "insecureSkipVerify"), stack)
    seen_apps: dict[str, int] = {}
    for w, wide in enumerate(stack.gslb.wide_ips):
        if wide.app in seen_apps:
            yield Problem(
                path("gslb", "wideIps", w, "app"),
                wide.app,
                f"already has wideIps[{seen_apps[wide.app]}]",
                "one wide IP per app",
            )
        seen_apps.setdefault(wide.app, w)
        yield from _wide_ip_units(stack, w, wide)
        yield from _wide_ip_app(stack, w, wide)
        yield from _wide_ip_monitor_behind_apm(stack, w, wide)


# What an http(s) monitor may expect from an app behind APM: its redirect, or AS3's default
# receive 'HTTP/1.' (any answer). Ref: F5Networks/f5-appsvcs-extension@v3.56.0
# schema/3.56.0/as3-schema.json (GSLB_Monitor_HTTP receive, default "HTTP/1.")
_ANY_ANSWER = ("HTTP/1.", "HTTP/1.0", "HTTP/1.1")


def _wide_ip_monitor_behind_apm(stack: StackConfig, w: int, wide: WideIp) -> Iterator[Problem]:
    monitor = wide.monitor
    if monitor.type == "tcp" or monitor.receive is None:
        return
    if monitor.receive in _ANY_ANSWER or "302" in monitor.receive:
        return
    if not any(a.name == wide.app and a.access is not None for u in stack.units for a in u.apps):
        return
    yield Problem(
        path("gslb", "wideIps", w, "monitor", "receive"),
        repr(monitor.receive),
        f"expects the app's own answer, but app {wide.app} has access: APM answers a probe without "
        "a session with a redirect (302) to its logon page, so every unit would be marked down",
        "expect the redirect (receive 'HTTP/1.1 302'), unset receive (AS3's default 'HTTP/1.' takes "
        "any answer) or use type tcp",
    )


def _named_units(w: int, wide: WideIp) -> list[tuple[str, str]]:
    """(config path, unit name) of every unit wide IP `w` names."""
    base = ("gslb", "wideIps", w)
    named = [(path(*base, "units", k), name) for k, name in enumerate(wide.units)]
    named += [(path(*base, "ratios", name), name) for name in wide.ratios]
    if wide.last_resort_unit is not None:
        named.append((path(*base, "lastResortUnit"), wide.last_resort_unit))
    named += [(path(*base, "topology", k, "unit"), r.unit) for k, r in enumerate(wide.topology)]
    return named


def _wide_ip_units(stack: StackConfig, w: int, wide: WideIp) -> Iterator[Problem]:
    by_name: set[str] = {u.name for u in stack.units} | set(stack.gslb.unit_stacks if stack.gslb else {})
    known = ", ".join(sorted(by_name))
    for where, name in _named_units(w, wide):
        if name not in by_name:
            yield Problem(where, name, "is not a unit of this stack", f"known units: {known}")
    if wide.lb_mode == "ratio" and not wide.ratios:
        yield _lb_mode_needs(w, "ratio", "ratios", "ratios per unit, e.g. {aws-syd: 2, azure-mel: 1}")
    if wide.lb_mode == "topology" and not wide.topology:
        what = "topology records, e.g. [{ldnsSubnet: 10.0.0.0/8, unit: onprem-syd}]"
        yield _lb_mode_needs(w, "topology", "topology", what)


def _lb_mode_needs(w: int, mode: str, key: str, what: str) -> Problem:
    return Problem(path("gslb", "wideIps", w, key), "", f"lbMode {mode} needs {what}", "")


def _wide_ip_app(stack: StackConfig, w: int, wide: WideIp) -> Iterator[Problem]:
    where = path("gslb", "wideIps", w, "app")
    serving = [u for u in stack.units if any(a.name == wide.app for a in u.apps)]
    if stack.gslb is not None and stack.gslb.unit_stacks:
        return  # units of other stacks: their apps are checked when their outputs resolve
    if not serving:
        yield Problem(
            where, wide.app, "is not an app of any unit", "add it to units[].apps or remove the wide IP"
        )
        return
    serving_names = {u.name for u in serving}
    all_names = {u.name for u in stack.units}
    for where_unit, name in _named_units(w, wide):
        if name in all_names and name not in serving_names:
            yield Problem(
                where_unit, name, f"does not serve {wide.app}", "add the app to that unit or drop it here"
            )
    apps = [(u, a) for u in serving for a in u.apps if a.name == wide.app]
    missing = [u.name for u, a in apps if a.fqdn is None]
    fqdns = sorted({str(a.fqdn) for _, a in apps if a.fqdn})
    if missing:
        yield Problem(
            where,
            wide.app,
            f"has no fqdn in unit(s) {', '.join(missing)}",
            "a wide IP answers for the app's FQDN, set apps[].fqdn there",
        )
    elif len(fqdns) > 1:
        yield Problem(
            where,
            wide.app,
            f"has different FQDNs across units ({', '.join(fqdns)})",
            "a wide IP needs one, give the app the same fqdn in every unit",
        )
    for u in serving:
        if u.bigip is None:
            yield Problem(
                where,
                wide.app,
                f"is served by unit {u.name}, which has no bigip",
                "GSLB needs a BIG-IP virtual server per unit",
            )


# The stack-wide rules, in the order their problems are reported.
STACK_RULES: tuple[Rule, ...] = (
    stack_shape,
    renewal_fits_the_schedule,
    unit_names_unique,
    cidrs_disjoint,
    partitions_unique,
    virtual_addresses,
    one_bgp_unit_per_bigip,
    shared_devices,
    snat_addresses,
    multi_cluster_peers,
    forward_proxy_nodes,
    each_unit,
    access_imports_per_bigip,
    gslb_references,
)
