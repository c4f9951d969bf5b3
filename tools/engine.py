"""Runs a Pulumi program under the SDK's mock engine and records every registration.

The SDK's `MockMonitor` hands mocks only type, name and inputs; the registration request also
carries parent, provider and dependencies, which the render and the tests need. `RecordingMonitor`
keeps the whole request. Secrets are replaced by "[secret]" exactly where they sit (the SDK's
own deserializer would push secretness up to the enclosing object).

Ref: https://www.pulumi.com/docs/using-pulumi/testing/unit/
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import gc
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.runtime
from google.protobuf import json_format
from pulumi.output import Unknown

from tools import graph
from tools import sdk_internals as sdk

SECRET = "[secret]"
UNKNOWN = "[unknown]"


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    provider: str
    dependencies: list[str]
    custom: bool
    inputs: dict[str, Any]  # secrets replaced by "[secret]"
    id: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "provider": self.provider,
            "dependencies": self.dependencies,
            "inputs": self.inputs,
        }


def plain(value: Any) -> Any:
    """JSON form of a serialized property value, secrets and unknowns replaced in place."""
    if isinstance(value, dict):
        sig = value.get(sdk.SIG_KEY)
        if sig == sdk.SECRET_SIG:
            return _mask(value.get("value"))
        if sig == sdk.RESOURCE_SIG:
            return value.get("urn", "")
        if sig == sdk.ASSET_SIG:
            return value.get("text") or value.get("path") or value.get("uri")
        # Sorted: protobuf maps carry no order, and renders must be byte-identical.
        return {k: plain(value[k]) for k in sorted(value) if not k.startswith("__")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if value == sdk.UNKNOWN_VALUE:
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _mask(value: Any) -> Any:
    """Keep a secret's shape (keys of a Secret's stringData stay readable), hide every value."""
    if isinstance(value, dict) and value.get(sdk.SIG_KEY) is None:
        return {k: _mask(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return SECRET


def mock_pem(kind: str, seed: str) -> str:
    """A stand-in PEM block; deterministic so renders are byte-identical."""
    body = hashlib.sha256(seed.encode()).hexdigest()
    return f"-----BEGIN {kind}-----\nMOCK{body}\n-----END {kind}-----\n"


class StateMocks(pulumi.runtime.Mocks):
    """Echo inputs as state, with the computed outputs our program reads; refuse invokes.

    `stack_outputs` answers StackReference registrations: {stack name: {output: value}}.
    `preview` (set by `run(preview=True)`): every resource is being created, so what only the
    provider computes (PEMs, command output, a Release's status, the id) is unknown, as
    `pulumi preview` shows it; inputs echo back as given (known or not).
    """

    def __init__(self, stack_outputs: Mapping[str, Mapping[str, Any]] | None = None):
        self.stack_outputs = dict(stack_outputs or {})
        self.preview = False

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        raise RuntimeError(f"unexpected invoke {args.token}; the program must not call providers")

    def unknown_outputs(self, args: pulumi.runtime.MockResourceArgs) -> bool:
        """Whether the provider has yet to compute this resource's outputs (it is created or
        replaced in this preview). A read (`get`) is answered from the provider: known."""
        return self.preview and not args.resource_id

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        state = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            name = str(args.inputs.get("name", args.name))
            state["outputs"] = dict(self.stack_outputs.get(name, {}))
            state["secretOutputNames"] = sorted(state["outputs"])
            return name, state
        computed = computed_outputs(args)
        if self.unknown_outputs(args):
            # Ref: pulumi/pulumi v3.259.0 sdk/python/lib/pulumi/runtime/resource.py (an empty id
            # in a preview resolves as unknown), rpc.py (UNKNOWN, kept secret when wrapped).
            state.update({k: _unknown_like(v) for k, v in computed.items()})
            return "", state
        state.update(computed)
        return f"{args.name}-id", state


CERT_TYPES = ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert")


def computed_outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """The outputs only the provider computes that the program reads, deterministic per
    type and name so that renders are byte-identical."""
    seed = f"{args.typ}::{args.name}"
    if args.typ == "tls:index/privateKey:PrivateKey":
        return {
            "privateKeyPem": sdk.wrap_rpc_secret(mock_pem("PRIVATE KEY", seed)),
            "privateKeyPemPkcs8": sdk.wrap_rpc_secret(mock_pem("PRIVATE KEY", seed)),
            "publicKeyPem": mock_pem("PUBLIC KEY", seed),
        }
    if args.typ in CERT_TYPES:
        return {"certPem": mock_pem("CERTIFICATE", seed)}
    if args.typ == "tls:index/certRequest:CertRequest":
        return {"certRequestPem": mock_pem("CERTIFICATE REQUEST", seed)}
    if args.typ == "command:local:Command":
        return {"stdout": sdk.wrap_rpc_secret(f"mock stdout of {args.name}")}
    if args.typ == "f5bigip:index/command:Command" and args.inputs.get("when", "apply") == "apply":
        # One result per command (tmsh prints nothing when a command succeeds), stored when the
        # commands run at apply; a deployed stack's state has them, and so does a plan's "same".
        # Ref: F5Networks/terraform-provider-bigip v1.26.0 bigip/resource_bigip_command.go
        return {"commandResults": ["" for _ in args.inputs.get("commands") or ()]}
    if args.typ == "kubernetes:helm.sh/v3:Release":
        # What the provider reports after the first install (its setReleaseAttributes).
        keys = ("name", "namespace", "chart", "version")
        return {"status": {**{k: args.inputs.get(k) for k in keys}, "revision": 1, "status": "deployed"}}
    return {}


def _unknown_like(value: Any) -> Any:
    """The unknown sentinel, secret where the known value is secret."""
    if isinstance(value, dict) and value.get(sdk.SIG_KEY) == sdk.SECRET_SIG:
        return sdk.wrap_rpc_secret(sdk.UNKNOWN_VALUE)
    return sdk.UNKNOWN_VALUE


class RecordingMonitor(sdk.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # As the engine does: the parent's qualified type chain, without the root Stack.
        if parent:
            qualified = parent.split("::")[2]
            if qualified != "pulumi:pulumi:Stack":
                type_ = f"{qualified}${type_}"
        return "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), type_, name])

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().ReadResource(request)
        self._record(request, response.urn, request.id, request.properties, custom=True)
        return response

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        self._record(request, response.urn, response.id, request.object, bool(request.custom))
        return response

    def _record(self, request: Any, urn: str, id_: str, props: Any, custom: bool) -> None:
        raw = json_format.MessageToDict(props, preserving_proto_field_name=True)
        read = "object" not in request.DESCRIPTOR.fields_by_name
        self.registrations.append(registration(request, urn, raw, custom=custom, read=read, id_=id_))


def registration(
    request: Any, urn: str, raw: Any, *, custom: bool, read: bool, id_: str = ""
) -> Registration:
    """The Registration of a register or read request whose properties, as a dict, are `raw`."""
    return Registration(
        urn=urn,
        type=request.type,
        name=request.name,
        parent=request.parent,
        provider=request.provider,
        dependencies=sorted(set(request.dependencies)),
        custom=custom,
        inputs=plain(raw),
        id=id_,
        options=_options(request, read=read),
    )


def _options(request: Any, read: bool) -> dict[str, Any]:
    """The resource options the engine reads from the request, by the request's field names
    (RegisterResourceRequest in pulumi/runtime/proto/resource.proto; a ReadResourceRequest carries
    none of them, so they read as defaults). The request has one `dependencies` list, depends_on
    and input dependencies together, and the input ones per property: `dependsOn` is what no input
    explains (a resource both depended on and used in an input shows only as an input)."""
    from_inputs = {u for deps in getattr(request, "propertyDependencies", {}).values() for u in deps.urns}
    aliases = [json_format.MessageToDict(a) for a in getattr(request, "aliases", [])]
    aliases += [{"urn": u} for u in getattr(request, "aliasURNs", [])]
    return {
        "additionalSecretOutputs": list(getattr(request, "additionalSecretOutputs", [])),
        "aliases": aliases,
        "deleteBeforeReplace": bool(getattr(request, "deleteBeforeReplace", False)),
        # Only a defined deleteBeforeReplace overrides the provider's answer (false included).
        "deleteBeforeReplaceDefined": bool(getattr(request, "deleteBeforeReplaceDefined", False)),
        "deletedWith": str(getattr(request, "deletedWith", "")),
        "dependsOn": sorted(set(request.dependencies) - from_inputs),
        "ignoreChanges": list(getattr(request, "ignoreChanges", [])),
        "propertyDependencies": {
            key: sorted(deps.urns)
            for key, deps in sorted(getattr(request, "propertyDependencies", {}).items())
            if deps.urns
        },
        "protect": bool(getattr(request, "protect", False)),
        "read": read,
        "replaceOnChanges": list(getattr(request, "replaceOnChanges", [])),
        "replaceWith": sorted(getattr(request, "replace_with", [])),
        "replacementTrigger": _trigger(request),
        "retainOnDelete": bool(getattr(request, "retainOnDelete", False)),
    }


def _trigger(request: Any) -> Any:
    """The replacement trigger's value (secrets masked), or None when the request has none."""
    if "replacement_trigger" not in request.DESCRIPTOR.fields_by_name:
        return None
    if not request.HasField("replacement_trigger"):
        return None
    return plain(json_format.MessageToDict(request.replacement_trigger))


@dataclass
class Run:
    registrations: list[Registration]
    outputs: dict[str, Any]  # stack outputs, secrets replaced by "[secret]"
    secret_outputs: set[str]

    def by_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def get(self, name: str) -> Registration:
        found = [r for r in self.registrations if r.name == name]
        if len(found) != 1:
            raise KeyError(f"{name}: {len(found)} registrations")
        return found[0]

    def by_urn(self) -> dict[str, Registration]:
        return {r.urn: r for r in self.registrations}

    def upstream(self, reg: Registration) -> frozenset[str]:
        """URNs `reg` waits for, directly or through other dependencies."""
        return graph.upstream(reg, self.by_urn())


def run(
    program: Callable[[], Mapping[str, Any] | None],
    *,
    project: str = "cpaas",
    stack: str = "test",
    mocks: pulumi.runtime.Mocks | None = None,
    preview: bool = False,
    monitor: type[RecordingMonitor] | None = None,
) -> Run:
    """Run `program` (returning stack outputs) under the mock engine in a fresh context.

    `preview`: as `pulumi preview` runs it (the SDK's dry run): StateMocks answer provider-
    computed outputs as unknown, and the program's applies on them do not run. `monitor`: a
    RecordingMonitor subclass (tools.plan's decides each step against an old state).
    A fresh `contextvars.Context` gives each run its own settings and root stack, so runs in one
    process do not leak into each other. Exceptions from the program propagate.
    """
    mocks = mocks or StateMocks()
    if preview and hasattr(mocks, "preview"):
        mocks.preview = True  # StateMocks (and subclasses): provider-computed outputs unknown
    try:
        return contextvars.Context().run(
            _run, program, project, stack, mocks, preview=preview, monitor=monitor or RecordingMonitor
        )
    except Exception as failure:
        try:
            _drain_leftover_tasks()
        except Exception as cleanup:  # never hide the run's own error behind the cleanup's
            failure.add_note(f"(cleaning up the failed run also failed: {cleanup!r})")
        raise


def _drain_leftover_tasks(timeout: float = 10.0) -> None:
    """A run that fails inside an apply leaves its Output tasks and its first RPC error in the
    SDK's process-wide default `SETTINGS` (a fresh context falls back to them), and the next
    run's wait_for_rpcs would fail with this run's error. Let the tasks finish (they complete or
    fail with the run's error), retrieve their errors, cancel any still waiting after `timeout`,
    and forget them. Cancelling them all at once instead leaves CPython 3.11's recursion-depth
    bookkeeping off, and a later `ast.parse` in the same process fails with a SystemError."""
    loop = asyncio.get_event_loop()
    deadline = loop.time() + timeout
    seen: set[asyncio.Task[Any]] = set()
    # Finishing tasks may start others: wait until none is left or the deadline passes.
    while (pending := {t for t in asyncio.all_tasks(loop) if not t.done()}) and loop.time() < deadline:
        seen |= pending
        loop.run_until_complete(asyncio.wait(pending, timeout=max(deadline - loop.time(), 0.01)))
    for task in pending:
        task.cancel()
    if pending:
        seen |= pending
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    for task in [*sdk.SETTINGS.outputs, *seen]:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" later
    sdk.SETTINGS.outputs.clear()
    sdk.SETTINGS.rpc_manager.clear()


@contextlib.contextmanager
def _no_source_positions() -> Iterator[None]:
    """The SDK walks the Python stack (pathlib URIs per frame) on every registration to send
    source positions, which the mock monitor ignores; skip that work while we run."""
    original = sdk.set_stack_trace(sdk.StackTrace)  # an empty trace
    try:
        yield
    finally:
        sdk.set_stack_trace(original)


def _run(
    program: Callable[[], Mapping[str, Any] | None],
    project: str,
    stack: str,
    mocks: pulumi.runtime.Mocks,
    *,
    preview: bool = False,
    monitor: type[RecordingMonitor] = RecordingMonitor,
) -> Run:
    # A run allocates many short-lived futures; the cyclic GC's passes over them cost more than
    # the garbage it finds in a run this short (about half the time at 16 units).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with _no_source_positions():
            return _run_program(program, project, stack, mocks, preview=preview, monitor_type=monitor)
    finally:
        if was_enabled:
            gc.enable()


def _run_program(
    program: Callable[[], Mapping[str, Any] | None],
    project: str,
    stack: str,
    mocks: pulumi.runtime.Mocks,
    *,
    preview: bool = False,
    monitor_type: type[RecordingMonitor] = RecordingMonitor,
) -> Run:
    monitor = monitor_type(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=preview, monitor=monitor)
    collected: dict[str, Any] = {}
    secret_names: set[str] = set()

    async def resolve(outputs: Mapping[str, Any]) -> None:
        for key, value in outputs.items():
            out = pulumi.Output.from_input(value)
            if await out.is_secret():
                secret_names.add(key)
                collected[key] = SECRET
            else:
                collected[key] = await _known_parts(value)

    def body() -> Any:
        outputs = program() or {}
        return resolve(outputs)

    sdk.sync_await(sdk.run_pulumi_func(body))
    return Run(monitor.registrations, collected, secret_names)


async def _known_parts(value: Any) -> Any:
    """A stack output's value; in a preview, a plain dict or list holding unknowns keeps its
    known parts and shows "[unknown]" (or "[secret]") only where a part is not known."""
    out = pulumi.Output.from_input(value)
    resolved = await out.future()
    if await out.is_known():
        return _scrub(resolved)
    if isinstance(value, Mapping):
        return {str(k): await _known_parts(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [await _known_parts(v) for v in value]
    return SECRET if await out.is_secret() else UNKNOWN


def _scrub(value: Any) -> Any:
    """Plain JSON of a resolved output value (nested secrets are already unwrapped by the SDK)."""
    if isinstance(value, Mapping):
        return {str(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    if isinstance(value, Unknown):
        return UNKNOWN
    return copy.deepcopy(value)
