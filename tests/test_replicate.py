"""tools.replicate: a new unit derived from an existing one, allocated from the address plan.

Every test works on copies of the stack files in tmp_path; the real Pulumi.*.yaml stay untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import config
from tests import support
from tools import render, replicate, stackfile, yamledit

REAL_STACK_FILES = sorted(support.ROOT.glob("Pulumi*.yaml"))


MARK = "by tools.replicate."  # the comment the tool writes above each unit it adds


def _replicated_into(before: str, after: str) -> bool:
    """Whether a replication was written between the two texts of a real stack file (one the
    tool was really run on already carries the mark)."""
    return after.count(MARK) > before.count(MARK)


@pytest.fixture(autouse=True)
def real_stack_files_stay_untouched() -> Iterator[None]:
    # Not a byte comparison: others may edit the real files while the suite runs.
    before = {path: path.read_text() for path in REAL_STACK_FILES}
    yield
    for path, text in before.items():
        assert not _replicated_into(text, path.read_text()), f"a test wrote into {path}"


def test_a_real_stack_file_the_tool_was_really_run_on_fails_no_test() -> None:
    replicated = "units:\n    # Replicated from aws-syd by tools.replicate.\n    - name: aws-mel\n"
    assert not _replicated_into(replicated, replicated)
    assert not _replicated_into(replicated, replicated + "    # an edit\n")
    assert _replicated_into("units:\n", replicated)
    assert _replicated_into(replicated, replicated + "    # Replicated from x by tools.replicate.\n")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with copies of the stack files, which the tool and the renderer use."""
    root = tmp_path / "project"
    root.mkdir()
    for path in REAL_STACK_FILES:
        (root / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(replicate, "ROOT", root)
    monkeypatch.setattr(render, "ROOT", root)
    return root


def _replicate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    argv = list(args) if "--stack" in args else ["--stack", "prod", *args]
    try:
        code = replicate.main(argv)
    except SystemExit as exc:  # argparse refusals
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _stack(root: Path, name: str = "prod") -> config.StackConfig:
    path = root / f"Pulumi.{name}.yaml"
    return config.parse_stack(replicate.raw_config(path.read_text(), path.name))


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


def _addresses(unit: config.Unit) -> list[IPv4Address]:
    out: list[IPv4Address] = []
    if unit.bigip is not None:
        out += [unit.bigip.management_address, *unit.bigip.self_ips, *unit.bigip.bgp_neighbors]
    if unit.egress is not None:
        out += [unit.egress.vip, unit.egress.forward_proxy.address, *unit.egress.snat_addresses]
    return out + [app.vip for app in unit.apps]


def _without_bigip(block: str) -> str:
    """The block without its comment lines and its units[].bigip mapping."""
    kept, inside = [], False
    for line in block.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.startswith("      bigip:"):
            inside = True
        elif inside and not line.startswith("        "):
            inside = False
        if not inside:
            kept.append(line)
    return "\n".join(kept)


def _shape(block: str) -> list[str]:
    """Indentation, keys and flow markers of a YAML block, without the values."""
    return [re.sub(r"(:)\s.*$", r"\1", line) for line in block.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------
# One replication
# ---------------------------------------------------------------------------------------------


def test_one_replication_of_onprem_syd_validates_with_disjoint_ranges_a_fresh_asn_and_partitions(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _replicate(capsys, "--unit", "onprem-syd", "--name", "onprem-mel", "--region", "mel-dc1")
    assert code == 0, err
    stack = _stack(project)
    new, source = stack.unit("onprem-mel"), stack.unit("onprem-syd")
    others = [u for u in stack.units if u.name != "onprem-mel"]
    assert (new.cloud, new.region) == ("onprem", "mel-dc1")

    # The first /16 of 10.0.0.0/8 holding nothing (10.0/16 has the GSLB device), same offsets.
    assert str(new.network.node_cidr) == "10.1.0.0/20"
    assert str(new.network.pod_cidr) == "10.1.64.0/18"
    assert str(new.network.service_cidr) == "172.16.0.0/16"
    assert new.bigip is not None and source.bigip is not None
    assert [str(a) for a in new.bigip.bgp_neighbors] == ["10.1.0.11", "10.1.0.12", "10.1.0.13"]
    assert [str(a) for a in new.bigip.self_ips] == ["10.1.0.245", "10.1.0.246"]
    assert str(new.bigip.management_address) == "10.1.16.10"
    assert [str(a.vip) for a in new.apps] == ["10.1.17.10", "10.1.17.11", "10.1.17.12", "10.1.17.13"]

    mine = [new.network.node_cidr, new.network.pod_cidr, new.network.service_cidr]
    for other in others:
        theirs = [other.network.node_cidr, other.network.pod_cidr, other.network.service_cidr]
        assert not any(a.overlaps(b) for a in mine for b in theirs), other.name
        assert not set(_addresses(new)) & set(_addresses(other)), other.name
    assert all(any(a in net for net in (IPv4Network("10.1.0.0/16"),)) for a in _addresses(new))

    taken = {u.bigip.asn for u in others if u.bigip} | {64512}
    assert new.bigip.asn == 64514 and new.bigip.asn not in taken
    assert isinstance(new.network.cni, config.CalicoBgp) and new.network.cni.asn == 64512  # the cluster's
    assert (new.bigip.cis_partition, new.bigip.pulumi_partition) == (
        "cpaas-onprem-mel-cis",
        "cpaas-onprem-mel",
    )
    assert new.mesh.trust_domain == "onprem-mel.cpaas.example-bank.com"
    assert new.bigip.password_secret == "bigipPassword-onprem-mel"
    assert new.bigip.trusted_cert_file == "trust/prod/bigip-onprem-mel.pem"
    assert isinstance(new.cluster, config.KubeconfigCluster)
    assert new.cluster.kubeconfig_secret == "kubeconfig-onprem-mel"


def test_a_stack_text_read_twice_gives_two_independent_documents_that_write_it_back_unchanged() -> None:
    text = (support.ROOT / "Pulumi.prod.yaml").read_text()
    first, second = yamledit.load(text), yamledit.load(text)
    assert first is not second
    first["config"]["cpaas:units"][0]["name"] = "changed"
    first["config"].yaml_set_comment_before_after_key("cpaas:units", before="a new comment")
    assert yamledit.dump(second) == text == yamledit.dump(yamledit.load(text))
    assert "changed" in yamledit.dump(first) and "a new comment" in yamledit.dump(first)


def test_one_replication_keeps_comments_key_order_and_flow_style_of_the_file(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (project / "Pulumi.prod.yaml").read_text()
    assert _replicate(capsys, "--unit", "onprem-syd", "--name", "onprem-mel")[0] == 0
    after = (project / "Pulumi.prod.yaml").read_text()

    head, gslb, tail = before.partition("  cpaas:gslb:\n")
    assert after.startswith(head)  # every comment and key of the header and the three units
    inserted = after[len(head) : after.index(gslb)]
    rest = after[after.index(gslb) :]
    assert rest.replace(", onprem-mel]", "]").replace(", onprem-mel: 2}", "}") == gslb + tail

    comment, _, unit_text = inserted.partition("\n")
    assert comment == "    # Replicated from onprem-syd by tools.replicate."
    source_text = head[head.index("    - name: onprem-syd\n") : head.index("    - name: onprem-syd-b\n")]
    # Key order, nesting, flow style, quoting; but the BIG-IP: onprem-syd is on a shared device, the
    # new unit gets a BIG-IP of its own (--device new).
    assert _shape(_without_bigip(unit_text)) == _shape(_without_bigip(source_text))
    assert "      bigip:\n        managementAddress: 10.1.16.10\n" in unit_text
    assert '        kubernetesVersion: "1.34"' in unit_text
    assert unit_text.count("        - {name: ") == 3


def test_one_replication_adds_the_unit_to_gslb_with_the_source_ratio(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _replicate(capsys, "--unit", "aws-syd", "--name", "aws-mel")[0] == 0
    stack = _stack(project)
    assert stack.gslb is not None
    wide = {w.app: w for w in stack.gslb.wide_ips}
    assert wide["bookinfo"].units == ("onprem-syd", "aws-syd", "azure-mel", "aws-mel")
    assert dict(wide["mqtt"].ratios) == {"onprem-syd": 2, "aws-syd": 1, "azure-mel": 1, "aws-mel": 1}
    assert wide["httpbin"].units == ()  # lists no units: serves every unit with the app anyway


def test_the_output_names_what_was_allocated_and_the_config_keys_to_set(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _replicate(
        capsys, "--unit", "aws-syd", "--name", "aws-mel", "--region", "ap-southeast-4"
    )
    assert code == 0 and err == ""
    assert out.startswith(
        "replicate: added unit aws-mel (aws, ap-southeast-4) from aws-syd to Pulumi.prod.yaml"
    )
    assert "site block: 10.1.0.0/16" in out
    assert "service block: 172.16.0.0/16" in out
    assert "BIG-IP: ASN 64514, partitions cpaas-aws-mel-cis, cpaas-aws-mel" in out
    assert "GSLB: joins bookinfo, mqtt (ratio 1)" in out
    assert "pulumi config set --secret -s prod cpaas:bigipPassword-aws-mel\n" in out
    assert "pulumi config set --secret -s prod cpaas:kubeconfig-aws-mel < kubeconfig\n" in out
    assert "commit the BIG-IP's management certificate (PEM) as trust/prod/bigip-aws-mel.pem\n" in out


def test_a_stack_reference_source_points_at_a_placeholder_stack_and_says_so(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _replicate(
        capsys, "--unit", "azure-mel", "--name", "azure-syd", "--region", "australiaeast"
    )
    assert code == 0
    cluster = _stack(project).unit("azure-syd").cluster
    assert isinstance(cluster, config.StackReferenceCluster)
    assert cluster.stack == "example-bank/aks-clusters/TODO-azure-syd"
    assert "note: cluster.stack is a placeholder, example-bank/aks-clusters/TODO-azure-syd" in out
    assert "kubeconfig-azure-syd" not in out  # its kubeconfig is a stack output, not a secret


def test_a_trailing_comment_before_the_next_key_stays_before_that_key(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project / "Pulumi.prod.yaml"
    path.write_text(
        path.read_text().replace("  cpaas:gslb:\n", "  # F5 DNS across the units\n  cpaas:gslb:\n")
    )
    assert _replicate(capsys, "--unit", "aws-syd", "--name", "aws-mel")[0] == 0
    text = path.read_text()
    assert "  # F5 DNS across the units\n  cpaas:gslb:\n" in text
    assert text.index("    - name: aws-mel") < text.index("  # F5 DNS across the units")


def test_a_shared_forward_proxy_is_kept_and_flagged_when_the_cloud_changes() -> None:
    raw = support.raw_stack("prod")
    raw["units"][0]["egress"]["forwardProxy"]["address"] = "10.0.3.128"  # a central proxy
    replica = replicate.derive(raw, "aws-syd", "azure-per", cloud="azure")
    assert replica["unit"]["egress"]["forwardProxy"]["address"] == "10.0.3.128"
    assert replica["unit"]["egress"]["vip"] == "10.1.17.100"
    [note] = [n for n in replica["notes"] if "shared" in n]
    assert "egress.forwardProxy.address 10.0.3.128" in note
    assert "azure-per is in azure, aws-syd in aws: check they are reachable" in note
    same_cloud = replicate.derive(raw, "aws-syd", "aws-per")
    assert not [n for n in same_cloud["notes"] if "reachable" in n]


def test_a_referenced_waf_policy_is_kept_and_named_in_a_note() -> None:
    raw = support.raw_stack("prod")
    raw["units"][0]["apps"][0]["waf"] = {"policy": "/Common/bookinfo-waf"}
    replica = replicate.derive(raw, "aws-syd", "aws-per")
    assert replica["unit"]["apps"][0]["waf"] == {"policy": "/Common/bookinfo-waf"}
    assert (
        "WAF policies /Common/bookinfo-waf are referenced, not created: they must exist on aws-per's BIG-IP"
        in replica["notes"]
    )


def test_derive_takes_a_stack_config_or_the_raw_keys_and_apply_gives_a_valid_stack() -> None:
    raw = support.raw_stack("prod")
    from_raw = replicate.derive(raw, "onprem-syd", "onprem-mel")
    from_model = replicate.derive(support.stack("prod"), "onprem-syd", "onprem-mel")
    assert from_raw == from_model
    grown = config.parse_stack(replicate.apply(raw, from_raw))
    assert [u.name for u in grown.units][-1] == "onprem-mel"
    assert raw == support.raw_stack("prod")  # derive and apply change nothing they are given


# ---------------------------------------------------------------------------------------------
# Repeated calls
# ---------------------------------------------------------------------------------------------


def test_prod_grows_to_16_units_by_repeated_calls_and_the_result_is_a_valid_stack(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clouds = ["aws", "azure", "gcp", "onprem"]
    total = 16 - len(support.stack("prod").units)

    def source(i: int) -> str:
        # Alternate the three original units and, every fourth time, the previous replica.
        return f"unit-{i - 1:02d}" if i % 4 == 3 else ["aws-syd", "azure-mel", "onprem-syd"][i % 3]

    # All but four in one pass through the tool's functions (a CLI call re-reads a file that
    # grows each time, about 0.3 s a call at this size), then the CLI calls that fill the plan.
    path = project / "Pulumi.prod.yaml"
    doc = yamledit.load(path.read_text())
    raw = stackfile.document_raw(doc)
    for i in range(total - 4):
        like = next(u for u in doc["config"]["cpaas:units"] if u["name"] == source(i))
        replica = replicate.derive(raw, source(i), f"unit-{i:02d}", clouds[i % 4])
        replicate.edit_document(doc, replica, like)
        raw = replicate.apply(raw, replica)
    path.write_text(yamledit.dump(doc))
    for i in range(total - 4, total):
        code, _, err = _replicate(
            capsys, "--unit", source(i), "--name", f"unit-{i:02d}", "--cloud", clouds[i % 4]
        )
        assert code == 0, f"unit-{i:02d}: {err}"

    stack = _stack(project)
    assert len(stack.units) == 16
    bigips = [u.bigip for u in stack.units if u.bigip is not None]
    assert len({b.asn for b in bigips}) == 15  # onprem-syd and onprem-syd-b share their device's
    assert len({b.cis_partition for b in bigips} | {b.pulumi_partition for b in bigips}) == 32
    assert len({u.mesh.trust_domain for u in stack.units}) == 16
    assert {str(u.network.service_cidr) for u in stack.units} == {f"172.{n}.0.0/16" for n in range(16, 32)}
    assert stack.gslb is not None and len(stack.gslb.wide_ips[0].units) == 15  # not onprem-syd-b: no bookinfo

    # The 16 service blocks of 172.16.0.0/12 are all taken now.
    before = _files(project)
    code, _, err = _replicate(capsys, "--unit", "aws-syd", "--name", "unit-16")
    assert code == 2
    assert "exhausted" in err and "serviceBlocks 172.16.0.0/12" in err
    assert _files(project) == before

    # The file as `pulumi up` and the render read it passes every config rule. (A 16-unit stack grown
    # by the same replication functions is built, rendered and validated once per session for the
    # other scale tests: conftest.py sixteen_prod.)
    checked = render.check("prod")
    assert [u.name for u in checked.stack.units] == [u.name for u in stack.units]


# ---------------------------------------------------------------------------------------------
# --to: the new unit's own stack (README "Scaling past one stack"), and every stack's addresses
# ---------------------------------------------------------------------------------------------

ORG = ("--org", "example-bank")
PLAN_KEYS = ["cpaas:environment", "cpaas:pki", "cpaas:addressPlan", "cpaas:units"]
COMMAND = re.compile(r"^    pulumi config set( --secret)? -s (\S+) cpaas:(\S+)", re.M)


def _unit_stack_file(root: Path, stack: str, unit: dict[str, Any]) -> None:
    """A unit stack sharing prod's address plan that no GSLB lists (made by hand, not by --to)."""
    prod = support.raw_stack("prod")
    keys = {"environment": "prod", "pki": prod["pki"], "addressPlan": prod["addressPlan"], "units": [unit]}
    doc = {"config": {f"cpaas:{k}": v for k, v in keys.items()}}
    (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture
def lab(project: Path) -> config.Unit:
    """Pulumi.lab.yaml: unit onprem-mel in prod's first free block, 10.1.0.0/16, ASN 64514."""
    unit = replicate.derive(support.raw_stack("prod"), "onprem-syd", "onprem-mel")["unit"]
    _unit_stack_file(project, "lab", unit)
    return _stack(project, "lab").unit("onprem-mel")


def _blocks(unit: config.Unit) -> tuple[IPv4Network, IPv4Network, int | None]:
    site = unit.network.node_cidr.supernet(new_prefix=16)
    return site, unit.network.service_cidr, unit.bigip.asn if unit.bigip else None


def test_to_makes_a_stack_holding_only_the_new_unit_with_no_salt_and_no_ciphertexts(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prod_path = project / "Pulumi.prod.yaml"
    prod_path.write_text(
        "secretsprovider: awskms://alias/cpaas?region=ap-southeast-2\n"
        "encryptedkey: AQICAHhbm90LXJlYWw=\n"
        "encryptionsalt: v1:c2FsdA==:v1:bm90LXJlYWw=\n"
        + prod_path.read_text()
        + "  cpaas:bigipPassword-aws-syd:\n    secure: v1:bm90LXJlYWw=:v1:Y2lwaGVy\n"
    )
    code, out, err = _replicate(
        capsys, "--unit", "onprem-syd", "--name", "onprem-mel", "--to", "prod-mel", *ORG
    )
    assert code == 0, err
    text = (project / "Pulumi.prod-mel.yaml").read_text()
    doc = yaml.safe_load(text)
    assert list(doc) == ["config"]
    assert list(doc["config"]) == PLAN_KEYS
    for copied in ("secure", "v1:", "encryptionsalt", "encryptedkey", "secretsprovider", "aws-syd"):
        assert copied not in text, copied

    prod, new = _stack(project), _stack(project, "prod-mel")
    assert [u.name for u in new.units] == ["onprem-mel"] and new.gslb is None
    assert new.environment == prod.environment and new.address_plan == prod.address_plan
    # One org root for every unit: the unit stack imports it, it never generates its own.
    assert prod.pki is not None and new.pki is not None
    assert isinstance(new.pki.root, config.ImportedRoot)
    assert new.pki.model_dump(exclude={"root"}) == prod.pki.model_dump(exclude={"root"})

    ref = "example-bank/cpaas/prod-mel"
    assert (
        f"    pulumi stack init {ref} --secrets-provider 'awskms://alias/cpaas?region=ap-southeast-2'\n"
        in out
    )
    commands = {key: bool(secret) for secret, stack, key in COMMAND.findall(out) if stack == ref}
    assert commands == {**dict.fromkeys(new.secret_keys(), True), **dict.fromkeys(new.plain_keys(), False)}
    assert f"pulumi config set --secret -s {ref} cpaas:kubeconfig-onprem-mel < kubeconfig\n" in out
    assert "pulumi stack output -s prod rootCertPem" in out  # where the generated root is
    assert "commit the BIG-IP's management certificate (PEM) as trust/prod/bigip-onprem-mel.pem" in out


def test_to_from_the_single_stack_shape_lists_the_new_stack_under_the_sources_gslb(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (project / "Pulumi.prod.yaml").read_text()
    units = _stack(project).units
    code, out, err = _replicate(
        capsys, "--unit", "onprem-syd", "--name", "onprem-mel", "--to", "prod-mel", *ORG
    )
    assert code == 0, err
    after = (project / "Pulumi.prod.yaml").read_text()
    assert after.startswith(before.partition("  cpaas:gslb:\n")[0])  # comments and units kept
    assert after.endswith("    unitStacks:\n      onprem-mel: example-bank/cpaas/prod-mel\n")

    prod = _stack(project)
    assert prod.units == units and prod.gslb is not None
    assert dict(prod.gslb.unit_stacks) == {"onprem-mel": "example-bank/cpaas/prod-mel"}
    wide = {w.app: w for w in prod.gslb.wide_ips}
    assert wide["bookinfo"].units == ("onprem-syd", "aws-syd", "azure-mel", "onprem-mel")
    assert wide["mqtt"].ratios["onprem-mel"] == 2
    assert "GSLB: Pulumi.prod.yaml lists onprem-mel in gslb.unitStacks as example-bank/cpaas/prod-mel" in out


def test_to_from_a_unit_stack_edits_the_gslb_stack_that_lists_the_source_unit(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        _replicate(capsys, "--unit", "onprem-syd", "--name", "onprem-mel", "--to", "prod-mel", *ORG)[0] == 0
    )
    mel = (project / "Pulumi.prod-mel.yaml").read_bytes()
    # No --org: the GSLB stack's entry for onprem-mel names the organization.
    code, _, err = _replicate(
        capsys, "--stack", "prod-mel", "--unit", "onprem-mel", "--name", "onprem-per", "--to", "prod-per"
    )
    assert code == 0, err
    assert (project / "Pulumi.prod-mel.yaml").read_bytes() == mel
    gslb = _stack(project).gslb
    assert gslb is not None
    assert dict(gslb.unit_stacks) == {
        "onprem-mel": "example-bank/cpaas/prod-mel",
        "onprem-per": "example-bank/cpaas/prod-per",
    }
    assert gslb.wide_ips[0].units[-2:] == ("onprem-mel", "onprem-per")

    # Without --to the unit joins its source's stack, which the GSLB stack already names.
    code, _, err = _replicate(capsys, "--stack", "prod-mel", "--unit", "onprem-mel", "--name", "onprem-bne")
    assert code == 0, err
    assert [u.name for u in _stack(project, "prod-mel").units] == ["onprem-mel", "onprem-bne"]
    gslb = _stack(project).gslb
    assert gslb is not None and gslb.unit_stacks["onprem-bne"] == "example-bank/cpaas/prod-mel"


def test_two_to_runs_into_two_new_stacks_never_get_the_same_block_asn_or_partition(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [
        ("--unit", "onprem-syd", "--name", "onprem-mel", "--to", "prod-mel", *ORG),
        ("--unit", "aws-syd", "--name", "aws-per", "--to", "prod-per"),
        ("--stack", "prod-mel", "--unit", "onprem-mel", "--name", "onprem-bne", "--to", "prod-bne"),
    ]
    for args in runs:
        code, _, err = _replicate(capsys, *args)
        assert code == 0, err
    units = [u for name in ("prod", "prod-mel", "prod-per", "prod-bne") for u in _stack(project, name).units]
    assert len(units) == 7
    sites, services, asns = zip(*map(_blocks, units), strict=True)
    assert len(set(sites)) == len(set(services)) == 7
    assert len(set(asns)) == 6  # onprem-syd and onprem-syd-b share their device's ASN
    partitions = [p for u in units if u.bigip for p in (u.bigip.cis_partition, u.bigip.pulumi_partition)]
    assert len(set(partitions)) == len(partitions)


def test_allocation_sees_every_stack_file_sharing_the_address_plan(
    project: Path, capsys: pytest.CaptureFixture[str], lab: config.Unit
) -> None:
    assert _blocks(lab) == (IPv4Network("10.1.0.0/16"), IPv4Network("172.16.0.0/16"), 64514)
    code, _, err = _replicate(capsys, "--unit", "aws-syd", "--name", "aws-mel")
    assert code == 0, err
    new = _stack(project).unit("aws-mel")
    assert _blocks(new) == (IPv4Network("10.2.0.0/16"), IPv4Network("172.17.0.0/16"), 64515)


def test_a_stack_with_another_address_plan_is_not_in_the_way(
    project: Path, capsys: pytest.CaptureFixture[str], lab: config.Unit
) -> None:
    path = project / "Pulumi.lab.yaml"
    path.write_text(
        path.read_text().replace(
            "trustDomainSuffix: cpaas.example-bank.com", "trustDomainSuffix: lab.example"
        )
    )
    assert _replicate(capsys, "--unit", "aws-syd", "--name", "aws-mel")[0] == 0
    assert _blocks(_stack(project).unit("aws-mel"))[0] == IPv4Network("10.1.0.0/16")


@pytest.mark.parametrize("to", [(), ("--to", "prod-mel", *ORG)], ids=["into-the-source", "to-a-new-stack"])
def test_fails_a_name_a_unit_of_another_stack_has_with_exit_2_and_nothing_written(
    project: Path, capsys: pytest.CaptureFixture[str], lab: config.Unit, to: tuple[str, ...]
) -> None:
    before = _files(project)
    code, out, err = _replicate(capsys, "--unit", "aws-syd", "--name", "onprem-mel", *to)
    assert code == 2 and out == ""
    assert err == (
        "replicate: --name onprem-mel: unit onprem-mel is in Pulumi.lab.yaml already; choose another name\n"
    )
    assert _files(project) == before


@pytest.mark.parametrize(
    ("args", "renames"),
    [
        # Creates Pulumi.prod-per.yaml, fails on prod; removes the new file.
        (("--unit", "onprem-syd", "--name", "onprem-per", "--to", "prod-per"), 2),
        # Replaces Pulumi.prod-mel.yaml, fails on prod; renames the old prod-mel back.
        (("--stack", "prod-mel", "--unit", "onprem-mel", "--name", "onprem-per"), 3),
    ],
    ids=["new-stack", "existing-stacks"],
)
def test_a_failed_rename_leaves_every_stack_file_as_it_was(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    renames: int,
) -> None:
    import os

    assert (
        _replicate(capsys, "--unit", "onprem-syd", "--name", "onprem-mel", "--to", "prod-mel", *ORG)[0] == 0
    )
    real, calls = os.replace, []

    def flaky(src: Any, dst: Any) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(src, dst)

    before = _files(project)
    monkeypatch.setattr(os, "replace", flaky)
    code, out, err = _replicate(capsys, *args)
    assert len(calls) == renames
    assert code == 1 and out == ""
    assert "No space left on device" in err and "nothing changed" in err
    assert _files(project) == before  # byte-identical, no new file, no temporary file


def test_the_new_unit_stack_and_the_gslb_stack_render_with_no_violations(
    project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, schema_dir: Path
) -> None:
    assert _replicate(capsys, "--unit", "azure-mel", "--name", "azure-syd", "--to", "prod-syd", *ORG)[0] == 0
    for stack in ("prod-syd", "prod"):
        out = tmp_path / f"render-{stack}"
        code = render.main(["--stack", stack, "--out", str(out), "--schemas", str(schema_dir), "--policy"])
        printed = capsys.readouterr().out
        assert code == 0, printed
        assert "; 0 violation(s)" in printed
        assert re.search(r"^policy: \d+ rules, 0 violation\(s\)$", printed, re.M), printed
    assert (tmp_path / "render-prod-syd" / "k8s" / "azure-syd").is_dir()


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("servicePrefix: 16", "servicePrefix: 14"), "serviceBlocks 172.16.0.0/12"),
        (("sitePrefix: 16", "sitePrefix: 9"), "siteBlocks 10.0.0.0/8"),
        (("bigipAsns: [64513, 65099]", "bigipAsns: [64513, 64514]"), "bigipAsns [64513, 64514]"),
    ],
    ids=["service-blocks", "site-blocks", "bigip-asns"],
)
def test_fails_the_unit_after_the_plan_is_full_with_exit_2_and_the_file_byte_identical(
    project: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str], message: str
) -> None:
    path = project / "Pulumi.prod.yaml"
    text = path.read_text()
    assert edit[0] in text
    path.write_text(text.replace(*edit))  # room for one or two more units

    for k in range(3):
        before = _files(project)
        code, _, err = _replicate(capsys, "--unit", "aws-syd", "--name", f"aws-mel{k}")
        if code != 0:
            break
    assert k > 0 and code == 2 and err.startswith("replicate: the address plan is exhausted")
    assert _files(project) == before
    code, out, err = _replicate(capsys, "--unit", "onprem-syd", "--name", "onprem-mel")
    assert code == 2
    assert out == ""
    assert err.startswith("replicate: the address plan is exhausted") and err.count("\n") == 1
    assert message in err
    assert _files(project) == before  # byte-identical, and no temporary file left behind


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--unit", "nope", "--name", "x"], "--unit nope: no such unit in the stack; its units: aws-syd"),
        (
            ["--unit", "aws-syd", "--name", "azure-mel"],
            "--name azure-mel: unit azure-mel is in Pulumi.prod.yaml already; choose another name",
        ),
        (["--unit", "aws-syd", "--name", "Bad_Name"], "'Bad_Name' is not a DNS-1123 label"),
        (["--unit", "aws-syd", "--name", "a-very-long-unit-name-x"], "unit names are at most 20"),
        (["--unit", "aws-syd", "--name", "x", "--cloud", "mars"], "--cloud 'mars'"),
        (["--unit", "aws-syd", "--name", "x", "--region", "Sydney!"], "--region 'Sydney!'"),
        (["--stack", "dev", "--unit", "dev", "--name", "x"], "has no cpaas:addressPlan"),
        (["--stack", "nope", "--unit", "a", "--name", "x"], "no such stack file; known stacks: dev, prod"),
        (["--unit", "aws-syd"], "the following arguments are required: --name"),
        (["--unit", "aws-syd", "--name", "x", "--to", "prod"], "--to prod: that is the source stack"),
        (["--unit", "aws-syd", "--name", "x", "--to", "dev"], "--to dev: Pulumi.dev.yaml exists"),
        (["--unit", "aws-syd", "--name", "x", "--to", "a/b"], "--to 'a/b': not a Pulumi stack name"),
        (["--unit", "aws-syd", "--name", "x", "--to", "prod-x"], "pass --org ORG"),
        (["--unit", "aws-syd", "--name", "x", "--org", "example-bank"], "--org needs --to"),
    ],
    ids=[
        "unknown-unit",
        "duplicate-name",
        "invalid-name",
        "long-name",
        "bad-cloud",
        "bad-region",
        "no-address-plan",
        "unknown-stack",
        "missing-argument",
        "to-the-source",
        "to-an-existing-stack",
        "to-a-bad-stack-name",
        "to-without-an-organization",
        "org-without-to",
    ],
)
def test_fails_a_bad_argument_with_exit_2_one_line_and_nothing_written(
    project: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    before = _files(project)
    code, out, err = _replicate(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith("replicate: ") and err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err
    assert _files(project) == before


def test_fails_a_name_whose_partition_another_owner_already_has(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _files(project)
    code, _, err = _replicate(capsys, "--unit", "aws-syd", "--name", "gslb")
    assert code == 2
    assert err == (
        "replicate: --name gslb: partition cpaas-gslb is in Pulumi.prod.yaml already; choose another name\n"
    )
    assert _files(project) == before


# ---------------------------------------------------------------------------------------------
# A stack file the one reader refuses (tools.stackfile, as the render and deploy)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda text: text.replace("Example Bank Platform", "Example Bank Plat\xe9form").encode("latin-1"),
            "Pulumi.prod.yaml: line 13, byte 629: 0xe9 is not UTF-8; save the file as UTF-8",
        ),
        (
            lambda text: text.replace(
                "  cpaas:addressPlan:\n", "  cpaas:environment: dev\n  cpaas:addressPlan:\n"
            ),
            "Pulumi.prod.yaml: line 19: key 'cpaas:environment' is already defined at line 7; "
            "Pulumi refuses duplicate keys, keep one",
        ),
        (
            lambda text: text + "  cpaas:bigipPassword-aws-syd: hunter2\n",
            "cpaas:bigipPassword-aws-syd: a secret given as plain text; set it encrypted: "
            "pulumi config set --secret -s prod cpaas:bigipPassword-aws-syd",
        ),
    ],
    ids=["not-utf-8", "duplicate-key", "secret-in-plain-text"],
)
def test_fails_a_stack_file_the_render_refuses_with_exit_2_its_lines_and_nothing_written(
    project: Path, capsys: pytest.CaptureFixture[str], edit: Any, message: str
) -> None:
    path = project / "Pulumi.prod.yaml"
    changed = edit(path.read_text())
    path.write_bytes(changed if isinstance(changed, bytes) else changed.encode())
    before = _files(project)
    code, out, err = _replicate(capsys, "--unit", "aws-syd", "--name", "aws-mel")
    assert code == 2
    assert out == "" and "Traceback" not in err
    lines = err.splitlines()
    assert lines == [
        f"replicate: {message}",
        "replicate: Pulumi.prod.yaml has 1 config error(s); nothing written",
    ]
    assert _files(project) == before


def test_fails_a_bad_cloud_in_words_not_pydantics(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _replicate(capsys, "--unit", "aws-syd", "--name", "x", "--cloud", "mars")
    assert code == 2
    assert err == (
        "replicate: --cloud 'mars': 'mars' is not allowed; use 'local', 'aws', 'azure', 'gcp' or 'onprem'\n"
    )
