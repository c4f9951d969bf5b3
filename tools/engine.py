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
    """

    def __init__(self, stack_outputs: Mapping[str, Mapping[str, Any]] | None = None):
        self.stack_outputs = dict(stack_outputs or {})

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        raise RuntimeError(f"unexpected invoke {args.token}; the program must not call providers")

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        state = dict(args.inputs)
        seed = f"{args.typ}::{args.name}"
        if args.typ == "pulumi:pulumi:StackReference":
            name = str(args.inputs.get("name", args.name))
            state["outputs"] = dict(self.stack_outputs.get(name, {}))
            state["secretOutputNames"] = sorted(state["outputs"])
            return name, state
        if args.typ == "tls:index/privateKey:PrivateKey":
            state["privateKeyPem"] = sdk.wrap_rpc_secret(mock_pem("PRIVATE KEY", seed))
            state["privateKeyPemPkcs8"] = sdk.wrap_rpc_secret(mock_pem("PRIVATE KEY", seed))
            state["publicKeyPem"] = mock_pem("PUBLIC KEY", seed)
        elif args.typ in (
            "tls:index/selfSignedCert:SelfSignedCert",
            "tls:index/locallySignedCert:LocallySignedCert",
        ):
            state["certPem"] = mock_pem("CERTIFICATE", seed)
        elif args.typ == "tls:index/certRequest:CertRequest":
            state["certRequestPem"] = mock_pem("CERTIFICATE REQUEST", seed)
        elif args.typ == "command:local:Command":
            state["stdout"] = sdk.wrap_rpc_secret(f"mock stdout of {args.name}")
        elif args.typ == "kubernetes:helm.sh/v3:Release":
            # What the provider reports after the first install (its setReleaseAttributes).
            keys = ("name", "namespace", "chart", "version")
            state["status"] = {**{k: args.inputs.get(k) for k in keys}, "revision": 1, "status": "deployed"}
        return f"{args.name}-id", state


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
        has = request.DESCRIPTOR.fields_by_name
        self.registrations.append(
            Registration(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                provider=request.provider,
                dependencies=sorted(set(request.dependencies)),
                custom=custom,
                inputs=plain(raw),
                id=id_,
                options={
                    "deleteBeforeReplace": bool(getattr(request, "deleteBeforeReplace", False)),
                    "aliases": [json_format.MessageToDict(a) for a in getattr(request, "aliases", [])],
                    "ignoreChanges": list(getattr(request, "ignoreChanges", [])),
                    "additionalSecretOutputs": list(getattr(request, "additionalSecretOutputs", [])),
                    "replacementTrigger": _trigger(request),
                    "read": "object" not in has,
                },
            )
        )


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
) -> Run:
    """Run `program` (returning stack outputs) under the mock engine in a fresh context.

    A fresh `contextvars.Context` gives each run its own settings and root stack, so runs in one
    process do not leak into each other. Exceptions from the program propagate.
    """
    try:
        return contextvars.Context().run(_run, program, project, stack, mocks or StateMocks())
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
) -> Run:
    # A run allocates many short-lived futures; the cyclic GC's passes over them cost more than
    # the garbage it finds in a run this short (about half the time at 16 units).
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with _no_source_positions():
            return _run_program(program, project, stack, mocks)
    finally:
        if was_enabled:
            gc.enable()


def _run_program(
    program: Callable[[], Mapping[str, Any] | None],
    project: str,
    stack: str,
    mocks: pulumi.runtime.Mocks,
) -> Run:
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    collected: dict[str, Any] = {}
    secret_names: set[str] = set()

    async def resolve(outputs: Mapping[str, Any]) -> None:
        for key, value in outputs.items():
            out = pulumi.Output.from_input(value)
            resolved = await out.future()
            if await out.is_secret():
                secret_names.add(key)
                collected[key] = SECRET
            else:
                collected[key] = _scrub(resolved)

    def body() -> Any:
        outputs = program() or {}
        return resolve(outputs)

    sdk.sync_await(sdk.run_pulumi_func(body))
    return Run(monitor.registrations, collected, secret_names)


def _scrub(value: Any) -> Any:
    """Plain JSON of a resolved output value (nested secrets are already unwrapped by the SDK)."""
    if isinstance(value, Mapping):
        return {str(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return copy.deepcopy(value)
