"""Every private Pulumi SDK symbol cpaas relies on, in one place.

The public testing API (pulumi.runtime.set_mocks, Mocks) hands a mock only a resource's type,
name and inputs; tools/engine.py records parents, providers, dependencies and options too, and
that takes the SDK's internals listed in INTERNALS. Each is loaded once, here. A Pulumi upgrade
that moves one fails on import, or in tests/test_sdk_internals.py when only its shape changed,
with a line naming the symbol and the pinned version (requirements.txt).
"""

from __future__ import annotations

import contextvars
import importlib
import importlib.metadata
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"

# The property-value encoding on the wire (the same in every language SDK).
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def pinned() -> str:
    """The pulumi version requirements.txt pins."""
    found = re.search(r"^pulumi==(\S+)", REQUIREMENTS.read_text(encoding="utf-8"), re.MULTILINE)
    return found.group(1) if found else "(none in requirements.txt)"


def installed() -> str:
    return importlib.metadata.version("pulumi")


def _params(*names: str) -> Callable[[Any], bool]:
    """A callable whose leading parameters are `names` and whose others have defaults."""

    def holds(obj: Any) -> bool:
        try:
            params = list(inspect.signature(obj).parameters.values())
        except (TypeError, ValueError):
            return False
        rest = params[len(names) :]
        return [p.name for p in params[: len(names)]] == list(names) and all(
            p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in rest
        )

    return holds


def _methods(**methods: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda cls: (
        inspect.isclass(cls)
        and all(_params(*params)(getattr(cls, name, None)) for name, params in methods.items())
    )


def _fields(*names: str) -> Callable[[Any], bool]:
    """A protobuf message class with these fields."""

    def holds(cls: Any) -> bool:
        fields = getattr(getattr(cls, "DESCRIPTOR", None), "fields_by_name", {})
        return set(names) <= set(fields)

    return holds


def _equals(value: object) -> Callable[[Any], bool]:
    return lambda obj: obj == value


def _settings(obj: Any) -> bool:
    return isinstance(getattr(obj, "outputs", None), set) and callable(
        getattr(getattr(obj, "rpc_manager", None), "clear", None)
    )


@dataclass(frozen=True)
class Internal:
    module: str
    name: str
    expected: str  # what cpaas relies on, in words
    holds: Callable[[Any], bool]

    @property
    def symbol(self) -> str:
        return f"{self.module}.{self.name}"

    def problem(self, what: str) -> str:
        return (
            f"{self.symbol}: {what}; cpaas needs {self.expected}. pulumi {installed()} is installed, "
            f"requirements.txt pins {pinned()}: adapt tools/sdk_internals.py (and its users) to the new SDK"
        )

    def load(self) -> Any:
        try:
            return getattr(importlib.import_module(self.module), self.name)
        except (ImportError, AttributeError):
            raise ImportError(self.problem("missing")) from None

    def check(self) -> str | None:
        try:
            obj = self.load()
        except ImportError as exc:
            return str(exc)
        return None if self.holds(obj) else self.problem("changed shape")


_MOCKS = "pulumi.runtime.mocks"
_RPC = "pulumi.runtime.rpc"
_CONFIG = "pulumi.runtime.config"
_PB = "pulumi.runtime.proto.resource_pb2"

MOCK_MONITOR = Internal(
    _MOCKS,
    "MockMonitor",
    "a class with __init__(mocks), make_urn(parent, type_, name), RegisterResource(request) and "
    "ReadResource(request) (tools/engine.py RecordingMonitor overrides them)",
    _methods(
        __init__=("self", "mocks"),
        make_urn=("self", "parent", "type_", "name"),
        RegisterResource=("self", "request"),
        ReadResource=("self", "request"),
    ),
)
SET_MOCKS = Internal(
    _MOCKS,
    "set_mocks",
    "set_mocks(mocks, project, stack, preview, logger, monitor) taking our monitor",
    _params("mocks", "project", "stack", "preview", "logger", "monitor"),
)
RUN_PULUMI_FUNC = Internal(
    "pulumi.runtime.stack",
    "run_pulumi_func",
    "a coroutine function run_pulumi_func(func) that runs a program and waits for its RPCs",
    lambda obj: inspect.iscoroutinefunction(obj) and _params("func")(obj),
)
SYNC_AWAIT = Internal(
    "pulumi.runtime.sync_await",
    "_sync_await",
    "_sync_await(awaitable) running an awaitable on the SDK's event loop",
    _params("awaitable"),
)
SETTINGS_ = Internal(
    "pulumi.runtime.settings",
    "SETTINGS",
    "the process-wide default settings with `outputs` (a set of tasks) and `rpc_manager.clear()`",
    _settings,
)
GET_STACK_TRACE = Internal(
    "pulumi.runtime.resource",
    "_get_stack_trace",
    "a module-level _get_stack_trace() the engine swaps for an empty StackTrace",
    _params(),
)
STACK_TRACE = Internal(
    "pulumi.runtime.proto.source_pb2",
    "StackTrace",
    "a protobuf message class (made with no arguments: an empty trace)",
    lambda cls: inspect.isclass(cls) and _fields()(cls),
)
REGISTER_REQUEST = Internal(
    _PB,
    "RegisterResourceRequest",
    "the fields tools/engine.py records (type, name, parent, provider, dependencies, custom, object, "
    "deleteBeforeReplace, aliases, ignoreChanges, additionalSecretOutputs, replacement_trigger)",
    _fields(
        "type",
        "name",
        "parent",
        "provider",
        "dependencies",
        "custom",
        "object",
        "deleteBeforeReplace",
        "aliases",
        "ignoreChanges",
        "additionalSecretOutputs",
        "replacement_trigger",
    ),
)
READ_REQUEST = Internal(
    _PB,
    "ReadResourceRequest",
    "the fields tools/engine.py records (type, name, parent, provider, dependencies, id, properties)",
    _fields("type", "name", "parent", "provider", "dependencies", "id", "properties"),
)
WIRE = tuple(
    Internal(_RPC, name, f"the wire value {value!r}", _equals(value))
    for name, value in (
        ("_special_sig_key", SIG_KEY),
        ("_special_secret_sig", SECRET_SIG),
        ("_special_resource_sig", RESOURCE_SIG),
        ("_special_asset_sig", ASSET_SIG),
        ("UNKNOWN", UNKNOWN_VALUE),
    )
)
WRAP_SECRET = Internal(_RPC, "wrap_rpc_secret", "wrap_rpc_secret(value)", _params("value"))
UNWRAP_SECRET = Internal(_RPC, "unwrap_rpc_secret", "unwrap_rpc_secret(value)", _params("value"))
RESOURCE_MODULES = Internal(
    _RPC,
    "_RESOURCE_MODULES",
    "a dict of the packages' registered resource modules (tools/bench.py declared_properties)",
    lambda obj: isinstance(obj, dict),
)
PY_TO_PULUMI_NAMES = Internal(
    "pulumi._types",
    "resource_py_to_pulumi_names",
    "resource_py_to_pulumi_names(resource_cls) (tools/bench.py declared_properties)",
    _params("resource_cls"),
)
# The stack config the CLI hands a program: tools/stackfile.py reads it, the tests set it.
CONFIG_VAR = Internal(
    _CONFIG, "CONFIG", "a ContextVar of the config map", lambda obj: isinstance(obj, contextvars.ContextVar)
)
CONFIG_FUNCS = tuple(
    Internal(_CONFIG, name, f"{name}({', '.join(params)})", _params(*params))
    for name, params in (
        ("set_all_config", ("config", "secret_keys")),
        ("get_config_env", ()),
        ("get_config_secret_keys_env", ()),
        ("get_config", ("k",)),
        ("is_config_secret", ("k",)),
    )
)

INTERNALS: tuple[Internal, ...] = (
    MOCK_MONITOR,
    SET_MOCKS,
    RUN_PULUMI_FUNC,
    SYNC_AWAIT,
    SETTINGS_,
    GET_STACK_TRACE,
    STACK_TRACE,
    REGISTER_REQUEST,
    READ_REQUEST,
    *WIRE,
    WRAP_SECRET,
    UNWRAP_SECRET,
    RESOURCE_MODULES,
    PY_TO_PULUMI_NAMES,
    CONFIG_VAR,
    *CONFIG_FUNCS,
)


def problems() -> list[str]:
    """One line per internal that is missing or no longer has the shape cpaas relies on."""
    return [p for p in (i.check() for i in INTERNALS) if p is not None]


# What the engine, the bench and the tests import. A missing symbol fails here, by name.
MockMonitor: Any = MOCK_MONITOR.load()
run_pulumi_func: Callable[[Callable[[], Any]], Any] = RUN_PULUMI_FUNC.load()
sync_await: Callable[[Any], Any] = SYNC_AWAIT.load()
SETTINGS: Any = SETTINGS_.load()
StackTrace: Callable[[], Any] = STACK_TRACE.load()
wrap_rpc_secret: Callable[[Any], Any] = WRAP_SECRET.load()
unwrap_rpc_secret: Callable[[Any], Any] = UNWRAP_SECRET.load()
set_all_config: Callable[..., None] = CONFIG_FUNCS[0].load()


def resource_modules() -> dict[str, list[Any]]:
    """The packages' registered resource modules, read when asked (they fill as packages import)."""
    return RESOURCE_MODULES.load()


def resource_py_to_pulumi_names(cls: type) -> dict[str, str]:
    return PY_TO_PULUMI_NAMES.load()(cls)


def set_stack_trace(get: Callable[[], Any]) -> Callable[[], Any]:
    """Replace the SDK's per-registration source-position walk; returns the one it replaced."""
    module = importlib.import_module(GET_STACK_TRACE.module)
    previous: Callable[[], Any] = getattr(module, GET_STACK_TRACE.name)
    setattr(module, GET_STACK_TRACE.name, get)
    return previous
