"""A stand-in for pulumi, k3d, kubectl, docker and curl in tests/test_e2e.py.

    python -I -S e2e_fake_tool.py TOOL ARGS...

Every call is appended to the log as one line, the repr of a dict (tool, argv, the Pulumi variables
it saw), which ast.literal_eval reads back. The answer comes from the first rule in $E2E_FAKE_STATE
whose `tool` matches and whose `match` strings all occur in the joined argv (and whose `when` flags
hold): `stdout`/`stdout_file`, `stderr`, `exit`, `file` (copied to curl's -o target), `set` (flags
for later calls) and `hold` (print, then wait to be killed, as kubectl port-forward does). No rule:
exit 0, no output. A call containing one of the `fail` flag's strings fails (exit 1) after its `set`.
Flags live in a file beside the state, so one call's effect (`pulumi up` creating the cluster)
is seen by the next process.

It runs once per fake call (hundreds per test run), so it imports only built-in modules: the state
and flags are marshal files (tests/test_e2e.py Fakes.write), not JSON, whose import costs more
than the rest of the call.
"""

from __future__ import annotations

import marshal
import os
import sys
import time

LOGGED = ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_SKIP_CONFIRMATIONS")
PRESENT = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_ACCESS_TOKEN")


def _load(path: str) -> dict:
    with open(path, "rb") as f:
        return marshal.load(f)


def _applies(rule: dict, tool: str, joined: str, flags: dict) -> bool:
    return (
        rule["tool"] == tool
        and all(m in joined for m in rule.get("match", []))
        and all(flags.get(k, False) == v for k, v in rule.get("when", {}).items())
    )


def main(tool: str, argv: list[str]) -> int:
    state = _load(os.environ["E2E_FAKE_STATE"])
    flags_file = state["flags"]
    flags = _load(flags_file) if os.path.exists(flags_file) else {}
    env = {k: os.environ.get(k) for k in LOGGED}
    env.update({f"{k} set": k in os.environ for k in PRESENT})
    with open(state["log"], "a") as log:
        log.write(repr({"tool": tool, "argv": argv, "env": env}) + "\n")
    joined = " ".join([tool, *argv])
    rule = next((r for r in state["rules"] if _applies(r, tool, joined, flags)), {})
    if rule.get("set"):
        flags.update(rule["set"])
        with open(flags_file, "wb") as f:
            marshal.dump(flags, f)
    # After its effects: a `pulumi up` that fails has created the cluster all the same.
    if any(f in joined for f in flags.get("fail", [])):
        print(f"fake {tool}: failing as told ({joined})", file=sys.stderr)
        return 1
    if rule.get("file") and "-o" in argv:
        with open(rule["file"], "rb") as src, open(argv[argv.index("-o") + 1], "wb") as dst:
            dst.write(src.read())
    if rule.get("stdout_file"):
        with open(rule["stdout_file"]) as f:
            out = f.read()
    else:
        out = rule.get("stdout", "")
    sys.stdout.write(out)
    sys.stderr.write(rule.get("stderr", ""))
    sys.stdout.flush()
    if rule.get("hold"):
        time.sleep(120)
    return int(rule.get("exit", 0))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
