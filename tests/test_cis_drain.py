"""The destroy-time wait for CIS to drain its partition, run for real with bash against a fake
`curl` that plays the BIG-IP's iControl REST answers (GET /mgmt/tm/ltm/virtual)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from components.bigip import drain
from tests.support import fake_tool, run_script

PARTITION = "cpaas-onprem-syd-cis"
PASSWORD = 'pa"ss\\word secret'
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

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


def _drain(
    tmp_path: Path, curl: str, files: dict[str, str], *, ca_pem: str, reference: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """The drain step's script, run as the step runs it, with `curl` faked and answering from `files`."""
    fake = tmp_path / "fake"
    fake.mkdir(parents=True)
    for name, body in files.items():
        (fake / name).write_text(body)
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "curl", curl)
    common = {"url": "https://192.0.2.1:443", "username": "cis-admin", "password": PASSWORD}
    environment = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "FAKE_DIR": str(fake),
        **drain.environment(
            **common, ca_pem=ca_pem, partition=PARTITION, reference=reference, timeout=5, interval=0
        ),
        **env,
    }
    return run_script(drain.INTERPRETER, drain.script(), environment)


def run(tmp_path: Path, answers: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    files = {f"answer.{i}": answer for i, answer in enumerate(answers)}
    return _drain(tmp_path, FAKE_CURL, files, ca_pem=CA_PEM, reference="", env=env)


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


# The wait for one object (CPAAS_DRAIN_REFERENCE): a fake that answers by URL, so each round's
# several calls (virtual servers, LTM policies, one policy's rules) get their own answers.
FAKE_REST = r"""#!/bin/bash
# Plays the BIG-IP by URL: $FAKE_DIR/<key>.<n> answers the n-th call of that URL (the last one
# repeats), <key> being the URL after /mgmt/tm/ with every other character than [A-Za-z0-9] as _.
cat > /dev/null
url=${@: -1}
key=$(printf '%s' "${url#*/mgmt/tm/}" | tr -c 'A-Za-z0-9' '_')
printf '%s\n' "$url" >> "$FAKE_DIR/urls"
n=$(cat "$FAKE_DIR/$key.calls" 2>/dev/null || echo 0)
echo $((n + 1)) > "$FAKE_DIR/$key.calls"
while [ "$n" -gt 0 ] && [ ! -e "$FAKE_DIR/$key.$n" ]; do n=$((n - 1)); done
if [ ! -e "$FAKE_DIR/$key.$n" ]; then
    echo "curl: (22) The requested URL returned error: 404 ($url)" >&2
    exit 22
fi
printf '%s' "$(cat "$FAKE_DIR/$key.$n")"
"""

PROFILE = "/Common/cpaas-onprem-syd-bookinfo-reencrypt"
WAF = "/Common/cpaas-onprem-syd-bookinfo-waf-rapid-deployment"
VIRTUALS = "ltm_virtual_expandSubcollections_true"
POLICIES = "ltm_policy__select_fullPath"


def rules_key(policy: str) -> str:
    url = f"ltm/policy/{policy.replace('/', '~')}/rules?expandSubcollections=true"
    return "".join(c if c.isalnum() else "_" for c in url)


def expanded_virtuals(*profiles_by_vs: tuple[str, tuple[str, ...]]) -> str:
    """ltm/virtual?expandSubcollections=true: each virtual server with its profiles expanded."""
    items = [
        {
            "fullPath": vs,
            "profilesReference": {
                "isSubcollection": True,
                "items": [{"name": p.rsplit("/", 1)[1], "fullPath": p, "context": "all"} for p in profiles],
            },
        }
        for vs, profiles in profiles_by_vs
    ]
    return json.dumps({"kind": "tm:ltm:virtual:virtualcollectionstate", "items": items})


def policies(*paths: str) -> str:
    items = [{"fullPath": p} for p in paths]
    return json.dumps({"kind": "tm:ltm:policy:policycollectionstate", "items": items})


def waf_rules(asm_policy: str | None) -> str:
    """A policy's rules with their actions expanded: AS3 attaches a WAF policy with an asm action."""
    actions = [{"name": "0", "asm": True, "enable": True, "policy": asm_policy}] if asm_policy else []
    rule = {"name": "default", "actionsReference": {"isSubcollection": True, "items": actions}}
    return json.dumps({"kind": "tm:ltm:policy:rules:rulescollectionstate", "items": [rule]})


def run_reference(
    tmp_path: Path, reference: str, answers: dict[str, list[str]], **env: str
) -> subprocess.CompletedProcess[str]:
    files = {f"{key}.{i}": body for key, bodies in answers.items() for i, body in enumerate(bodies)}
    return _drain(tmp_path, FAKE_REST, files, ca_pem="", reference=reference, env=env)


def urls(tmp_path: Path) -> list[str]:
    return (tmp_path / "fake" / "urls").read_text().splitlines()


def test_the_wait_for_one_object_returns_at_once_when_nothing_names_it(tmp_path: Path) -> None:
    answers = {
        VIRTUALS: [expanded_virtuals((f"/{PARTITION}/Shared/bookinfo_443", ("/Common/http",)))],
        POLICIES: [policies()],
    }
    done = run_reference(tmp_path, PROFILE, answers)
    assert done.returncode == 0, done.stderr
    assert PROFILE in done.stdout
    assert urls(tmp_path) == [
        "https://192.0.2.1:443/mgmt/tm/ltm/virtual?expandSubcollections=true",
        "https://192.0.2.1:443/mgmt/tm/ltm/policy?$select=fullPath",
    ]


def test_the_wait_for_a_profile_lasts_until_no_virtual_server_has_it(tmp_path: Path) -> None:
    """A removed app's re-encrypt profile: CIS removes the app's virtual server later."""
    vs = f"/{PARTITION}/Shared/bookinfo_443"
    using = expanded_virtuals((vs, ("/Common/http", PROFILE)))
    answers = {VIRTUALS: [using, using, expanded_virtuals((vs, ("/Common/http",)))], POLICIES: [policies()]}
    done = run_reference(tmp_path, PROFILE, answers)
    assert done.returncode == 0, done.stderr
    assert urls(tmp_path).count("https://192.0.2.1:443/mgmt/tm/ltm/virtual?expandSubcollections=true") == 3


def test_the_wait_for_a_waf_policy_lasts_until_no_ltm_policy_of_the_cis_partition_enables_it(
    tmp_path: Path,
) -> None:
    """AS3 attaches a VirtualServer's `waf` through an LTM policy `_WAF_<vs>` in the tenant whose
    rule enables the WAF policy; after a template change CIS moves it to the new policy later."""
    ltm = f"/{PARTITION}/Shared/_WAF_bookinfo_443"
    answers = {
        VIRTUALS: [expanded_virtuals((f"/{PARTITION}/Shared/bookinfo_443", ("/Common/websecurity",)))],
        POLICIES: [policies(ltm, "/Common/other-policy")],
        rules_key(ltm): [waf_rules(WAF), waf_rules(WAF.replace("rapid-deployment", "fundamental"))],
    }
    done = run_reference(tmp_path, WAF, answers)
    assert done.returncode == 0, done.stderr
    rules_url = (
        f"https://192.0.2.1:443/mgmt/tm/ltm/policy/~{PARTITION}~Shared~_WAF_bookinfo_443/rules"
        "?expandSubcollections=true"
    )
    assert urls(tmp_path).count(rules_url) == 2
    assert not [u for u in urls(tmp_path) if "other-policy" in u]  # only the CIS partition's


def test_a_name_that_merely_starts_alike_is_not_a_reference(tmp_path: Path) -> None:
    vs = (f"/{PARTITION}/Shared/bookinfo_443", (f"{PROFILE}-old", f"/Common/x{PROFILE}"))
    done = run_reference(tmp_path, PROFILE, {VIRTUALS: [expanded_virtuals(vs)], POLICIES: [policies()]})
    assert done.returncode == 0, done.stderr


def test_fails_when_the_object_is_still_named_past_the_timeout(tmp_path: Path) -> None:
    ltm = f"/{PARTITION}/Shared/_WAF_bookinfo_443"
    answers = {VIRTUALS: [expanded_virtuals()], POLICIES: [policies(ltm)], rules_key(ltm): [waf_rules(WAF)]}
    done = run_reference(tmp_path, WAF, answers, CPAAS_DRAIN_TIMEOUT="0")
    assert done.returncode != 0
    message = done.stderr.strip()
    assert f"CIS did not release {WAF} within 0s" in message
    assert "1 reference(s)" in message
    assert "kubectl -n f5-cis logs deploy/f5-bigip-ctlr" in message
    assert f"CPAAS_SKIP_CIS_DRAIN={PARTITION}" in message


def test_fails_with_the_last_error_when_the_references_cannot_be_listed(tmp_path: Path) -> None:
    done = run_reference(tmp_path, WAF, {VIRTUALS: [expanded_virtuals()]}, CPAAS_DRAIN_TIMEOUT="0")
    assert done.returncode != 0
    assert "404" in done.stderr and WAF in done.stderr


def test_the_operator_skip_for_the_partition_also_skips_the_waits_for_its_objects(tmp_path: Path) -> None:
    done = run_reference(tmp_path, WAF, {}, CPAAS_SKIP_CIS_DRAIN=PARTITION)
    assert done.returncode == 0
    assert not (tmp_path / "fake" / "urls").exists()


def test_the_environment_names_the_object_to_wait_for_and_only_then() -> None:
    common = {"url": "https://b", "username": "u", "password": "p", "ca_pem": "", "partition": PARTITION}
    assert drain.environment(**common, reference=WAF)["CPAAS_DRAIN_REFERENCE"] == WAF
    assert "CPAAS_DRAIN_REFERENCE" not in drain.environment(**common)
