# SPDX-License-Identifier: GPL-2.0-only
"""Dense memblock logs take shortcuts (runs of call lines made into Lines at once, handlers chosen by a
line's first character): each must read exactly what the line-by-line rules read."""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kho_replay.parsers import read_text
from kho_replay.parsers.console import reader as reader_mod
from kho_replay.parsers.console.reader import ConsoleReader
from kho_replay.replay.errors import KhoReplayError
from kho_replay.replay.ops import Trace

from .test_streamed import LOGS, _read_all_kept, _same, _streamed

ROOT = Path(__file__).parents[2] / "traces"


@pytest.mark.parametrize("log", LOGS[:4], ids=lambda p: p.parent.name)
def test_call_run_lines_are_excerpt_lines(log: Path) -> None:
    """A run of memblock call lines is made into the Lines the line-by-line rules make, each complete
    (nothing joins it), read by the walk and no section marker."""
    from kho_replay.parsers.console.grammar import RELEVANT
    from kho_replay.parsers.console.prefixes import CallRun, _excerpt_line, _may_join

    text = read_text(log)
    split = text.splitlines(keepends=True)
    runs = [r for r in reader_mod._plain_runs(text, 1) if isinstance(r, CallRun)]
    assert sum(len(r.lines) for r in runs) > 100, "no run found: the test tests nothing"
    for run in runs:
        quiet = [not RELEVANT.match(ln.text) for ln in run.lines]
        for ln in run.lines:
            assert ln.raw == split[ln.lineno - 1]
            assert ln == _excerpt_line(ln.lineno, ln.raw) and ln.ts is not None
            assert not _may_join(ln, reader_mod._wrapped)
            assert "=====" not in ln.text
        # but a call line: one quiet line at a time, between two call lines, none of whose text a pass reads
        assert not quiet[0] and not quiet[-1] and not any(a and b for a, b in pairwise(quiet))
        for ln, q in zip(run.lines, quiet, strict=True):
            assert not q or ("memblock" not in ln.text and "..0x" not in ln.text and ln.text.strip())


def test_call_runs_quoted_in_a_section_stream_as_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stamped memblock lines a script quoted (``dmesg | grep``, older stamps) inside a section, and a
    wrapped line waiting for its piece before a run: streamed as every line read."""
    lines = read_text(LOGS[0]).splitlines(keepends=True)
    calls = [ln for ln in lines if re.match(r"\[ *[0-9.]+\] memblock_\w+: \[", ln)][:40]
    assert len(calls) >= 20
    at = next(i for i, ln in enumerate(lines) if ln.startswith("=====")) if any(
        ln.startswith("=====") for ln in lines) else len(lines)
    quoted = ["===== BEGIN dmesg-memblock =====\n", *calls, "===== END =====\n"]
    wrapped = [calls[0].rsplit(" ", 1)[0] + "\n", calls[0].rsplit(" ", 1)[1]]
    text = "".join([*lines[:at], *quoted, *lines[at:]])
    _same(_streamed(text, "q.log"), _read_all_kept(text, "q.log", monkeypatch))
    half = len(lines) // 2
    text = "".join([*lines[:half], *wrapped, *calls[1:], *lines[half:]])
    _same(_streamed(text, "w.log"), _read_all_kept(text, "w.log", monkeypatch))


def test_handlers_by_first_character_are_the_handlers_in_order() -> None:
    """Every kept line of every bundled boot goes to the handler the full list in order gives it."""
    texts = [ln for p in sorted(ROOT.glob("*/console*.log*")) for ln in read_text(p).splitlines()]
    seen = 0
    for raw in texts:
        t = reader_mod.clean_line(raw)[1]
        want = next((h for rx, h in ConsoleReader._handlers if rx.match(t)), None)
        start = t[:1]
        some = ConsoleReader._handlers_from.get(start) or ConsoleReader._handlers_from[" " if start.isspace() else ""]
        assert next((h for rx, h in some if rx.match(t)), None) is want, t
        seen += want is not None
    assert seen > 1000, "no handled line: the test tests nothing"


# --- the block walk of a call run (_call_block) against the rules line by line

_MASK = (1 << 64) - 1
#: callers of every kind the walk tells apart: none of the rules', an allocation's reservation, the array
#: doubling, silent calls before (e820, init_mem_mapping, NUMA, hugetlb, KHO) or after (real mode, KHO)
_CALLERS = ["setup_arch+0x848/0xc10", "some_driver+0x10/0x40", "memblock_alloc_range_nid+0xcf/0x190",
            "memblock_alloc_internal+0x1/0x2", "memblock_double_array+0x1c4/0x2b0", "e820__memblock_setup+0x57/0xc0",
            "init_mem_mapping+0x209/0x390", "alloc_low_pages+0x1/0x2", "x86_numa_init+0x3/0x4",
            "alloc_bootmem+0x4e/0x80", "kho_memory_init+0x1/0x2", "kho_preserved_memory_reserve+0x5/0x6",
            "reserve_real_mode+0xab/0xe0", "vmemmap_pud_populate.isra.0+0x43/0xc0", "mod_init+0x1/0x2 [mod]",
            "+0x1/0x2"]
_SIZES = [0x10, 0x1000, 0x2000, 0x200000, 0x40000000]
_BASES = [0x0, 0x1000, 0x9f000, 0x200000, 0x33fe00000, 0x100000000, _MASK & ~0xfff]


def _range(b: int, s: int, width: int = 16, upper: bool = False, prefix: str = "0x") -> str:
    lo, hi = f"{b:0{width}x}", f"{(b + s - 1) & _MASK:0{width}x}"
    if upper:
        lo, hi = lo.upper(), hi.upper()
    return f"[{prefix}{lo}-{prefix}{hi}]"


@st.composite
def _call_lines(draw: st.DrawFn) -> list[str]:
    """One call line (or an allocation and its reservation, or another line a call run meets)."""
    caller = draw(st.sampled_from(_CALLERS))
    b, s = draw(st.sampled_from(_BASES)), draw(st.sampled_from(_SIZES))
    nid, flags = draw(st.sampled_from([-1, 0, 1])), draw(st.sampled_from([0, 0x20, 0x1, 0xa0]))
    kind = draw(st.sampled_from(["free", "reserve", "nid_reserve", "alloc", "phys_alloc", "pair", "other"]))
    if kind == "free":
        fn = draw(st.sampled_from(["memblock_phys_free", "memblock_free", "memblock_add", "memblock_remove",
                                   "memblock_free_late", "__memblock_free_late", "memblock_physmem_add"]))
        rng = _range(b, s, upper=draw(st.booleans()), prefix=draw(st.sampled_from(["0x", "0x", ""])))
        return [f"{fn}: {rng} {caller}"]
    if kind == "reserve":
        old = draw(st.sampled_from(["", "", "flags 0x0 "]))
        return [f"memblock_reserve: {_range(b, s, width=draw(st.sampled_from([16, 8])))} {old}{caller}"]
    if kind == "nid_reserve":
        fn = draw(st.sampled_from(["__memblock_reserve", "__memblock_reserve", "memblock_add_node"]))
        return [f"{fn}: {_range(b, s)} nid={nid} flags={flags:x} {caller}"]
    api = draw(st.sampled_from(["memblock_alloc_try_nid", "memblock_alloc_try_nid_raw", "memblock_alloc_exact_nid_raw",
                                "memblock_virt_alloc_try_nid", "memblock_alloc_try_nid_nopanic"]))
    align = draw(st.sampled_from([0x10, 0x1000, 0x200000]))
    lo, hi = draw(st.sampled_from([0, 0x1000000])), draw(st.sampled_from([0, 1, 0x100000000]))
    if kind in ("alloc", "pair"):
        line = f"{api}: {s} bytes align={align:#x} nid={nid} from={lo:#018x} max_addr={hi:#018x} {caller}"
    elif kind == "phys_alloc":
        line = f"memblock_phys_alloc_range: {s} bytes align={align:#x} from={lo:#018x} max_addr={hi:#018x} {caller}"
    else:
        return [draw(st.sampled_from([
            "setup_percpu: NR_CPUS:8192 nr_cpumask_bits:2 nr_cpu_ids:2 nr_node_ids:1",
            "mce: CPU0: Thermal monitoring enabled (TM1)", "  pcpu-alloc: [0] 0 1", "Zoned block devices: none",
            "Linux agpgart interface v0.103", "_ underscore first", "ACPI: Early table checksum verification disabled",
            f"NODE_DATA(0) allocated [mem {b:#010x}-{(b + s - 1) & _MASK:#010x}]",
            f"memblock: reserved is doubled to 256 at {_range(b, s)}",
            f"memblock_alloc_hugetlb: {s} bytes, nid={nid}, exact_nid=0 {caller}",
            f"memblock_phys_free: {_range(b, s)}",
            f"cma: Reserved {s >> 20} MiB at {b:#018x}",
            "Memory: 8000000K/8388608K available (16384K kernel code)"]))]
    if kind == "pair":
        # its reservation, usually the result (an aligned base), by the allocator or a caller printed through it
        at = draw(st.sampled_from([0x33fe00000, 0x100000000, 0x9f010]))
        who = draw(st.sampled_from(["memblock_alloc_range_nid+0xcf/0x190", caller]))
        return [line, f"__memblock_reserve: {_range(at, s)} nid={nid} flags={flags:x} {who}"]
    return [line]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_call_lines(), min_size=1, max_size=40), st.sampled_from(["7.2.13", "6.1.0", "4.19.0"]),
       st.integers(0, 3))
def test_call_block_reads_as_line_by_line(monkeypatch: pytest.MonkeyPatch, groups: list[list[str]], release: str,
                                          lead: int) -> None:
    """A random mix of call lines of every shape and caller kind (and the other lines a run meets) gives
    the same Trace through the block walk of call runs as through the rules, line by line."""
    body = [ln for g in groups for ln in g]
    # the banner waits for three lines that may be its wrapped pieces: those are no run's
    head = [f"Linux version {release} (gcc x86_64-linux-gnu) #1 SMP", "Command line: console=ttyS0 memblock=debug",
            "x86/fpu: x87 FPU will use FXSAVE", "BIOS-provided physical RAM map:",
            *[f"memblock_add: {_range(0x1000 * (k + 1), 0x1000)} e820__memblock_setup+0x57/0xc0" for k in range(lead)]]
    text = "".join(f"[{k / 1000:12.6f}] {b}\n" for k, b in enumerate([*head, *body]))
    fast = _outcome(lambda: _streamed(text, "d.log"))
    with monkeypatch.context() as m:
        m.setattr(ConsoleReader, "_call_block", lambda self, idx, n: self._walk_lines(idx, idx + n))
        slow = _outcome(lambda: _streamed(text, "d.log"))
    # and as the lines are read one by one, every one kept (no call run: the stages' own rules)
    every = _outcome(lambda: _read_all_kept(text, "d.log", monkeypatch))
    for other in (slow, every):
        if isinstance(fast, Trace) and isinstance(other, Trace):
            _same(fast, other)
        else:
            assert fast == other


def _outcome(read: Callable[[], Trace]) -> Trace | str:
    try:
        return read()
    except KhoReplayError as e:  # no memblock line at all, say: the same error
        return f"{type(e).__name__}: {e}"


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.parent.name)
def test_call_block_reads_real_boots_as_line_by_line(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = read_text(log)
    fast = _streamed(text, str(log))
    with monkeypatch.context() as m:
        m.setattr(ConsoleReader, "_call_block", lambda self, idx, n: self._walk_lines(idx, idx + n))
        slow = _streamed(text, str(log))
    _same(fast, slow)


@pytest.mark.parametrize("caller", ["reserve_real_mode+0xab/0xe0", "kho_preserved_memory_reserve+0x5/0x6"])
def test_a_free_late_first_with_a_caller_that_marks_after_it_reads(caller: str) -> None:
    """The marks after reserve_real_mode()'s and kho_preserved_memory_reserve()'s reservations look at the
    op before: a first memblock line of theirs that made no op (a late free) had no op to look at
    (IndexError, a traceback, before)."""
    from kho_replay.replay.ops import Clear, Mark

    from .conftest import stamped

    t = reader_mod.read_console_text(stamped(f"memblock_free_late: [0x0000000000000000-0x000000000000000f] {caller}"))
    assert not any(isinstance(o, (Mark, Clear)) for o in t.ops)
    assert [o.kind for o in t.observations] == ["version", "free_late"]


_HINTED = ["Linux version 6.1.0 (gcc aarch64-linux-gnu)", "Linux version 6.1.0 (x86_64-linux-gnu-gcc)",
           "Linux version 6.1 (riscv64-gcc)", "Linux version 6.1 (mipsel-gcc)", "Linux version 6.1 (powerpc64-gcc)",
           "Linux version 6.1 (sparc64-gcc)", "Linux version 6.1 (alpha-gcc)", "Linux version 6.1 (arm-linux-gcc)",
           "CPU: ARMv7 Processor [410fc075] revision 5 (ARMv7), cr=10c5387d", "CPU: Feroceon 88FR131 (ARMv5TE)",
           "memblock_reserve: [0x1-0x2] arm_memblock_init+0x1/0x2", "Booting Linux on physical CPU 0x0",
           "memblock_alloc_try_nid: 1 bytes early_pgtable_alloc+0x1/0x2", "efi: Getting EFI parameters from FDT:",
           "BIOS-e820: [mem 0x0-0x1] usable", "x86/fpu: x87 FPU",
           "memblock_add: [0x1-0x2] e820__memblock_setup+0x1/0x2",
           "riscv: base ISA extensions acdfim", "SBI specification v1.0 detected", "earlycon: sbi0 at I/O port 0x0",
           "memblock_reserve: [0x1-0x2] setup_bootmem+0x1/0x2 riscv", "MIPS: machine is X",
           "CPU0 revision is: 00019300",
           "Determined physical RAM map:", "memblock_free: [0x1-0x2] srmmu_paging_init+0x1/0x2", "PROMLIB: Sun IEEE",
           "Booting GENERIC on Tsunami variation DP264 using machine vector DP264 from SRM",
           "Using PowerNV machine description", "Hash_table", "ppc64_pft_size = 0x0", "nothing here", "CPU: AMD EPYC"]


@pytest.mark.parametrize("k", range(len(_HINTED)))
def test_arch_hints_with_their_texts_read_as_each_line_searched(k: int) -> None:
    """The head's arch hint, searched in its joined texts where a text each needs is, is the one each line
    searched in turn finds: each line alone, each with the lines before it, and every bundled boot's head."""
    from kho_replay.parsers.console.grammar import ARCH_HINTS

    def each(texts: list[str]) -> str | None:
        return next((arch for pat, arch in ARCH_HINTS if any(pat.search(t) for t in texts)), None)

    for texts in ([_HINTED[k]], _HINTED[k:], _HINTED[:k + 1][::-1]):
        assert reader_mod._arch_hint(texts) == each(texts), texts
    if k < len(LOGS):
        head = [reader_mod.clean_line(raw)[1] for raw in read_text(LOGS[k]).splitlines()[:5000]]
        assert reader_mod._arch_hint(head) == each(head)


def _first_chars(items: list) -> tuple[set[str], bool]:  # type: ignore[type-arg]
    """The characters a parsed regex (re._parser's) can start a match with ("\\s" for any whitespace), and
    whether it can match the empty string."""
    from re import _constants as c  # type: ignore[attr-defined]

    out: set[str] = set()
    for op, av in items:
        if op is c.AT:
            continue
        if op is c.LITERAL:
            return out | {chr(av)}, False
        if op is c.IN:
            for kind, v in av:
                if kind is c.LITERAL:
                    out.add(chr(v))
                elif kind is c.CATEGORY and v is c.CATEGORY_SPACE:
                    out.add("\\s")
                elif kind is c.RANGE:
                    out.update(map(chr, range(v[0], v[1] + 1)))
                else:
                    raise AssertionError(f"first characters of {kind} {v}: teach this test")
            return out, False
        if op is c.SUBPATTERN:
            got, empty = _first_chars(list(av[3]))
        elif op is c.BRANCH:
            got, empty = set(), False
            for alt in av[1]:
                g, e = _first_chars(list(alt))
                got |= g
                empty |= e
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
            got, empty = _first_chars(list(av[2]))
            empty |= av[0] == 0
        else:
            raise AssertionError(f"first characters of {op}: teach this test")
        out |= got
        if not empty:
            return out, False
    return out, True


def test_prescan_skips_only_texts_none_of_its_regexes_can_match() -> None:
    """_prescan() tries its regexes only on texts starting with one of _PRESCAN_START or whitespace: each
    regex it tries must start its matches there (a regex added to it must add its first characters)."""
    from re import _parser  # type: ignore[attr-defined]

    from kho_replay.parsers.console import grammar

    names = ["VERSION_LINE", "NUMA_MERGE_LINE", "SRAT_LINE", "FAKE_NODE_LINE", "NO_NUMA_LINE", "NID_RANGE_LINE",
             "INITMEM_LINE", "DUMP_REGION", "ZONE_LINE"]
    src = Path(reader_mod.__file__).read_text()
    body = src[src.index("    def _prescan("):src.index("\n    def ", src.index("    def _prescan(") + 10)]
    tried = set(re.findall(r"\b([A-Z][A-Z_]+)\.match\(t\)", body)) - {"SECTION_BEGIN", "SECTION_END"}
    assert tried == set(names), "the regexes _prescan() tries changed: check _PRESCAN_START"
    for name in names:
        first, empty = _first_chars(list(_parser.parse(getattr(grammar, name).pattern)))
        assert not empty, name
        assert first <= set(reader_mod._PRESCAN_START) | {"\\s"}, (name, first)


def test_call_runs_past_the_head_make_no_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk reads a call run's fields from its text: a run outside the first 5,000 lines (the head the
    arch hints are read in) never makes its Lines, and the Trace is the one the rules make line by line."""
    from kho_replay.parsers.console.prefixes import CallRun

    calls = [f"memblock_phys_free: {_range(0x100000 + k * 0x1000, 0x1000)} setup_arch+0x848/0xc10" for k in range(5200)]
    body = ["Linux version 7.2.13 (gcc x86_64-linux-gnu) #1 SMP", "Command line: console=ttyS0 memblock=debug",
            "x86/fpu: x87 FPU will use FXSAVE", "BIOS-provided physical RAM map:", *calls,
            "Freeing SMP alternatives memory: 40K", *calls[:3000]]
    text = "".join(f"[{k / 1000:12.6f}] {b}\n" for k, b in enumerate(body))
    made: list[int] = []
    lines = CallRun.lines.fget

    def spy(run: CallRun) -> list:  # type: ignore[type-arg]
        made.append(run.lineno)
        return lines(run)  # type: ignore[misc]

    with monkeypatch.context() as m:
        m.setattr(CallRun, "lines", property(spy))
        fast = _streamed(text, "d.log")
    assert made and max(made) < 5000
    assert len(fast.ops) == 8200
    slow = _read_all_kept(text, "d.log", monkeypatch)
    _same(fast, slow)
    # and where each op was read: a run's line numbers and stamps come from its text, not from Lines
    assert [(o.src.line, o.src.timestamp) for o in fast.ops] == [(o.src.line, o.src.timestamp) for o in slow.ops]
