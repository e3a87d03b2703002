# SPDX-License-Identifier: GPL-2.0-only
"""Linux 7.3 KHO boots: ``baseline`` is the trace's kernel, and ``kho --kexec --second`` reproduces RESULT.txt."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from kho_replay.parsers import load
from kho_replay.replay.cli import app
from kho_replay.replay.kho.boot import run_cold
from kho_replay.replay.kho.model import kernel_strategy, memblock_for
from kho_replay.replay.ops import Context, Trace
from kho_replay.replay.profile import profile_for
from kho_replay.replay.strategies import Strategy, get

from .conftest import BUNDLED

SCENARIOS = sorted(p.name for p in BUNDLED.glob("x86_64-kho-7.3.4-*"))
WITH_KERNEL2 = [n for n in SCENARIOS if (BUNDLED / n / "RESULT.txt").read_text().count("k2=") and
                "1G pages k1=0" not in (BUNDLED / n / "RESULT.txt").read_text()]
_SCRATCH = re.compile(r"^\s+(lowmem|global|node\d+)\s+(\d+) MiB at \[(0x[0-9a-f]+)-(0x[0-9a-f]+)\]", re.M)
_PAGES = re.compile(r"1G pages k1=\d+ \[[^\]]*\] at ([0-9a-fx,-]+); k2=\d+ \[[^\]]*\] at ([0-9a-fx,-]+)")


def _result(name: str) -> tuple[list[list[str]], list[str], list[str]]:
    """RESULT.txt: kernel 1's scratch areas (name, base, size) and both kernels' gigantic pages."""
    text = (BUNDLED / name / "RESULT.txt").read_text()
    areas = [[n, b, hex(int(e, 16) + 1 - int(b, 16))] for n, _mib, b, e in _SCRATCH.findall(text)]
    m = _PAGES.search(text)
    assert m, f"{name}: no gigantic page summary in RESULT.txt"
    k1, k2 = ([] if s == "-" else s.split(",") for s in m.groups())
    return areas, k1, k2


def _log(name: str, kernel: int) -> str:
    return str(BUNDLED / name / f"console-kernel{kernel}.log.gz")


def test_scenarios_bundled() -> None:
    assert len(SCENARIOS) == 4 and len(WITH_KERNEL2) == 3


@pytest.mark.parametrize("name", WITH_KERNEL2)
def test_kho_kexec_second_reproduces_result_txt(name: str) -> None:
    areas, k1, k2 = _result(name)
    r = CliRunner().invoke(app, ["kho", _log(name, 1), "-s", "baseline", "--kexec", "--preserve", "log",
                                 "--second", _log(name, 2), "--format", "json"])
    assert r.exit_code == 0, r.output
    cold, kx = json.loads(r.stdout)["outcomes"]
    assert cold["scratch"]["failed"] is None
    got = [[a["name"], hex(int(a["base"], 16)), hex(a["size"])] for a in cold["scratch"]["areas"]]
    assert sorted(got) == sorted(areas)
    assert [hex(int(a, 16)) for a in cold["gigantic"]["addrs"]] == k1
    assert kx["kho_boot"] and [hex(int(a, 16)) for a in kx["gigantic"]["addrs"]] == k2


def test_baseline_is_the_trace_kernel() -> None:
    # the same 7.3 boot: baseline reserves scratch (7.3 subtracts hugetlb); the 7.2 kernel would fail
    t = load(_log("x86_64-kho-7.3.4-B-8G-hugepages1G2-defaultscale", 1))
    got = run_cold(t, "baseline")
    assert got.scratch.failed is None and got.scratch.lowmem >> 20 == 164 and got.scratch.global_ >> 20 == 404
    as72 = run_cold(t, "baseline", kernel="7.2.13")
    assert as72.scratch.failed == "global" and not as72.scratch.enabled


def test_kernel_strategy_reads_the_profile() -> None:
    b73 = kernel_strategy(get("baseline"), profile_for("7.3.4"))
    assert (b73.gigantic_api, b73.hugetlb_in_scratch_sizing, b73.extension) == ("hugetlb", False, "scratch")
    b72 = kernel_strategy(get("baseline"), profile_for("7.2.13"))
    assert b72 == get("baseline")
    merged = get("merged")
    assert kernel_strategy(merged, profile_for("7.2.13")) is merged


def test_one_model_for_every_command() -> None:
    # an op script (no Linux version line) is the same kernel under run, kho and validate
    t = Trace(Context(), ())
    assert memblock_for(t).profile.name == "7.3"
    assert memblock_for(t, kernel="6.1.0").profile.name == "6.1"


def test_mm_core_init_early_opens_with_kho_memory_init_early_on_7_3() -> None:
    from kho_replay.replay.kho.boot import classify_ops, plan
    from kho_replay.replay.ops import parse_script

    t = Trace(Context(release="7.3.4"), parse_script("""
add 0x0 8G
alloc memblock_alloc_try_nid size=4K align=4K caller=kho_memory_init_early+0xf6/0x200
kho_extend_scratch 0x100000000
alloc memblock_alloc_hugetlb size=1G nid=0 caller=alloc_bootmem_huge_page+0x13/0x1a0
"""))
    subs = classify_ops(t)
    assert plan(t.ops, subs, "7.3").early == 1  # kho_memory_init_early(), then free_area_init(), then hugetlb
    assert plan(t.ops, subs, "7.2").early == 3  # 7.2: hugetlb first, free_area_init() after


def test_the_kho_boot_driver_owns_the_traces_kho_ops() -> None:
    # a real kernel-2 log replayed as the KHO boot: the design (here the kernel asked for) decides the
    # extension, not the trace's own kho_extend_scratch op
    from kho_replay.replay.kho.boot import check_second_kernel

    name = "x86_64-kho-7.3.4-B-8G-hugepages1G2-defaultscale"
    first, second = load(_log(name, 1)), load(_log(name, 2))
    as73 = check_second_kernel(first, second, "baseline")
    assert as73.real.gigantic.addrs == (0x180000000, 0x140000000) and as73.real.extended_bytes > 0
    # 7.3 without the extension: the trace's kho_extend_scratch op must not sneak it back in
    no_ext = Strategy(name="no-extension", hugetlb_in_scratch_sizing=False, gigantic_api="hugetlb")
    without = check_second_kernel(first, second, no_ext)
    assert without.real.extended_bytes == 0
    assert without.real.gigantic.addrs != as73.real.gigantic.addrs
