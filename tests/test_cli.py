# SPDX-License-Identifier: GPL-2.0-only
"""``kho-replay`` through typer's CliRunner: exit codes, stdout and stderr apart."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

from typer.testing import CliRunner

from kho_replay.replay.cli import app
from kho_replay.replay.ops import parse_script

TRACES = Path(__file__).resolve().parents[1] / "traces"
X86 = TRACES / "x86_64-debian-7.2.13-4G" / "console.log"
ARM = TRACES / "arm64-debian-7.2.13-4G" / "console.log.gz"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def test_validate_real_boot_reproduces_every_allocation() -> None:
    r = invoke("validate", X86)
    assert r.exit_code == 0, r.stdout
    want = X86.read_text().count("memblock_alloc_range_nid+")
    assert f"allocations reproduced {want}/{want}" in r.stdout
    assert "dumps matched 2/2" in r.stdout
    assert r.stderr == ""


def test_validate_json_reports_counts() -> None:
    r = invoke("validate", ARM, "--format", "json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["ok"] is True and doc["schema_version"] == 2
    (boot,) = doc["boots"]
    assert boot["allocations"]["matched"] == boot["allocations"]["total"] > 2000
    assert boot["debugfs"] == {"matched": 2, "total": 2}


def test_validate_tampered_log_names_file_line_and_caller(tmp_path: Path) -> None:
    lines = X86.read_text().splitlines(keepends=True)
    # Move one recorded allocation result by a page: the model cannot agree any more.
    idx = next(i for i, ln in enumerate(lines) if "memblock_alloc_range_nid+" in ln and "flags=20" in ln)
    m = re.search(r"\[0x([0-9a-f]{16})-0x([0-9a-f]{16})\]", lines[idx])
    assert m
    base, end = int(m.group(1), 16) - 0x1000, int(m.group(2), 16) - 0x1000
    lines[idx] = lines[idx].replace(m.group(0), f"[{base:#018x}-{end:#018x}]")
    bad = tmp_path / "console.log"
    bad.write_text("".join(lines))
    r = invoke("validate", bad)
    assert r.exit_code == 1
    first = next(ln for ln in r.stdout.splitlines() if "first mismatch" in ln)
    # The request is named by its API line, which stands just before its reservation line.
    assert f"console.log:{idx}:" in first or f"console.log:{idx + 1}:" in first
    assert f"{base:#018x}" in first


def test_validate_debugfs_difference_not_explained_by_frees(tmp_path: Path) -> None:
    # Drop a region that no "Freeing ...K" line accounts for: validate must fail.
    text = gzip.decompress(ARM.read_bytes()).decode()
    i = text.index("memblock-reserved")
    j = text.index("\n", text.index("   5: ", i))
    k = text.rfind("\n", 0, j)
    bad = tmp_path / "console.log"
    bad.write_text(text[:k] + text[j:])
    r = invoke("validate", bad)
    assert r.exit_code == 1
    assert "debugfs tables matched 1/2" in r.stdout


def test_parse_prints_an_op_script_that_reads_back(tmp_path: Path) -> None:
    r = invoke("parse", X86)
    assert r.exit_code == 0
    ops = parse_script(r.stdout)
    assert len(ops) > 100
    assert any(op.inferred for op in ops)
    script = tmp_path / "boot.ops"
    script.write_text(r.stdout)
    again = invoke("parse", script)
    assert again.stdout == r.stdout


def test_parse_skipped_lists_nothing_for_a_clean_log() -> None:
    r = invoke("parse", X86, "--skipped")
    assert r.exit_code == 0
    assert r.stdout.strip().endswith("0 line(s) skipped")


def test_run_json_shape() -> None:
    r = invoke("run", TRACES / "examples" / "doubling.ops", "--format", "json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert set(doc) == {"schema_version", "allocations", "memory", "reserved", "messages", "panic"}
    assert all(a["addr"] is None or len(a["addr"]) == 18 for a in doc["allocations"])
    assert len(doc["reserved"]) > 128  # the example doubles the reserved array
    assert any("reserved is doubled to 256" in m for m in doc["messages"])


def test_missing_file_is_one_line_exit_2(tmp_path: Path) -> None:
    for cmd in ("run", "validate", "parse"):
        r = invoke(cmd, tmp_path / "nope.log")
        assert r.exit_code == 2
        assert r.stdout == ""
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("kho-replay: error: ")
        assert "Traceback" not in r.stderr


def test_bad_op_script_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.ops"
    p.write_text("add 0x1000 4K\nreserve 0x2000 banana\n")
    r = invoke("run", p)
    assert r.exit_code == 2
    assert r.stderr.startswith(f"kho-replay: error: {p}:2:")


def test_validate_a_log_of_two_boots_checks_each() -> None:
    log = TRACES / "x86_64-kho-7.2.13-B-8G-hugepages1G2-defaultscale-scratchfail" / "console.log.gz"
    r = invoke("validate", log, "--format", "json")
    assert r.exit_code == 0, r.stdout
    doc = json.loads(r.stdout)
    assert [b["boot"] for b in doc["boots"]] == [1, 2]
    assert all(b["ok"] and b["allocations"]["matched"] == b["allocations"]["total"] > 100 for b in doc["boots"])
    # The same as validating each kernel's own capture.
    k2 = invoke("validate", log.parent / "console-kernel2.log.gz", "--format", "json")
    assert json.loads(k2.stdout)["boots"][0]["allocations"] == doc["boots"][1]["allocations"]


def test_validate_a_boot_directory_and_a_bare_dump(tmp_path: Path) -> None:
    d = TRACES / "arm64-debian-7.2.13-4G"
    r = invoke("validate", d)
    assert r.exit_code == 0
    assert "debugfs tables matched 2/2" in r.stdout
    bare = tmp_path / "dump"
    bare.mkdir()
    for f in ("memblock-memory.txt", "memblock-reserved.txt"):
        (bare / f).write_bytes((d / f).read_bytes())
    r = invoke("validate", bare)
    # tables alone are state, not a boot: a stated partial with nothing to check (issue 12)
    assert r.exit_code == 0
    assert "partial: 0 of 0 allocations checkable; no memblock operations" in r.stdout
