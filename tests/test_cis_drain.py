"""The destroy-time wait for CIS to drain its partition, run for real with bash against a fake
`curl` that plays the BIG-IP's iControl REST answers (GET /mgmt/tm/ltm/virtual)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from components.bigip import drain

PARTITION = "cpaas-onprem-syd-cis"
PASSWORD = 'pa"ss\\word secret'

FAKE_CURL = r"""#!/bin/bash
# Plays the BIG-IP: answers from $FAKE_DIR/answers (one file per call, the last one repeats).
n=$(cat "$FAKE_DIR/calls" 2>/dev/null || echo 0)
echo $((n + 1)) > "$FAKE_DIR/calls"
printf '%s\n' "$@" > "$FAKE_DIR/argv.$n"
cat > "$FAKE_DIR/config.$n"
for arg in "$@"; do
    case "$prev" in --cacert) cp "$arg" "$FAKE_DIR/ca.$n" ;; esac
    prev=$arg
done
answers=("$FAKE_DIR"/answer.*)
i=$n
[ "$i" -ge "${#answers[@]}" ] && i=$((${#answers[@]} - 1))
answer=$(cat "$FAKE_DIR/answer.$i")
if [ "$answer" = "FAIL" ]; then
    echo "curl: (7) Failed to connect to 192.0.2.1 port 443: Connection refused" >&2
    exit 7
fi
printf '%s' "$answer"
"""


def virtuals(*paths: str) -> str:
    items = [{"name": p.rsplit("/", 1)[1], "fullPath": p} for p in paths]
    body = {
        "kind": "tm:ltm:virtual:virtualcollectionstate",
        "selfLink": "https://localhost/mgmt/tm/ltm/virtual",
    }
    return json.dumps({**body, "items": items} if items else body)


def run(tmp_path: Path, answers: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "fake"
    fake.mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    curl = bin_dir / "curl"
    curl.write_text(FAKE_CURL)
    curl.chmod(0o755)
    for i, answer in enumerate(answers):
        (fake / f"answer.{i}").write_text(answer)
    environment = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "FAKE_DIR": str(fake),
        **drain.environment(
            url="https://192.0.2.1:443",
            username="cis-admin",
            password=PASSWORD,
            ca_pem="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            partition=PARTITION,
            timeout=5,
            interval=0,
        ),
        **env,
    }
    return subprocess.run(
        [*drain.INTERPRETER, drain.script()],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def calls(tmp_path: Path) -> int:
    path = tmp_path / "fake" / "calls"
    return int(path.read_text()) if path.exists() else 0


def test_an_empty_partition_is_drained_at_once(tmp_path: Path) -> None:
    done = run(tmp_path, [virtuals("/Common/other", "/cpaas-aws-syd-cis/Shared/bookinfo")])
    assert done.returncode == 0, done.stderr
    assert calls(tmp_path) == 1
    argv = (tmp_path / "fake" / "argv.0").read_text().split("\n")
    assert "https://192.0.2.1:443/mgmt/tm/ltm/virtual?$select=fullPath" in argv


def test_it_waits_until_cis_has_removed_its_virtual_servers(tmp_path: Path) -> None:
    busy = virtuals(f"/{PARTITION}/Shared/bookinfo_443", f"/{PARTITION}/Shared/mqtt_1883")
    done = run(tmp_path, [busy, virtuals(f"/{PARTITION}/Shared/mqtt_1883"), virtuals("/Common/other")])
    assert done.returncode == 0, done.stderr
    assert calls(tmp_path) == 3


def test_a_partition_whose_name_starts_alike_is_not_counted(tmp_path: Path) -> None:
    done = run(tmp_path, [virtuals(f"/{PARTITION}-old/Shared/x", f"/{PARTITION}x/y")])
    assert done.returncode == 0, done.stderr


def test_fails_when_cis_leaves_virtual_servers_behind_past_the_timeout(tmp_path: Path) -> None:
    stuck = virtuals(f"/{PARTITION}/Shared/bookinfo_443")
    done = run(tmp_path, [stuck], CPAAS_DRAIN_TIMEOUT="0")
    assert done.returncode != 0
    message = done.stderr.strip()
    assert f"partition {PARTITION} still holds 1 virtual server(s)" in message
    assert "kubectl -n f5-cis logs deploy/f5-bigip-ctlr" in message
    assert f"CPAAS_SKIP_CIS_DRAIN={PARTITION}" in message


def test_fails_with_the_last_error_when_the_bigip_cannot_be_asked(tmp_path: Path) -> None:
    done = run(tmp_path, ["FAIL"], CPAAS_DRAIN_TIMEOUT="0")
    assert done.returncode != 0
    assert "Connection refused" in done.stderr and PARTITION in done.stderr


def test_an_operator_can_skip_the_wait_for_this_partition_only(tmp_path: Path) -> None:
    stuck = virtuals(f"/{PARTITION}/Shared/bookinfo_443")
    done = run(tmp_path, [stuck], CPAAS_SKIP_CIS_DRAIN=PARTITION)
    assert done.returncode == 0 and calls(tmp_path) == 0
    assert f"not waiting for CIS to drain {PARTITION}" in done.stderr
    other = run(tmp_path / "again", [stuck], CPAAS_SKIP_CIS_DRAIN="cpaas-other-cis", CPAAS_DRAIN_TIMEOUT="0")
    assert other.returncode != 0


def test_the_password_goes_to_curl_on_stdin_never_on_its_command_line(tmp_path: Path) -> None:
    done = run(tmp_path, [virtuals()])
    assert done.returncode == 0, done.stderr
    fake = tmp_path / "fake"
    assert PASSWORD not in (fake / "argv.0").read_text()
    config = (fake / "config.0").read_text()
    assert config == 'user = "cis-admin:pa\\"ss\\\\word secret"\n'


def test_the_bigip_certificate_is_verified_against_the_trusted_pem(tmp_path: Path) -> None:
    done = run(tmp_path, [virtuals()])
    assert done.returncode == 0, done.stderr
    argv = (tmp_path / "fake" / "argv.0").read_text().split("\n")
    assert "--cacert" in argv and "--insecure" not in argv
    assert (tmp_path / "fake" / "ca.0").read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_without_a_trusted_pem_it_skips_verification_as_the_unit_is_configured_to(tmp_path: Path) -> None:
    done = run(tmp_path, [virtuals()], CPAAS_BIGIP_CA_PEM="")
    assert done.returncode == 0, done.stderr
    argv = (tmp_path / "fake" / "argv.0").read_text().split("\n")
    assert "--insecure" in argv and "--cacert" not in argv


@pytest.mark.parametrize("value", ["-1", "x", ""])
def test_fails_on_a_timeout_that_is_not_a_number_of_seconds(tmp_path: Path, value: str) -> None:
    done = run(tmp_path, [virtuals()], CPAAS_DRAIN_TIMEOUT=value)
    assert done.returncode != 0 and "CPAAS_DRAIN_TIMEOUT" in done.stderr
