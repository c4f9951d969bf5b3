"""F5 DNS (GSLB) across units: one AS3 declaration on the DNS device, fed by typed unit references.

pulumi-f5bigip 3.25.1's `GtmWideip` cannot attach pools (research/f5bigip.md §3), so a wide IP
made with it would answer from nothing. Instead one `f5bigip.As3` resource posts AS3's GSLB
classes, which attach pools to every wide IP in the same declaration:

- `/Common/Shared` (tenant `Common`, application `Shared`, template `shared`): one
  GSLB_Data_Center and one GSLB_Server per unit, and the GSLB_Topology_Records. AS3 places data
  centers and servers in /Common (a GSLB_Server must always be in /Common/Shared), and topology
  records are device-global. AS3 reaches `Common` only through `/Common/Shared`.
  Ref: https://github.com/F5Networks/f5-appsvcs-extension/blob/main/docs/declarations/gslb.rst
- the GSLB tenant (`gslb.dnsDevice.partition`, never a CIS partition): one Application per wide
  IP holding its GSLB_Domain, GSLB_Pool (one member per serving unit), last-resort pool and
  GSLB_Monitor.

Both tenants go in one declaration on purpose: AS3 applies `Common` first without deletes, then
the other tenants, then `Common` again with deletes, so removing a unit drops its pool members
before its server and data center (AS3 src/lib/fetch.js `tenantList`, "config in /Common must be
created first and deleted last").

Units never depend on each other, and the As3 resource depends on no unit resource: it reads
`UnitRef`s, plain values taken from the config (or from unit stacks' `gslbRefs` outputs), never a
unit resource's outputs. A unit whose resources fail therefore holds back nothing here; AS3 on
the DNS device still converges, and the DNS monitors mark that unit's members down.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_f5bigip as f5bigip

from components import config
from components.bigip import as3
from components.bigip.as3 import COMMON, SHARED
from components.bigip.device import bigip_provider

OUTPUT_NAME = "gslbRefs"  # the unit stacks' output: {unit name: UnitRef.as_output()}
REF_VERSION = 1

# The wide IP answers from one pool (plus a last-resort pool), so choosing among units is the
# pool's job: its preferred method is the configured lbMode. At the wide-IP level the same mode
# is harmless with one pool, except topology, which there would score pools by `pool` records
# that we never write; global-availability simply takes the pool while it is up.
_POOL_LB_MODE: Mapping[str, str] = {
    "global-availability": "global-availability",
    "round-robin": "round-robin",
    "ratio": "ratio",
    "topology": "global-availability",
}


class GslbError(ValueError):
    """A GSLB input that cannot become a declaration; the message names unit, app and stack."""


# ---------------------------------------------------------------------------------------------
# Typed references to units
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppRef:
    name: str
    kind: str
    fqdn: str | None
    vip: str
    port: int


@dataclass(frozen=True)
class UnitRef:
    """What GSLB needs to know about a unit: plain values, never Outputs of its resources."""

    name: str
    cloud: str
    region: str
    # The unit BIG-IP address the DNS device talks to (iQuery, tcp/4353, and the bigip monitor):
    # its first self IP. The management address is for the REST API, not for GSLB; F5 DNS
    # addresses a BIG-IP server by a self IP on a traffic VLAN.
    address: str
    apps: tuple[AppRef, ...]
    # The stack that exported the reference ("" for this stack's own units); not exported.
    source: str = ""
    # The shared BIG-IP (config.SharedBigip) the unit is on, "" for a BIG-IP of its own: F5 DNS
    # knows a device as one server in one data center, whatever number of units it fronts.
    device: str = ""

    @classmethod
    def of(cls, unit: config.Unit, device: config.SharedBigip | None = None) -> UnitRef:
        if unit.bigip is None:
            raise GslbError(f"unit {unit.name} has no bigip; GSLB needs a BIG-IP virtual server per unit")
        return cls(
            name=unit.name,
            cloud=unit.cloud,
            region=unit.region,
            address=str((device.self_ips if device else unit.bigip.self_ips)[0]),
            apps=tuple(
                AppRef(a.name, a.kind, str(a.fqdn) if a.fqdn else None, str(a.vip), a.port) for a in unit.apps
            ),
            device=device.name if device else "",
        )

    @property
    def server(self) -> str:
        """The GSLB server (and data center) this unit's virtual servers belong to."""
        return self.device or self.name

    def virtual_server(self, app: str) -> str:
        """The app's virtual server's name in that server: units on one device share the server."""
        return f"{self.name}-{app}" if self.device else app

    @property
    def origin(self) -> str:
        """Where the reference came from, for error messages."""
        return _origin(self.source)

    def app(self, name: str) -> AppRef | None:
        return next((a for a in self.apps if a.name == name), None)

    def as_output(self) -> dict[str, Any]:
        """The JSON-able form a unit stack exports under `gslbRefs.<unit>`."""
        return ({"device": self.device} if self.device else {}) | {
            "version": REF_VERSION,
            "name": self.name,
            "cloud": self.cloud,
            "region": self.region,
            "address": self.address,
            "apps": [
                {"name": a.name, "kind": a.kind, "fqdn": a.fqdn, "vip": a.vip, "port": a.port}
                for a in self.apps
            ],
        }

    @classmethod
    def from_output(cls, data: Any, source: str = "") -> UnitRef:
        """Parse `as_output()`'s form (e.g. from a StackReference); errors name the stack."""
        where = f"{_origin(source)}: {OUTPUT_NAME} entry"
        if not isinstance(data, Mapping):
            raise GslbError(f"{where} is {type(data).__name__}, not an object")
        if data.get("version") != REF_VERSION:
            raise GslbError(
                f"{where} has version {data.get('version')!r}; this program reads version {REF_VERSION}, "
                "redeploy the unit stack with the same cpaas release"
            )
        name = _text(data, "name", where)
        where = f"{where} for unit {name}"
        apps = data.get("apps")
        if not isinstance(apps, list):
            raise GslbError(f"{where}: apps is missing or not a list")
        parsed = tuple(_app_from_output(a, f"{where}: apps[{i}]") for i, a in enumerate(apps))
        names = [a.name for a in parsed]
        if len(set(names)) != len(names):
            raise GslbError(f"{where}: app names repeat ({', '.join(names)})")
        return cls(
            name=name,
            cloud=_text(data, "cloud", where),
            region=_text(data, "region", where),
            address=_ip(data, "address", where),
            apps=parsed,
            source=source,
            device=_text(data, "device", where) if "device" in data else "",
        )


def _origin(source: str) -> str:
    return f"stack {source}" if source else "this stack"


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise GslbError(f"{where}: {key} is missing or not a non-empty string")
    return value


def _ip(data: Mapping[str, Any], key: str, where: str) -> str:
    value = _text(data, key, where)
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise GslbError(f"{where}: {key} {value!r} is not an IPv4 address") from None


def _app_from_output(data: Any, where: str) -> AppRef:
    if not isinstance(data, Mapping):
        raise GslbError(f"{where} is not an object")
    port, fqdn = data.get("port"), data.get("fqdn")
    # Numbers cross a StackReference as protobuf doubles: 443 arrives as 443.0.
    if isinstance(port, float) and port.is_integer():
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise GslbError(f"{where}: port {port!r} is not 1-65535")
    if fqdn is not None and not isinstance(fqdn, str):
        raise GslbError(f"{where}: fqdn {fqdn!r} is not a string")
    return AppRef(_text(data, "name", where), _text(data, "kind", where), fqdn, _ip(data, "vip", where), port)


def remote_ref(stack: pulumi.StackReference, unit: str, stack_name: str) -> pulumi.Output[UnitRef]:
    """The UnitRef a unit stack exports under `gslbRefs.<unit>`.

    Unsecret: a ref carries only names, addresses and FQDNs (from_output admits nothing else), and
    the AS3 declaration built from it must stay readable in `pulumi preview` diffs.
    """

    def pick(exported: Any) -> UnitRef:
        if not isinstance(exported, Mapping):
            raise GslbError(
                f"stack {stack_name} exports no {OUTPUT_NAME} object; deploy unit {unit} with this "
                "cpaas release (every unit stack exports it)"
            )
        if unit not in exported:
            known = ", ".join(sorted(map(str, exported))) or "none"
            raise GslbError(
                f"stack {stack_name} exports no {OUTPUT_NAME} entry for unit {unit} (it has: {known}); "
                "fix gslb.unitStacks or deploy the unit there"
            )
        ref = UnitRef.from_output(exported[unit], source=stack_name)
        if ref.name != unit:
            raise GslbError(f"stack {stack_name}: {OUTPUT_NAME}.{unit} describes unit {ref.name}")
        return ref

    return pulumi.Output.unsecret(stack.get_output(OUTPUT_NAME)).apply(pick)


# ---------------------------------------------------------------------------------------------
# The AS3 declaration (pure)
# ---------------------------------------------------------------------------------------------


def data_center_name(unit: str) -> str:
    return f"cpaas-dc-{unit}"


def server_name(unit: str) -> str:
    return f"cpaas-bigip-{unit}"


def application_name(app: str) -> str:
    # Prefixed: a DNS label may start with a digit or be a Tenant keyword (label, remark, ...).
    return f"app-{app}"


def _shared(name: str) -> str:
    return f"/{COMMON}/{SHARED}/{name}"


DNS_DEVICE_SERVER = "cpaas-dns-device"
DNS_DEVICE_DATA_CENTER = "cpaas-dc-dns-device"
LISTENERS = "dns-listeners"  # application in the GSLB tenant (not a DNS label, so no app clashes)


def declaration(gslb: config.Gslb, refs: Sequence[UnitRef]) -> dict[str, Any]:
    """The full AS3 request for the DNS device. Raises GslbError naming unit, app and stack."""
    units = _index(refs, gslb.dns_device)
    shared: dict[str, Any] = {"class": "Application", "template": "shared"}
    for server, on_it in _servers(units.values()).items():
        shared[data_center_name(server)] = _data_center(on_it[0])
        shared[server_name(server)] = _server(on_it)
    shared.update(_dns_device_server(gslb.dns_device))
    records = _topology_records(gslb, units)
    if records:
        shared["cpaas-topology"] = {"class": "GSLB_Topology_Records", "records": records}
    tenant: dict[str, Any] = {"class": "Tenant"}
    for wide in gslb.wide_ips:
        tenant[application_name(wide.app)] = _wide_ip_application(wide, units)
    if gslb.dns_device.listeners:
        tenant[LISTENERS] = _listeners(gslb.dns_device)
    return as3.request(
        f"cpaas-gslb-{gslb.dns_device.partition}",
        "cpaas GSLB",
        {COMMON: {"class": "Tenant", SHARED: shared}, gslb.dns_device.partition: tenant},
    )


def tenants(gslb: config.Gslb) -> tuple[str, str]:
    """The AS3 tenants the declaration holds, and so the only ones it changes."""
    return (COMMON, gslb.dns_device.partition)


def _dns_device_server(device: config.DnsDevice) -> dict[str, Any]:
    """The DNS device as a BIG-IP server in its own data center: F5 DNS probes and talks iQuery
    only once it knows itself as a server (F5: BIG-IP DNS concepts, "Data centers and servers")."""
    if device.self_ip is None:
        return {}
    return {
        DNS_DEVICE_DATA_CENTER: {"class": "GSLB_Data_Center", "location": device.location, "enabled": True},
        DNS_DEVICE_SERVER: {
            "class": "GSLB_Server",
            "serverType": "bigip",
            "dataCenter": {"use": _shared(DNS_DEVICE_DATA_CENTER)},
            "devices": [{"address": str(device.self_ip)}],
            "virtualServerDiscoveryMode": "disabled",
            "virtualServers": [],
        },
    }


def _listeners(device: config.DnsDevice) -> dict[str, Any]:
    """UDP and TCP port 53 on each listener address with the device's DNS profile (GSLB on): the
    addresses resolvers (or the parent zone's delegation) send wide-IP queries to. No pool, no
    address translation, no SNAT, no persistence: as F5 DNS's own listeners are made."""
    app: dict[str, Any] = {"class": "Application", "template": "generic"}
    for proto, cls in (("udp", "Service_UDP"), ("tcp", "Service_TCP")):
        for i, address in enumerate(device.listeners):
            app[f"listener-{proto}-{i}"] = {
                "class": cls,
                "virtualAddresses": [str(address)],
                "virtualPort": 53,
                "profileDNS": {"bigip": "/Common/dns"},
                "translateServerAddress": False,
                "translateServerPort": False,
                "snat": "none",
                "persistenceMethods": [],
            }
    return app


def _index(refs: Sequence[UnitRef], device: config.DnsDevice) -> dict[str, UnitRef]:
    units: dict[str, UnitRef] = {}
    addresses: dict[str, str] = {}
    if device.self_ip is not None:
        addresses[str(device.self_ip)] = "the DNS device (gslb.dnsDevice.selfIp)"
    for ref in refs:
        if ref.name in units:
            raise GslbError(
                f"unit {ref.name} is described twice ({units[ref.name].origin} and {ref.origin}); "
                "a unit is deployed by one stack only"
            )
        if ref.address in addresses and not (ref.device and addresses[ref.address] == f"device {ref.device}"):
            raise GslbError(
                f"{addresses[ref.address]} and unit {ref.name} share BIG-IP address {ref.address}; "
                "F5 DNS knows a BIG-IP as one server in one data center, give each unit its own BIG-IP"
            )
        units[ref.name] = ref
        addresses[ref.address] = f"device {ref.device}" if ref.device else f"unit {ref.name}"
    return units


def _servers(refs: Iterable[UnitRef]) -> dict[str, list[UnitRef]]:
    """The units by GSLB server: one per unit BIG-IP of its own, one per shared device."""
    servers: dict[str, list[UnitRef]] = {}
    for ref in refs:
        servers.setdefault(ref.server, []).append(ref)
    return servers


def _data_center(ref: UnitRef) -> dict[str, Any]:
    return {"class": "GSLB_Data_Center", "location": f"{ref.cloud}/{ref.region}", "enabled": True}


def _server(refs: Sequence[UnitRef]) -> dict[str, Any]:
    return {
        "class": "GSLB_Server",
        "serverType": "bigip",
        "dataCenter": {"use": _shared(data_center_name(refs[0].server))},
        "devices": [{"address": refs[0].address}],
        # Only the listed virtual servers: discovery would import CIS's objects too.
        "virtualServerDiscoveryMode": "disabled",
        "virtualServers": [
            {"name": ref.virtual_server(a.name), "address": a.vip, "port": a.port}
            for ref in refs
            for a in ref.apps
        ],
    }


def _serving(wide: config.WideIp, units: Mapping[str, UnitRef]) -> list[tuple[UnitRef, AppRef]]:
    """The units serving the wide IP's app, in member order (wideIp.units, else refs order)."""
    if wide.units:
        found = [_member_of(wide, name, units) for name in wide.units]
    else:
        found = [(ref, app) for ref in units.values() if (app := ref.app(wide.app)) is not None]
    if not found:
        raise GslbError(
            f"wide IP {wide.app}: no unit serves app {wide.app} "
            f"(units: {', '.join(units) or 'none'}); a wide IP needs a pool member"
        )
    # A ratio for a unit that is not a member would silently shift its share to the others.
    members = {ref.name for ref, _ in found}
    for name in wide.ratios:
        if name not in members:
            _member_of(wide, name, units)  # names the unit, app and stack when the app is missing
            raise GslbError(f"wide IP {wide.app}: ratios name unit {name}, which is not in wideIps.units")
    return found


def _member_of(wide: config.WideIp, name: str, units: Mapping[str, UnitRef]) -> tuple[UnitRef, AppRef]:
    ref = units.get(name)
    if ref is None:
        raise GslbError(f"wide IP {wide.app}: unit {name} is not a unit of this stack or gslb.unitStacks")
    app = ref.app(wide.app)
    if app is None:
        raise GslbError(
            f"wide IP {wide.app}: unit {name} (from {ref.origin}) has no app {wide.app}; "
            f"deploy the app in that unit or remove {name} from the wide IP's units and ratios"
        )
    return ref, app


def _fqdn(wide: config.WideIp, members: Sequence[tuple[UnitRef, AppRef]]) -> str:
    fqdns = {app.fqdn for _, app in members}
    if None in fqdns:
        missing = ", ".join(f"{ref.name} (from {ref.origin})" for ref, app in members if app.fqdn is None)
        raise GslbError(f"wide IP {wide.app}: app {wide.app} has no fqdn in unit(s) {missing}")
    if len(fqdns) != 1:
        shown = ", ".join(f"{ref.name}: {app.fqdn}" for ref, app in members)
        raise GslbError(f"wide IP {wide.app}: app {wide.app} has different FQDNs across units ({shown})")
    return str(fqdns.pop())


def _wide_ip_application(wide: config.WideIp, units: Mapping[str, UnitRef]) -> dict[str, Any]:
    members = _serving(wide, units)
    domain: dict[str, Any] = {
        "class": "GSLB_Domain",
        "domainName": _fqdn(wide, members),
        "resourceRecordType": "A",
        "poolLbMode": _POOL_LB_MODE[wide.lb_mode],
        "pools": [{"use": "pool"}],
    }
    app: dict[str, Any] = {
        "class": "Application",
        "wideip": domain,
        "pool": _pool(wide, members),
        "monitor": _monitor(wide.monitor),
    }
    if wide.last_resort_unit is not None:
        last = [_member_of(wide, wide.last_resort_unit, units)]
        app["pool-last-resort"] = _pool(wide, last, last_resort=True)
        domain["lastResortPool"] = {"use": "pool-last-resort"}
        domain["lastResortPoolType"] = "A"  # AS3 needs the type whenever lastResortPool is set
    return app


def _pool(
    wide: config.WideIp, members: Sequence[tuple[UnitRef, AppRef]], last_resort: bool = False
) -> dict[str, Any]:
    pool: dict[str, Any] = {
        "class": "GSLB_Pool",
        "resourceRecordType": "A",
        "lbModePreferred": "global-availability" if last_resort else wide.lb_mode,
        # Topology without a matching record falls back to round robin; the other methods
        # always find an available member if there is one.
        "lbModeAlternate": "round-robin" if wide.lb_mode == "topology" and not last_resort else "none",
        # No answer from this pool: move on to the wide IP's next (last-resort) pool rather
        # than handing the query back to BIND.
        "lbModeFallback": "none",
        "monitors": [{"use": "monitor"}],
        "members": [_member(wide, ref, app, order) for order, (ref, app) in enumerate(members)],
    }
    if last_resort:
        # The pool of last resort answers even when its member's monitor says down: an answer
        # that may fail beats none when every unit is down.
        pool["verifyMemberEnabled"] = False
    return pool


def _member(wide: config.WideIp, ref: UnitRef, app: AppRef, order: int) -> dict[str, Any]:
    # The member is the unit's GSLB server plus its virtual server for the app, by name.
    member: dict[str, Any] = {
        "server": {"use": _shared(server_name(ref.server))},
        "virtualServer": ref.virtual_server(app.name),
    }
    if wide.lb_mode == "global-availability":
        member["memberOrder"] = order  # failover order; other modes leave the order alone
    elif wide.lb_mode == "ratio":
        member["ratio"] = wide.ratios.get(ref.name, 1)
    return member


def _monitor(monitor: config.Monitor) -> dict[str, Any]:
    out: dict[str, Any] = {
        "class": "GSLB_Monitor",
        "monitorType": monitor.type,
        "interval": monitor.interval,
        "timeout": monitor.timeout,
    }
    if monitor.send is not None:
        out["send"] = monitor.send
    if monitor.receive is not None:
        out["receive"] = monitor.receive
    return out


def _topology_records(gslb: config.Gslb, units: Mapping[str, UnitRef]) -> list[dict[str, Any]]:
    """Every wide IP's topology records: LDNS subnet -> the unit's data center.

    Topology records are global on the device (AS3 manages them all from one
    GSLB_Topology_Records), so records of different wide IPs are merged; the same subnet and unit
    must carry the same weight everywhere.
    """
    seen: dict[tuple[str, str], tuple[int, str]] = {}
    records: list[dict[str, Any]] = []
    for wide in gslb.wide_ips:
        for record in wide.topology:
            if record.unit not in units:
                raise GslbError(f"wide IP {wide.app}: topology names unit {record.unit}, which is unknown")
            key = (str(record.ldns_subnet), record.unit)
            if key in seen:
                if seen[key][0] != record.weight:
                    raise GslbError(
                        f"wide IP {wide.app}: topology {key[0]} -> {record.unit} has weight "
                        f"{record.weight} but wide IP {seen[key][1]} gives it {seen[key][0]}; "
                        "topology records are device-global, use one weight"
                    )
                continue
            seen[key] = (record.weight, wide.app)
            records.append(
                {
                    "source": {"matchType": "subnet", "matchOperator": "equals", "matchValue": key[0]},
                    "destination": {
                        "matchType": "datacenter",
                        "matchOperator": "equals",
                        "matchValue": {"use": _shared(data_center_name(units[record.unit].server))},
                    },
                    "weight": record.weight,
                }
            )
    return records


def wide_ips(gslb: config.Gslb, refs: Sequence[UnitRef]) -> dict[str, list[str]]:
    """FQDN -> member units in pool order, for the stack outputs."""
    units = _index(refs, gslb.dns_device)
    out: dict[str, list[str]] = {}
    for wide in gslb.wide_ips:
        members = _serving(wide, units)
        out[_fqdn(wide, members)] = [ref.name for ref, _ in members]
    return out


# ---------------------------------------------------------------------------------------------
# The component
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GslbArgs:
    gslb: config.Gslb
    # Local units' refs are plain UnitRefs; unit stacks' refs are Outputs (see remote_ref).
    refs: Sequence[pulumi.Input[UnitRef]]
    password: pulumi.Input[str]
    # Path of a PEM file holding the DNS device's management certificate (the provider reads a file).
    trusted_cert_path: pulumi.Input[str] | None


class Gslb(pulumi.ComponentResource):
    provider: f5bigip.Provider
    as3: f5bigip.As3
    as3_json: pulumi.Output[str]
    wide_ips: pulumi.Output[dict[str, list[str]]]

    def __init__(self, name: str, args: GslbArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cpaas:gslb:Gslb", name, None, opts)
        device = args.gslb.dns_device
        # Its own provider: the DNS device is not any unit's BIG-IP, and shares nothing with them.
        self.provider = bigip_provider(
            f"{name}-provider", device, args.password, args.trusted_cert_path, self
        )
        refs: pulumi.Output[list[UnitRef]] = pulumi.Output.all(*args.refs)
        gslb = args.gslb
        self.as3_json = refs.apply(lambda rs: json.dumps(declaration(gslb, rs), sort_keys=True))
        self.wide_ips = refs.apply(lambda rs: wide_ips(gslb, rs))
        # No tenant_filter: in 3.25.1 (TF v1.26.0 resource_bigip_as3.go) a filter must be ONE
        # tenant of the declaration ("tenant_filter: (...) not exist in as3_json"), and we declare
        # two. Unfiltered, the provider posts to exactly the declaration's tenants (GetTenantList):
        # `Common` and the GSLB tenant, never another tenant on the device.
        self.as3 = f5bigip.As3(
            f"{name}-as3",
            as3_json=self.as3_json,
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
        )
        self.register_outputs({"wideIps": self.wide_ips, "tenants": list(tenants(gslb))})
