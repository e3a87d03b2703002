# SPDX-License-Identifier: GPL-2.0-only
"""Every bundled real boot parses cleanly and replays on the baseline engine.

Expected counts come from the raw text (plain string counting), not from the parser.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from kho_replay.parsers import load
from kho_replay.parsers.debugfs import read_debugfs
from kho_replay.replay.compare.validate import validate
from kho_replay.replay.ops import FAILED, Alloc, DebugfsTable, MemblockDump, Reserve

from .conftest import TRACES

LOGS = sorted(
    p for p in TRACES.glob("*/console*.log*")
    if p.name.startswith("console-kernel") or not any(TRACES.glob(f"{p.parent.name}/console-kernel*"))
)
# The debugfs "reserved" table is read after boot: free_initmem() has since returned the kernel's
# init sections (the "NNNNK init" of the Memory: line) and free_initrd_mem() the initrd, without a
# memblock=debug line.  validate() explains exactly those ranges from the "Freeing ...K" lines;
# _only_after_boot_frees() below checks the same independently.

_API = re.compile(r"\] (memblock_alloc_try_nid|memblock_alloc_try_nid_raw|memblock_alloc_exact_nid_raw"
                  r"|memblock_phys_alloc_range|memblock_alloc_hugetlb): ")


def _text(p: Path) -> str:
    data = p.read_bytes()
    return (gzip.decompress(data) if p.suffix == ".gz" else data).decode("utf-8", "replace")


@pytest.fixture(scope="module", params=LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def parsed(request: pytest.FixtureRequest):
    p: Path = request.param
    return p, _text(p), load(p)


def test_bundled_traces_exist() -> None:
    assert len(LOGS) >= 8


def _outside_sections(text: str) -> list[str]:
    """Lines outside the capture script's ===== BEGIN/END ===== sections (which quote dmesg)."""
    out, inside = [], False
    for ln in text.splitlines():
        if "===== BEGIN " in ln:
            inside = True
        elif "===== END =====" in ln:
            inside = False
        elif not inside:
            out.append(ln)
    return out


def test_counts_match_the_raw_text(parsed) -> None:
    _p, text, trace = parsed
    kernel_lines = [ln for ln in _outside_sections(text) if re.match(r"^\S*\[\s*\d+\.\d+\] ", ln)]
    reservations = sum("memblock_alloc_range_nid+" in ln or "memblock_alloc_hugetlb+" in ln for ln in kernel_lines)
    api_lines = sum(bool(_API.search(ln)) for ln in kernel_lines)
    dumps = sum(ln.endswith("] MEMBLOCK configuration:") for ln in kernel_lines)
    allocs = [o for o in trace.ops if isinstance(o, Alloc)]
    with_address = [a for a in allocs if isinstance(a.expect, int)]
    cma_retries = [a for a in allocs if a.inferred and a.expect == FAILED]
    assert len(with_address) == reservations
    assert len([a for a in allocs if not a.inferred]) == api_lines
    assert all(a.expect is not None for a in allocs)
    assert sum(isinstance(o, MemblockDump) for o in trace.observations) == dumps
    assert not cma_retries or all("cma" in a.inferred for a in cma_retries)
    assert trace.skipped == ()
    assert trace.context.release and trace.context.arch in ("x86_64", "arm64")


def test_every_inferred_op_says_why(parsed) -> None:
    _, _, trace = parsed
    inferred = [o for o in trace.ops if o.inferred is not None]
    assert inferred and all(len(o.inferred) > 10 for o in inferred)


def test_validates_on_the_baseline_engine(parsed) -> None:
    _p, _, trace = parsed
    report = validate(trace)
    assert report.panic is None
    assert report.allocations_ok == report.allocations > 0, report.summary()
    assert report.dumps_ok == report.dumps > 0, report.summary()
    assert report.memory_lines_ok == report.memory_lines, report.summary()
    # validate() itself accounts for free_initmem()/free_initrd_mem(): every table must match.
    assert report.mismatches == [], report.summary()
    assert report.ok and report.debugfs_ok == report.debugfs, report.summary()
    if report.after_boot_frees:
        assert report.debugfs > 0 and len(report.after_boot_frees) == 2, report.summary()
    for table in (o for o in trace.observations if isinstance(o, DebugfsTable) and o.name == "reserved"):
        _only_after_boot_frees(trace, table, report.model)


def _only_after_boot_frees(trace, table: DebugfsTable, model) -> None:
    """Every region where debugfs and the model differ lies in the kernel image or initrd reservation.

    free_initmem() and free_initrd_mem() remove those from memblock.reserved (ARCH_KEEP_MEMBLOCK) with
    no memblock=debug line, at byte ranges the log does not give.
    """
    spans = [(o.base, o.base + o.size) for o in trace.ops
             if isinstance(o, Reserve) and (o.caller or "").startswith("arm64_memblock_init+")]
    assert spans, "expected the kernel image and initrd reservations of arm64_memblock_init()"
    got = {(r.base, r.size, int(r.flags)) for r in model.reserved}
    want = {(r.base, r.size, r.flags) for r in table.regions}
    merged: list[list[int]] = []
    for b, e in sorted(spans):
        if merged and b <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([b, e])
    for base, size, _ in got ^ want:
        assert any(b <= base and base + size <= e for b, e in merged), hex(base)


def test_debugfs_directory_is_one_input() -> None:
    d = TRACES / "arm64-debian-7.2.13-4G"
    t = read_debugfs(d)
    tables = {o.name: o for o in t.observations if isinstance(o, DebugfsTable)}
    rows = [ln for ln in (d / "memblock-reserved.txt").read_text().splitlines() if ln.strip()]
    assert set(tables) == {"memory", "reserved"} and len(tables["reserved"].regions) == len(rows)
