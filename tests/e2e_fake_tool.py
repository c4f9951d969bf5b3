"""A stand-in for pulumi, k3d, kubectl, docker and curl in tests/test_e2e.py.

    python e2e_fake_tool.py TOOL ARGS...

Every call is appended to the log as one JSON line (tool, argv, the Pulumi variables it saw). The
answer comes from the first rule in $E2E_FAKE_STATE whose `tool` matches and whose `match`
strings all occur in the joined argv (and whose `when` flags hold): `stdout`/`stdout_file`,
`stderr`, `exit`, `file` (copied to curl's -o target), `set` (flags for later calls) and `hold`
(print, then wait to be killed, as kubectl port-forward does). No rule: exit 0, no output. A call
containing one of the `fail` flag's strings fails (exit 1) after its `set`.
Flags live in a file beside the state, so one call's effect (`pulumi up` creating the cluster)
is seen by the next process.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

LOGGED = ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_SKIP_CONFIRMATIONS")
PRESENT = ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_ACCESS_TOKEN")


def _applies(rule: dict[str, Any], tool: str, joined: str, flags: dict[str, Any]) -> bool:
    return (
        rule["tool"] == tool
        and all(m in joined for m in rule.get("match", []))
        and all(flags.get(k, False) == v for k, v in rule.get("when", {}).items())
    )


def main(tool: str, argv: list[str]) -> int:
    state = json.loads(Path(os.environ["E2E_FAKE_STATE"]).read_text())
    flags_file = Path(state["flags"])
    flags = json.loads(flags_file.read_text()) if flags_file.exists() else {}
    env = {k: os.environ.get(k) for k in LOGGED} | {f"{k} set": k in os.environ for k in PRESENT}
    with open(state["log"], "a") as log:
        log.write(json.dumps({"tool": tool, "argv": argv, "env": env}) + "\n")
    joined = " ".join([tool, *argv])
    rule = next((r for r in state["rules"] if _applies(r, tool, joined, flags)), {})
    if rule.get("set"):
        flags.update(rule["set"])
        flags_file.write_text(json.dumps(flags))
    # After its effects: a `pulumi up` that fails has created the cluster all the same.
    if any(f in joined for f in flags.get("fail", [])):
        print(f"fake {tool}: failing as told ({joined})", file=sys.stderr)
        return 1
    if rule.get("file") and "-o" in argv:
        shutil.copyfile(rule["file"], argv[argv.index("-o") + 1])
    out = Path(rule["stdout_file"]).read_text() if rule.get("stdout_file") else rule.get("stdout", "")
    sys.stdout.write(out)
    sys.stderr.write(rule.get("stderr", ""))
    sys.stdout.flush()
    if rule.get("hold"):
        time.sleep(120)
    return int(rule.get("exit", 0))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
