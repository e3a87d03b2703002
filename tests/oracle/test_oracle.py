# SPDX-License-Identifier: GPL-2.0-only
"""Differential tests: our memblock model against the kernel's own ``mm/memblock.c``.

The kernel side is ``driver.c`` linked with the unmodified ``memblock.c`` of
Debian's linux-source-7.2 / 7.3 (built on first use by ``setup.sh``).  Each
stream is replayed by both; allocation results and both final region tables
must be identical.  Two panics agree when the ops before the kernel's panic
give identical results too.

* the first group runs the kernel side alone against results derived by hand
  from memblock-spec §7 and §3 (proves the driver before trusting it as an
  oracle), and checks its one-line errors;
* ``test_hypothesis_streams``: generated streams, shrunk and printed as an op
  script on a difference;
* ``test_long_streams``: fixed seeds, 10^4 ops each, which must double both
  arrays several times (``test_long_streams_double_both_arrays``).

``KHO_ORACLE_EXAMPLES`` sets the number of Hypothesis examples per version.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings

# isort: split
from kho_replay.replay.ops import Op, format_script, parse_script

from .harness import (
    VERSIONS,
    OracleError,
    build,
    comparable,
    default_examples,
    kernel_run,
    model_run,
    op_streams,
    prebuild,
    random_ops,
    without_hazards,
)

pytestmark = pytest.mark.oracle

B = 0x4000_0000  # the driver's window starts here; a multiple of 64 KiB
MAX_NUMNODES = 16


@pytest.fixture(scope="session", params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    """Each kernel source we have, built once per session (downloads on a clean machine)."""
    prebuild(VERSIONS)  # both downloads and builds at once
    build(request.param)
    return request.param


@pytest.fixture(scope="session")
def model() -> None:
    """Skip model comparisons until ``replay_json`` exists in this tree."""
    engine = pytest.importorskip("kho_replay.replay.memblock.engine", reason="no model (replay/engine.py)")
    if not hasattr(engine, "replay_json"):
        pytest.skip("kho_replay.replay.memblock.engine has no replay_json yet")


def region(base: int, size: int, flags: int = 0, nid: int = -1) -> dict[str, Any]:
    """One region as the JSON prints it."""
    return {"base": hex(base), "size": hex(size), "flags": hex(flags), "nid": nid}


def run(script: str, version: str) -> dict[str, Any]:
    """Kernel result without messages."""
    return comparable(kernel_run(script, version))


# --------------------------------------------------------------------------
# The kernel side against hand-derived results

# tools/testing/memblock setup_numa_memblock() with alloc_nid_api.c's fractions:
# node sizes and offsets from memblock-spec §7, each node its own region.
NODE_SIZES = [8192, 2048, 4096, 4096, 2048, 2048, 8192, 2048]
NODE_OFFS = [0, 8192, 10240, 14336, 18432, 20480, 22528, 30720]
NUMA_LAYOUT = "".join(f"add {B + o:#x} {s} nid={i} flags=hotplug\n" for i, (o, s) in
                      enumerate(zip(NODE_OFFS, NODE_SIZES, strict=True)))
NUMA_MEMORY = [region(B + o, s, 0x1, i) for i, (o, s) in enumerate(zip(NODE_OFFS, NODE_SIZES, strict=True))]


def test_free_within(version: str) -> None:
    # basic_api memblock_free_within_check: one region split in three, middle removed
    got = run("reserve 1M 8M\nfree 4M 1M\n", version)
    want = [region(1 << 20, 3 << 20), region(5 << 20, 4 << 20)]
    assert got == {"allocs": [], "memory": [], "reserved": want}


def test_free_only_region_leaves_empty_table(version: str) -> None:
    # memblock_free_only_region_check: cnt 0 in 7.x, so the table prints as []
    assert run("reserve 2K 4K\nfree 2K 4K\n", version)["reserved"] == []


def test_remove_overlap_two(version: str) -> None:
    # basic_api memblock_remove_overlap_two_check, shifted into the window by B
    script = f"add {B + (16 << 20):#x} 32M\nadd {B + (64 << 20):#x} 64M\nremove {B + (32 << 20):#x} 64M\n"
    got = run(script, version)
    assert got["memory"] == [region(B + (16 << 20), 16 << 20, 0, MAX_NUMNODES),
                             region(B + (96 << 20), 32 << 20, 0, MAX_NUMNODES)]


@pytest.mark.parametrize("api", ["memblock_alloc_try_nid", "memblock_alloc_try_nid_raw"])
def test_numa_split_range_low(version: str, api: str) -> None:
    # alloc_nid_top_down_numa_split_range_low_check: both windowed attempts fail
    # (256 bytes of node 2 and 256 of node 3), the retry without min_addr puts
    # the block at the top of node 2, recorded with nid 2 and RSRV_KERN.
    end2 = B + 14336
    got = run(NUMA_LAYOUT + f"alloc {api} size=512 align=32 nid=2 min={end2 - 256:#x} max={end2 + 256:#x}\n",
              version)
    assert got["allocs"] == [hex(B + 13824)]
    assert got["memory"] == NUMA_MEMORY
    assert got["reserved"] == [region(B + 13824, 512, 0x20, 2)]


def test_numa_small_node_falls_back_to_any_node(version: str) -> None:
    # alloc_nid_top_down_numa_small_node_check: node 1 (2 KiB) cannot hold 4 KiB;
    # the any-node attempt skips node 7 (2 KiB) and takes the top of node 6,
    # recorded with nid -1 (fallback) and RSRV_KERN.
    got = run(NUMA_LAYOUT + "alloc memblock_alloc_try_nid size=4096 align=32 nid=1\n", version)
    assert got["allocs"] == [hex(B + 26624)]
    assert got["reserved"] == [region(B + 26624, 4096, 0x20, -1)]


def test_bottom_up_and_align_zero(version: str) -> None:
    # bottom-up takes the lowest free range: [B, B+4K) is reserved, so with
    # align 0 (SMP_CACHE_BYTES = 32 in the harness) the first block lands at B+4K
    alloc = "alloc memblock_phys_alloc size=100 align=0\n"
    script = f"add {B:#x} 1M\nreserve {B:#x} 4K\nset_bottom_up 1\n" + alloc * 2
    got = run(script, version)
    # the second block starts at round_up(B+4K+100, 32) = B+4K+128; the two do
    # not merge (gap of 28 bytes) and neither merges with the flags-0 reserve.
    assert got["allocs"] == [hex(B + 4096), hex(B + 4096 + 128)]
    assert got["reserved"] == [region(B, 4096), region(B + 4096, 100, 0x20),
                               region(B + 4096 + 128, 100, 0x20)]


def test_reserved_array_doubles_above_pending_region(version: str) -> None:
    # 129 scattered reserves overflow the 128-entry static array; the new array
    # (256 * 24 bytes, page-aligned to 8 KiB) is searched top-down above the
    # pending region first: the top 8 KiB of memory, reserved RSRV_KERN, nid -1.
    lines = [f"add {B:#x} 1G", "allow_resize"] + [f"reserve {B + i * 8192:#x} 4K" for i in range(129)]
    got = run("\n".join(lines) + "\n", version)
    assert len(got["reserved"]) == 130
    assert got["reserved"][128] == region(B + 128 * 8192, 4096)
    assert got["reserved"][129] == region(B + (1 << 30) - 8192, 8192, 0x20, -1)


def test_doubling_before_allow_resize_panics(version: str) -> None:
    lines = [f"add {B:#x} 1G"] + [f"reserve {B + i * 8192:#x} 4K" for i in range(129)]
    got = kernel_run("\n".join(lines) + "\n", version)
    assert "cannot resize reserved array" in got["panic"]
    assert got["line"] == 130


def test_kho_scratch_only_confines_allocations(version: str) -> None:
    # scratch-only: only KHO_SCRATCH memory is eligible, and there is no fallback
    script = (f"add {B:#x} 1G\nmark kho_scratch {B + (16 << 20):#x} 1M\nkho_scratch_only 1\n"
              "alloc memblock_alloc size=4K align=4K\nalloc memblock_alloc size=2M align=4K\n"
              "kho_scratch_only 0\nalloc memblock_alloc size=4K align=4K\n")
    got = run(script, version)
    assert got["allocs"] == [hex(B + (17 << 20) - 4096), None, hex(B + (1 << 30) - 4096)]
    assert got["memory"] == [region(B, 16 << 20, 0, MAX_NUMNODES),
                             region(B + (16 << 20), 1 << 20, 0x40, MAX_NUMNODES),
                             region(B + (17 << 20), (1 << 30) - (17 << 20), 0, MAX_NUMNODES)]


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("add 0x1000 1M\n", "line 1: memory .* is outside the oracle window"),
        ("reserve 1M 4K\nfrobnicate 1 2\n", "line 2: unknown op 'frobnicate'"),
        ("reserve 1M 4Q\n", "line 1: not a number: '4Q'"),
        ("mark driver_managed 1M 4K\n", "line 1: the kernel has no function to mark flag 'driver_managed'"),
        ("alloc memblock_alloc align=8\n", "line 1: alloc needs size="),
    ],
)
def test_driver_rejects_bad_input_in_one_line(version: str, script: str, message: str) -> None:
    with pytest.raises(OracleError, match=message) as e:
        kernel_run(script, version)
    assert "\n" not in str(e.value)


def test_hugetlb_only_in_73(version: str) -> None:
    hugetlb = "alloc memblock_alloc_hugetlb size=2M"
    script = f"add {B:#x} 1G nid=0\n{hugetlb} nid=0\n{hugetlb} nid=1 exact\n{hugetlb} nid=1\n"
    if version == "7.2":
        with pytest.raises(OracleError, match="memblock_alloc_hugetlb does not exist"):
            kernel_run(script, version)
        return
    # size-aligned from the top of memory, RSRV_KERN|RSRV_HUGETLB; the requested
    # nid is kept, exact on a node without memory fails, and the non-exact
    # fallback records NUMA_NO_NODE (the harness's kho_scratch_overlap() is false)
    top = B + (1 << 30)
    got = run(script, version)
    assert got["allocs"] == [hex(top - (2 << 20)), None, hex(top - (4 << 20))]
    assert got["reserved"] == [region(top - (4 << 20), 2 << 20, 0xA0, -1),
                               region(top - (2 << 20), 2 << 20, 0xA0, 0)]


# --------------------------------------------------------------------------
# Kernel against model


def check_same(ops: Sequence[Op], version: str) -> int:
    """Replay *ops* on both sides; fail with the op script on any difference.

    Ops that free memblock's own arrays are dropped first (see
    ``without_hazards``).  Returns how many ops were compared.
    """
    ops, kernel = without_hazards(ops, version)
    if "panic" in kernel:
        # agree on everything before the panic, and on the panic itself
        line = kernel["line"]
        model = comparable(model_run(ops[:line], version))
        assert model == {"panic": True}, _report(ops[:line], version, "kernel panics here, model does not")
        ops, kernel = ops[: line - 1], kernel_run(format_script(ops[: line - 1]), version)
    model = model_run(ops, version)
    want, got = comparable(kernel), comparable(model)
    if want != got:
        raise AssertionError(_report(ops, version, _first_difference(want, got)))
    return len(ops)


def _first_difference(want: dict[str, Any], got: dict[str, Any]) -> str:
    if "panic" in got:
        return f"model panics: {got}"
    for key in ("allocs", "memory", "reserved"):
        w, g = want[key], got[key]
        for i, (a, b) in enumerate(zip(w, g, strict=False)):
            if a != b:
                return f"{key}[{i}]: kernel {a} model {b}"
        if len(w) != len(g):
            return f"{key}: kernel has {len(w)} entries, model {len(g)}"
    return "?"


def _report(ops: Sequence[Op], version: str, what: str) -> str:
    script = format_script(ops)
    if len(ops) > 400:
        # too long for a message: keep it in a file the failure names
        digest = hashlib.sha256(script.encode()).hexdigest()[:12]
        path = Path(tempfile.gettempdir()) / f"kho-oracle-{version}-{digest}.ops"
        path.write_text(script)
        script = f"({len(ops)} ops, written to {path}; replay with kho-replay run or tests/oracle driver)\n"
    return f"kernel {version} and model differ: {what}\n--- op script ---\n{script}"


def test_hypothesis_streams(version: str, model: None) -> None:
    @settings(max_examples=default_examples(), deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(ops=op_streams(version))
    def differential(ops: list[Op]) -> None:
        note(format_script(ops))
        check_same(ops, version)

    differential()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_long_streams(version: str, model: None, seed: int) -> None:
    ops = random_ops(seed, version, 10_000)
    assert len(ops) >= 10_000
    compared = check_same(ops, version)
    assert compared >= 9_900  # only a few ops may be dropped as hazards


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_long_streams_double_both_arrays(version: str, seed: int) -> None:
    # the fixed streams must reach the code they are meant to test: several
    # doublings of both arrays (128 -> 1024 entries or more), most allocations
    # succeeding, and allocations failing too
    ops, result = without_hazards(random_ops(seed, version, 10_000), version)
    stats = kernel_run(format_script(ops), version, stats=True)["stats"]
    assert stats["reserved_max"] >= 1024
    assert stats["memory_max"] >= 512
    placed = sum(a is not None for a in result["allocs"])
    assert len(result["allocs"]) > placed > len(result["allocs"]) // 4


def test_generated_scripts_parse_back(version: str) -> None:
    # the C driver and ops.parse_script must read the same text: round trip and run
    ops = random_ops(7, version, 300)
    assert list(parse_script(format_script(ops))) == ops
    result = kernel_run(format_script(ops), version)
    assert "panic" in result or len(result["allocs"]) == sum(op.keyword == "alloc" for op in ops)
