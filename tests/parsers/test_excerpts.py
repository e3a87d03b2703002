# SPDX-License-Identifier: GPL-2.0-only
"""Issue 12 item 4, one variant per test: what users paste (mail quotes, wraps, commentary, cuts,
excerpts, debugfs text), logs without a banner, old kernels, 32-bit phys_addr_t, other arches."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kho_replay.parsers import assumptions, load
from kho_replay.replay.cli import app
from kho_replay.replay.compare.validate import validate
from kho_replay.replay.ops import MEMBLOCK_ALLOC_ANYWHERE, Add, Alloc, DebugfsTable, KernelMessage, Reserve
from kho_replay.replay.profile import arch_for

# A small arm64 boot (generic in nothing but its arch): memory, the kernel, two top-down allocations.
BOOT = [
    "[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x411fd050]",
    "[    0.000000] memblock_add: [0x0000000040000000-0x000000007fffffff] early_init_dt_add_memory_arch+0x4a/0x52",
    "[    0.000000] memblock_reserve: [0x0000000040200000-0x0000000041ffffff] setup_arch+0x1e8/0x258",
    "[    0.000000] memblock_alloc_try_nid: 4096 bytes align=0x1000 nid=-1 from=0x0000000000000000 "
    "max_addr=0x0000000000000000 early_init_dt_alloc_memory_arch+0x1e/0x48",
    "[    0.000000] memblock_reserve: [0x000000007ffff000-0x000000007fffffff] memblock_alloc_range_nid+0xb8/0x132",
    "[    0.000000] memblock_alloc_try_nid: 64 bytes align=0x40 nid=-1 from=0x0000000000000000 "
    "max_addr=0x0000000000000000 setup_arch+0x1/0x2",
    "[    0.000000] memblock_reserve: [0x000000007fffefc0-0x000000007fffefff] memblock_alloc_range_nid+0xb8/0x132",
]


def _write(tmp_path: Path, lines: list[str], name: str = "mail.txt") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def _ops(path: Path) -> list[str]:
    return [f"{type(op).__name__} {op.src.line if op.src else '-'}" for op in load(path).ops if not op.inferred]


@pytest.mark.parametrize("quote", ["> ", ">> ", "> > ", ">"])
def test_mail_quotes_of_any_depth(tmp_path: Path, quote: str) -> None:
    plain = load(_write(tmp_path, BOOT, "plain.txt"))
    quoted = load(_write(tmp_path, [quote + ln for ln in BOOT]))
    assert [(type(a), a.caller) for a in quoted.ops] == [(type(a), a.caller) for a in plain.ops]
    assert validate(quoted).allocations_ok == 2


def test_hard_wrapped_lines_are_joined(tmp_path: Path) -> None:
    wrapped = [BOOT[0], BOOT[1][:60], BOOT[1][60:],  # inside the caller: no space lost
               BOOT[2].rsplit(" ", 1)[0], BOOT[2].rsplit(" ", 1)[1],  # before the caller
               BOOT[3][:50], BOOT[3][50:110], BOOT[3][110:], *BOOT[4:]]  # an API line in three pieces
    t = load(_write(tmp_path, wrapped))
    assert [type(op).__name__ for op in t.ops if not op.inferred] == ["Add", "Reserve", "Alloc", "Alloc"]
    assert t.skipped == ()
    assert validate(t).ok and validate(t).allocations_ok == 2


def test_commentary_is_not_a_kernel_line(tmp_path: Path) -> None:
    t = load(_write(tmp_path, [BOOT[0], "# memblock_add: [0x0-0xfff] not the kernel's", "# a remark", *BOOT[1:]]))
    assert not any(op.base == 0 for op in t.ops if isinstance(op, Add))
    assert validate(t).ok
    # dropped, but not silently: the memblock-looking remark is listed
    assert [(s.position, s.reason) for s in t.skipped] == [
        ("2", "commentary (a '#' line): memblock text not read as the kernel's")]


@pytest.mark.parametrize("mark", ["[...]", "[ ... ]", "...", "# [cut: prose]", "-----8<-----", "[snip]"])
def test_a_cut_loses_the_state_until_a_table_shows_it(tmp_path: Path, mark: str) -> None:
    t = load(_write(tmp_path, [*BOOT[:5], mark, *BOOT[5:]]))
    assert [o.kind for o in t.observations if isinstance(o, KernelMessage) and o.kind == "cut"] == ["cut"]
    r = validate(t)
    assert r.ok and (r.allocations, r.allocations_unchecked) == (1, 1)
    assert r.partial == "partial: 1 of 2 allocations checkable; the rest depend on what was cut at line 6 " \
                        "(nothing later shows it)"


def test_a_rare_blank_line_in_a_stamped_log_is_a_cut(tmp_path: Path) -> None:
    # the mail lost the first allocation's reservation: not a failure, a cut; the next one is unknown
    lines = [*BOOT[:4], "", *BOOT[5:]] + [f"[    0.1] filler {i}" for i in range(20)]
    r = validate(load(_write(tmp_path, lines)))
    assert r.ok and (r.allocations, r.allocations_unchecked) == (0, 1)


DUMP = [
    "[    0.000000] MEMBLOCK configuration:",
    "[    0.000000]  memory size = 0x0000000040000000 reserved size = 0x0000000001e01000",
    "[    0.000000]  memory.cnt  = 0x1",
    "[    0.000000]  memory[0x0]\t[0x0000000040000000-0x000000007fffffff], 0x0000000040000000 bytes flags: 0x0",
    "[    0.000000]  reserved.cnt  = 0x2",
    "[    0.000000]  reserved[0x0]\t[0x0000000040200000-0x0000000041ffffff], 0x0000000001e00000 bytes flags: 0x0",
    "[    0.000000]  reserved[0x1]\t[0x000000007ffff000-0x000000007fffffff], 0x0000000000001000 bytes flags: 0x0",
]


def test_an_excerpt_is_seeded_from_its_first_dump(tmp_path: Path) -> None:
    # starts mid-boot (an allocation first), then the dump, then one allocation the dump makes checkable
    lines = ["[ ... ]", *BOOT[3:5], *DUMP, *BOOT[5:]]
    t = load(_write(tmp_path, lines))
    r = validate(t)
    assert r.ok and (r.allocations, r.allocations_unchecked) == (1, 1)
    assert r.partial == "partial: 1 of 2 allocations checkable; the rest depend on state before line 4"


def test_a_wrong_checkable_allocation_still_fails(tmp_path: Path) -> None:
    bad = [*BOOT[:6], BOOT[6].replace("7fffefc0-0x000000007fffefff", "7fffef80-0x000000007fffefbf")]
    r = validate(load(_write(tmp_path, bad)))
    assert not r.ok and r.first_mismatch is not None and "0x000000007fffef80" in r.first_mismatch.expected


@pytest.mark.parametrize(("line", "release", "clue"), [
    ("__memblock_reserve: [0x0000000040000000-0x0000000040000fff] nid=-1 flags=20 f+0x1/0x2", "7.3",
     "__memblock_reserve ... nid= flags="),
    ("memblock_phys_free: [0x0000000040000000-0x0000000040000fff] f+0x1/0x2", "7.3", "memblock_phys_free"),
    ("memblock_phys_free: [0x0000000040000000-0x0000000040000fff] f+0x1/0x2\n"
     "memblock_reserve: [0x0000000040000000-0x0000000040000fff] f+0x1/0x2", "6.15", "memblock_phys_free"),
    ("memblock_free: [0x0000000040000000-0x0000000040000fff] f+0x1/0x2", "5.15", "memblock_free of a physical"),
    ("memblock_reserve: [0x0000000040000000-0x0000000040000fff] flags 0x0 f+0x1/0x2", "4.19", "'flags 0x.."),
    ("memblock_alloc_try_nid_nopanic: 64 bytes align=0x40 nid=-1 from=0x0 max_addr=0x0 f+0x1/0x2", "5.0",
     "memblock_alloc_try_nid_nopanic"),
])
def test_the_era_is_inferred_from_line_formats(tmp_path: Path, line: str, release: str, clue: str) -> None:
    t = load(_write(tmp_path, [BOOT[1], line]))
    assert t.context.release == release
    note = assumptions(t)
    assert note is not None and note.startswith("no 'Linux version' line: ") and clue in note
    assert f"assumed {release}" in note


def test_kernel_and_arch_given_beat_the_log(tmp_path: Path) -> None:
    t = load(_write(tmp_path, BOOT[1:]), kernel="5.10.0", arch="riscv64,page=16K")
    assert (t.context.release, t.context.arch) == ("5.10.0", "riscv64,page=16K")
    note = assumptions(t)
    assert note is not None and "no 'Linux version' line" not in note
    assert "riscv64 replays on a generic arch profile: PAGE_SIZE 16384" in note


def test_old_kernel_with_flags_before_the_caller_replays(tmp_path: Path) -> None:
    old = [ln.replace("] early_init", "] flags 0x0 early_init").replace("] setup_arch", "] flags 0x0 setup_arch")
           .replace("] memblock_alloc_range", "] flags 0x0 memblock_alloc_range") for ln in BOOT]
    t = load(_write(tmp_path, ["[    0.000000] Linux version 4.9.0-8-arm64 (gcc)", *old]))
    assert [type(op).__name__ for op in t.ops if not op.inferred] == ["Add", "Reserve", "Alloc", "Alloc"]
    note = assumptions(t)
    assert note is not None and "kernel 4.9.0-8-arm64 is older than every profile: replayed with 5.4's" in note
    assert validate(t).ok and validate(t).allocations_ok == 2


def test_32bit_phys_addr_t_caps_and_widens(tmp_path: Path) -> None:
    lines = ["CPU: ARMv7 Processor [413fc090] revision 0 (ARMv7), cr=1ac5387d",
             "memblock_add: [0xfec00000-0xffffffff] early_init_dt_scan_memory+0x11c/0x188",
             "memblock_alloc_try_nid: 4096 bytes align=0x1000 nid=-1 from=0x00000000 max_addr=0xffffffff f+0x1/0x2",
             "memblock_reserve: [0xffffe000-0xffffefff] memblock_alloc_range_nid+0x104/0x13c"]
    t = load(_write(tmp_path, lines))
    assert t.context.phys_addr_bits == 32 and t.context.arch == "arm"
    add = next(op for op in t.ops if isinstance(op, Add))
    assert add.base + add.size == 0xFFFFFFFF  # memblock_cap_size(): PHYS_ADDR_MAX is 0xffffffff
    assert next(op for op in t.ops if isinstance(op, Alloc)).max_addr == MEMBLOCK_ALLOC_ANYWHERE
    assert validate(t).ok and validate(t).allocations_ok == 1


@pytest.mark.parametrize(("hint", "arch", "up"), [
    ("[    0.000000] MIPS: machine is Broadcom BCM97435SVMB", "mips", True),
    ("[    0.000000] riscv: base ISA extensions acdfim", "riscv64", False),
    ("[    0.000000] CPU: ARMv7 Processor [413fc090] revision 0 (ARMv7)", "arm", False),
])
def test_other_arches_replay_on_a_generic_profile(tmp_path: Path, hint: str, arch: str, up: bool) -> None:
    t = load(_write(tmp_path, [hint, *BOOT[1:3]]))
    assert t.context.arch == arch
    a = arch_for(arch)
    assert a.generic and a.bottom_up is up
    note = assumptions(t)
    assert note is not None and f"{arch} replays on a generic arch profile: PAGE_SIZE {a.page_size}, " \
                                f"SMP_CACHE_BYTES {a.smp_cache_bytes}, {'bottom-up' if up else 'top-down'}" in note
    assert any(op.keyword == "set_bottom_up" for op in t.ops) is up


def test_direction_override_on_the_command_line(tmp_path: Path) -> None:
    p = _write(tmp_path, ["[    0.000000] MIPS: machine is X", *BOOT[1:5]])
    # mips is bottom-up by default, and the first allocation (at the top) says top-down: both are overridden
    r = CliRunner().invoke(app, ["validate", str(p), "--arch", "mips,bottom-up"])
    assert r.exit_code == 1 and "got 0x0000000042000000" in r.stdout
    r = CliRunner().invoke(app, ["validate", str(p)])
    assert r.exit_code == 0, r.stdout
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("kho-replay: warning: ")]
    assert len(warnings) == 1 and "direction top-down (from the first allocation" in warnings[0]


MEM_NEW = ["   0: 0x0000000040000000..0x000000007fffffff    0 NONE"]
RES_NEW = ["   0: 0x0000000040200000..0x0000000041ffffff    0 RSV_KERN",
           "   1: 0x000000007ffff000..0x000000007fffffff    0 NONE"]
MEM_OLD = ["   0: 0x40000000..0x7fffffff"]
RES_OLD = ["   0: 0x40200000..0x41ffffff", "   1: 0x7ffff000..0x7fffffff"]


@pytest.mark.parametrize(("lines", "names"), [
    (MEM_NEW + RES_NEW, ["memory", "reserved"]),
    (["memory:", *MEM_NEW, "", "reserved:", *RES_NEW], ["memory", "reserved"]),
    (["# cat /sys/kernel/debug/memblock/reserved", *RES_OLD, "==> memory <==", *MEM_OLD], ["reserved", "memory"]),
    ([f"/sys/kernel/debug/memblock/memory:{r}" for r in MEM_OLD]
     + [f"/sys/kernel/debug/memblock/reserved:{r}" for r in RES_OLD], ["memory", "reserved"]),
    ([r.split(": ", 1)[1] for r in MEM_NEW], ["memory"]),  # no index at all
])
def test_debugfs_text_in_one_file(tmp_path: Path, lines: list[str], names: list[str]) -> None:
    t = load(_write(tmp_path, lines, "pasted.txt"))
    tables = [o for o in t.observations if isinstance(o, DebugfsTable)]
    assert [o.name for o in tables] == names
    assert t.skipped == ()
    reserved = next((o for o in tables if o.name == "reserved"), None)
    if reserved is not None:
        assert [(r.base, r.size) for r in reserved.regions] == [(0x40200000, 0x1E00000), (0x7FFFF000, 0x1000)]


def test_debugfs_tables_pasted_among_console_lines_seed_what_follows(tmp_path: Path) -> None:
    lines = [*MEM_OLD, *RES_OLD, *BOOT[5:]]
    t = load(_write(tmp_path, lines))
    assert [o.name for o in t.observations if isinstance(o, DebugfsTable)] == ["memory", "reserved"]
    r = validate(t)
    assert r.ok and r.allocations == 1 and r.allocations_unchecked == 0


def test_no_memblock_content_is_one_error_line(tmp_path: Path) -> None:
    p = _write(tmp_path, ["Dear list,", "> it crashes at boot", "# see below", "[ 1.0] Hello"])
    r = CliRunner().invoke(app, ["validate", str(p)])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and str(p) in r.stderr


def test_parse_skipped_lists_every_skip_with_its_reason(tmp_path: Path) -> None:
    lines = [*BOOT, "[    0.000000] memblock_reserve: [0x0000000040000000-0x0000000040000fff]",
             "[    0.000000] memblock_remove: [0x00000040 0000 0000-0x0000003ffffffffe] arm64_memblock_init+0x94"]
    r = CliRunner().invoke(app, ["parse", "--skipped", str(_write(tmp_path, lines))])
    assert r.exit_code == 0
    assert ":8: memblock line cut short: no caller after the range" in r.stdout
    assert ":9: memblock line with spaces inside an address (edited by hand?)" in r.stdout
    assert r.stdout.rstrip().endswith("2 line(s) skipped")


@pytest.mark.parametrize("cmd", ["validate", "parse", "run", "kho", "compare", "matrix"])
def test_every_trace_command_takes_kernel_and_arch(cmd: str) -> None:
    r = CliRunner().invoke(app, [cmd, "--help"])
    assert "--kernel" in r.stdout and "--arch" in r.stdout


def test_reserve_kept_on_excerpt(tmp_path: Path) -> None:
    t = load(_write(tmp_path, BOOT[1:3]))
    assert [type(op) for op in t.ops if not op.inferred] == [Add, Reserve]


def test_run_an_op_script_on_a_bottom_up_arch(tmp_path: Path) -> None:
    p = tmp_path / "s.ops"
    p.write_text("add 0x100000 16M\nalloc memblock_alloc size=4K align=4K\n")
    up = CliRunner().invoke(app, ["run", str(p), "--arch", "mips"])
    down = CliRunner().invoke(app, ["run", str(p), "--arch", "mips,top-down"])
    assert up.exit_code == down.exit_code == 0
    assert "-> 0x0000000000100000" in up.stdout and "-> 0x00000000010ff000" in down.stdout
