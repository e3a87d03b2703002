# SPDX-License-Identifier: GPL-2.0-only
"""Probe and function-tracer events into ops, with files our writer makes; bad trace.dat input."""

from __future__ import annotations

import dataclasses
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kho_replay.parsers import load
from kho_replay.parsers.tracedat.extract import read_tracedat, vmlinux_symbols
from kho_replay.parsers.tracedat.writer import FUNCTION_FORMAT, RawEvent, probe_format, write_tracedat
from kho_replay.replay.cli import app
from kho_replay.replay.errors import FormatError, InputError, TruncatedError
from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import FAILED, Add, Alloc, Free, KernelMessage, Mark, Reserve

runner = CliRunner()
IP = 0xFFFFFFFF81000000
#: (event name, fetch args) as a user would define them in kprobe_events, ids from 1000.
PROBES = {
    "memblock_add_node": [("base", "x64"), ("size", "x64"), ("nid", "s32"), ("flags", "x32")],
    "memblock_reserve": [("base", "x64"), ("size", "x64")],
    "memblock_phys_free": [("base", "x64"), ("size", "x64")],
    "memblock_mark_nomap": [("base", "x64"), ("size", "x64")],
    # x86-64 registers read as u64: nid -1 arrives as 0xffffffffffffffff.
    "memblock_alloc_try_nid": [("size", "u64"), ("align", "u64"), ("nid", "x64"), ("min_addr", "x64"),
                               ("max_addr", "x64")],
    "memblock_phys_alloc_range": [("size", "u64"), ("align", "u64"), ("start", "x64"), ("end", "x64")],
    "memblock_free_late": [("base", "x64"), ("size", "x64")],
}
RETURNS = {"memblock_alloc_try_nid__return": [("arg1", "x64")],
           "memblock_phys_alloc_range__return": [("arg1", "x64")]}
IDS = {name: 1000 + i for i, name in enumerate([*PROBES, *RETURNS, "sched_switch"])}
SCHED = ("name: sched_switch\nID: {id}\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
         "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
         "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
         "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n"
         "\tfield:int prev_pid;\toffset:8;\tsize:4;\tsigned:1;\n\n"
         'print fmt: "prev_pid=%d", REC->prev_pid\n')
_PACK = {"u64": "Q", "x64": "Q", "s32": "i", "x32": "I", "u32": "I"}


def _formats() -> list[tuple[str, str]]:
    out = [("kprobes", probe_format(n, IDS[n], a)) for n, a in PROBES.items()]
    out += [("kprobes", probe_format(n, IDS[n], a, is_return=True)) for n, a in RETURNS.items()]
    return [*out, ("sched", SCHED.format(id=IDS["sched_switch"]))]


def _event(ts: int, name: str, *values: int, pid: int = 1, cpu: int = 0) -> RawEvent:
    if name == "sched_switch":
        return RawEvent(ts, cpu, struct.pack("<HBBii", IDS[name], 0, 0, pid, *values))
    args = PROBES.get(name) or RETURNS.get(name) or []
    own = "QQ" if name in RETURNS else "Q"
    fmt = "<HBBi" + own + "".join(_PACK[t] for _, t in args)
    head = (IP, IP + 0x40) if name in RETURNS else (IP,)
    return RawEvent(ts, cpu, struct.pack(fmt, IDS[name], 0, 0, pid, *head, *values))


def _write(path: Path, events: list[RawEvent], **kw: object) -> Path:
    write_tracedat(path, [], events=events, formats=_formats(), uname="Linux host 7.2.13 #1 SMP x86_64", **kw)
    return path


def _boot(tmp_path: Path) -> Path:
    t = 1_000_000_000
    events = [
        _event(t, "memblock_add_node", 0x100000, 0x7FF00000, 0, 0),
        _event(t + 10, "memblock_reserve", 0x1000000, 0x200000),
        _event(t + 20, "memblock_mark_nomap", 0x9F000, 0x1000),
        # a physical allocation with its result, and a reserve inside it (part of the same call)
        _event(t + 30, "memblock_phys_alloc_range", 0x1000, 0x1000, 0, 0x100000000),
        _event(t + 31, "memblock_reserve", 0x7FFFF000, 0x1000),
        _event(t + 32, "memblock_phys_alloc_range__return", 0x7FFFF000),
        # a virtual allocation: its result is a direct-map address, not a physical one
        _event(t + 40, "memblock_alloc_try_nid", 64, 64, (1 << 64) - 1, 0, 0),
        _event(t + 41, "memblock_alloc_try_nid__return", 0xFFFF888000001000),
        # a failed one: NULL
        _event(t + 50, "memblock_alloc_try_nid", 1 << 40, 4096, 0, 0, 0),
        _event(t + 51, "memblock_alloc_try_nid__return", 0),
        _event(t + 60, "memblock_phys_free", 0x1100000, 0x1000),
        _event(t + 70, "sched_switch", 0),
        _event(t + 71, "sched_switch", 0),
        _event(t + 80, "memblock_free_late", 0x1200000, 0x1000),
    ]
    return _write(tmp_path / "probes.dat", events)


def test_probes_become_ops_with_their_fetched_args(tmp_path: Path) -> None:
    t = read_tracedat(_boot(tmp_path))
    assert t.context.release == "7.2.13" and t.context.arch == "x86_64"
    assert t.ops[:3] == (Add(0x100000, 0x7FF00000, 0, Flag.MEMBLOCK_NONE), Reserve(0x1000000, 0x200000),
                         Mark(Flag.MEMBLOCK_NOMAP, 0x9F000, 0x1000))
    phys, virt, failed = t.ops[3:6]
    assert phys == Alloc("memblock_phys_alloc_range", 0x1000, align=0x1000, min_addr=0, max_addr=0x100000000,
                         expect=0x7FFFF000)
    assert virt == Alloc("memblock_alloc_try_nid", 64, align=64, nid=-1, min_addr=0, max_addr=0, expect=None)
    assert failed.expect == FAILED and failed.nid == 0
    assert t.ops[6:] == (Free(0x1100000, 0x1000),)
    assert str(t.ops[0].src).startswith(f"{tmp_path}/probes.dat@0x") and t.ops[0].src.timestamp == 1.0


def test_what_is_not_an_op_is_counted(tmp_path: Path) -> None:
    reasons = [s.reason for s in read_tracedat(_boot(tmp_path)).skipped]
    assert "memblock_reserve called inside memblock_phys_alloc_range" in reasons
    assert "2 x sched:sched_switch events carry no memblock activity" in reasons
    assert "probe on memblock_free_late: not a memblock call we replay" in reasons
    assert len(reasons) == 3


def test_a_missing_fetch_arg_is_skipped_or_an_error(tmp_path: Path) -> None:
    fmt = probe_format("memblock_remove", 999, [("base", "x64")])
    path = tmp_path / "p.dat"
    write_tracedat(path, [], events=[RawEvent(10, 0, struct.pack("<HBBiQQ", 999, 0, 0, 1, IP, 0x1000))],
                   formats=[("kprobes", fmt)], uname="Linux h 7.2.13 #1 x86_64")
    with pytest.raises(FormatError, match="no memblock activity"):
        read_tracedat(path)
    path2 = tmp_path / "p2.dat"
    write_tracedat(path2, [], events=[RawEvent(10, 0, struct.pack("<HBBiQQ", 999, 0, 0, 1, IP, 0x1000)),
                                      _event(20, "memblock_reserve", 0x2000, 0x1000)],
                   formats=[("kprobes", fmt), *_formats()], uname="Linux h 7.2.13 #1 x86_64")
    t = read_tracedat(path2)
    assert t.ops == (Reserve(0x2000, 0x1000),)
    assert [s.reason for s in t.skipped] == ["probe on memblock_remove lacks the size= fetch arg"]
    with pytest.raises(FormatError, match=r"p2\.dat@0x[0-9a-f]{8}: probe on memblock_remove lacks the size="):
        read_tracedat(path2, strict=True)


def test_probes_interleave_with_console_lines_by_time(tmp_path: Path) -> None:
    from kho_replay.parsers.tracedat.writer import ConsoleLine

    lines = [ConsoleLine(5, 0, 0, "Linux version 7.2.13+deb14-amd64 (x86_64-linux-gnu-gcc) #1"),
             ConsoleLine(2_000_000_000, 0, 0,
                         "memblock_reserve: [0x0000000002000000-0x0000000002000fff] setup_arch+0x1/0x2")]
    path = tmp_path / "mixed.dat"
    write_tracedat(path, lines, events=[_event(1_000_000_000, "memblock_reserve", 0x1000, 0x1000),
                                        _event(3_000_000_000, "memblock_phys_free", 0x1000, 0x1000)],
                   formats=_formats())
    t = load(path)
    assert [(type(o).__name__, o.base) for o in t.ops] == [("Reserve", 0x1000), ("Reserve", 0x2000000),
                                                           ("Free", 0x1000)]
    assert t.ops[1].caller == "setup_arch+0x1/0x2"


def _function_file(path: Path, kallsyms: bytes, ip: int, parent: int) -> Path:
    payload = struct.pack("<HBBiQQ", 1, 0, 0, 1, ip, parent)
    other = struct.pack("<HBBiQQ", 1, 0, 0, 1, parent, parent)
    write_tracedat(path, [], events=[RawEvent(100, 0, payload), RawEvent(200, 0, other)],
                   formats=[("ftrace", FUNCTION_FORMAT.format(id=1))], kallsyms=kallsyms,
                   uname="Linux h 7.2.13 #1 x86_64")
    return path


def test_function_tracer_hits_are_named_from_kallsyms(tmp_path: Path) -> None:
    ks = (b"ffffffff81000000 T _stext\nffffffff81001000 T setup_arch\nffffffff81002000 T memblock_add\n"
          b"ffffffff81002100 T memblock_remove\n")
    t = read_tracedat(_function_file(tmp_path / "f.dat", ks, 0xFFFFFFFF81002000, 0xFFFFFFFF81001234))
    msgs = [o for o in t.observations if isinstance(o, KernelMessage)]
    assert [(m.kind, m.text) for m in msgs] == [("function", "memblock_add <- setup_arch+0x234/0x1000")]
    assert [s.reason for s in t.skipped] == ["ftrace:function hits outside memblock_* functions"]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build a small ELF")
def test_function_tracer_hits_are_named_from_a_vmlinux_under_kaslr(tmp_path: Path) -> None:
    src = tmp_path / "k.c"
    src.write_text("void _stext(void) {}\nvoid setup_arch(void) {}\nvoid memblock_free_late(void) {}\n"
                   "int main(void) { return 0; }\n")
    elf = tmp_path / "vmlinux"
    subprocess.run(["gcc", "-O0", "-no-pie", "-fno-inline", "-o", str(elf), str(src)], check=True)
    syms = {s.name: s.addr for s in vmlinux_symbols(elf).symbols}
    slide = 0x3A00000  # where KASLR put the kernel this boot
    # kallsyms of this boot knows only _stext: the names must come from the ELF, shifted by the slide.
    ks = f"{syms['_stext'] + slide:016x} T _stext\n".encode()
    path = _function_file(tmp_path / "f.dat", ks, syms["memblock_free_late"] + slide, syms["setup_arch"] + slide + 4)
    with pytest.raises(FormatError, match="no memblock activity"):
        read_tracedat(path)  # kallsyms alone names nothing here
    t = read_tracedat(path, vmlinux=elf)
    texts = [o.text for o in t.observations if isinstance(o, KernelMessage)]
    assert len(texts) == 1 and texts[0].startswith("memblock_free_late <- setup_arch+0x4/0x")
    r = runner.invoke(app, ["parse", str(path), "--vmlinux", str(elf), "--skipped"])
    assert r.exit_code == 0 and "ftrace:function hits outside memblock_* functions" in r.stdout


def test_vmlinux_that_is_not_an_elf_is_one_error(tmp_path: Path) -> None:
    bad = tmp_path / "vmlinux"
    bad.write_bytes(b"not an elf")
    with pytest.raises(FormatError, match="not a readable ELF file"):
        vmlinux_symbols(bad)


def test_parse_prints_probe_ops_as_a_script(tmp_path: Path) -> None:
    r = runner.invoke(app, ["parse", str(_boot(tmp_path))])
    assert r.exit_code == 0
    assert "alloc memblock_phys_alloc_range size=4K align=4K min=0x0 max=0x100000000 expect=0x7ffff000" in r.stdout


# ---------------------------------------------------------------------------- bad input


def test_truncated_tracedat_is_one_error_with_an_offset(tmp_path: Path) -> None:
    whole = _boot(tmp_path).read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"cut\.dat@0x[0-9a-f]{8}: ") as e:
        load(cut)
    assert isinstance(e.value, (TruncatedError, FormatError))
    r = runner.invoke(app, ["validate", str(cut)])
    assert r.exit_code == 2
    assert r.stdout == "" and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"kho-replay: error: {cut}@0x") and "Traceback" not in r.stderr


def test_garbled_tracedat_is_one_error_with_an_offset(tmp_path: Path) -> None:
    data = bytearray(_boot(tmp_path).read_bytes())
    data[12] = 7  # the endianness byte
    bad = tmp_path / "bad.dat"
    bad.write_bytes(bytes(data))
    r = runner.invoke(app, ["parse", str(bad)])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert f"{bad}@0x0000000c" in r.stderr
    r = runner.invoke(app, ["parse", str(bad), "--events"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1


def test_a_tracedat_without_memblock_activity_says_so(tmp_path: Path) -> None:
    path = _write(tmp_path / "sched.dat", [_event(1, "sched_switch", 0)])
    r = runner.invoke(app, ["parse", str(path)])
    assert r.exit_code == 2
    assert "no memblock activity" in r.stderr and r.stderr.count("\n") == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), max_size=30), min_size=1, max_size=5), st.integers(1, 7))
def test_windowed_merge_is_the_stable_sort_by_time(runs: list[list[int]], step: int) -> None:
    # Per-CPU ascending runs (ties within and across CPUs): the windows must give the one stable sort.
    from array import array

    from kho_replay.parsers.tracedat.extract import _merged_chunks

    tss = array("q", [t for run in runs for t in sorted(run)])
    bounds = [0]
    for run in runs:
        bounds.append(bounds[-1] + len(run))
    got = [g for chunk in _merged_chunks(tss, bounds, step) for g in chunk]
    assert got == sorted(range(len(tss)), key=tss.__getitem__)


_CALLS = {"memblock_alloc_try_nid": (64, 64, (1 << 64) - 1, 0, 0),
          "memblock_phys_alloc_range": (0x1000, 0x1000, 0, 1 << 32),
          "memblock_reserve": (0x1000000, 0x2000), "memblock_phys_free": (0x1100000, 0x1000)}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.sampled_from(sorted(_CALLS)),
                          st.sampled_from(["pair", "pair", "pair", "call", "return"]), st.integers(0, 1)),
                min_size=1, max_size=40))
def test_probes_in_bulk_are_the_one_by_one_answer(tmp_path_factory: pytest.TempPathFactory,
                                                  hits: list[tuple[int, int, str, str, int]]) -> None:
    # Calls and returns on a few CPUs and tasks, some left open or unmatched: whenever the bulk path
    # takes a file, its ops must be the one-by-one walk's, to the last field and timestamp.
    from kho_replay.parsers.tracedat import extract

    events, t = [], 1_000_000_000
    for cpu, pid, fn, how, failed in hits:
        t += 100
        ret = fn + "__return"
        if how != "return" or ret not in RETURNS:
            events.append(_event(t, fn, *_CALLS[fn], pid=pid, cpu=cpu))
        if how != "call" and ret in RETURNS:
            events.append(_event(t + 10, ret, 0 if failed else 0x7FFF0000 + t, pid=pid, cpu=cpu))
    path = _write(tmp_path_factory.mktemp("bulk") / "p.dat", events)

    def answer() -> str:
        try:
            t = read_tracedat(path)
        except FormatError as e:
            return str(e)
        return repr((t.ops, [op.src for op in t.ops], t.skipped))

    bulk = answer()
    one_by_one = extract._Extractor._probes_in_bulk
    try:
        extract._Extractor._probes_in_bulk = lambda *a: False  # type: ignore[method-assign]
        assert answer() == bulk
    finally:
        extract._Extractor._probes_in_bulk = one_by_one  # type: ignore[method-assign]


def test_op_columns_and_rows_build_what_op_builder_builds() -> None:
    from kho_replay.parsers.tracedat.extract import _op_builder, _op_columns, _op_rows
    from kho_replay.replay.ops import ALLOC_APIS, Src

    a = {"base": 0, "size": 1, "align": 2, "nid": 3, "min_addr": 4, "max_addr": 5, "exact_nid": 6}
    values = [(0x1000, 0x2000, 64, (1 << 64) - 1, 0, 1 << 40, 1, 9), (0x3000, 0x10, 8, 1, 5, 6, 0, 9)]
    srcs = [Src("x.dat", offset=1, timestamp=0.5), Src("x.dat", offset=2, timestamp=0.75)]
    narrow = [(0x1000, 0x2000, 64, -1, 0, 1 << 40, 1, 9), *values[1:]]  # nid fetched as an int
    for fn in ["memblock_remove", "memblock_reserve", "memblock_reserve_kern", "memblock_phys_free", *ALLOC_APIS]:
        one = _op_builder(fn, a)
        assert callable(one), fn
        for vals, many in ((values, _op_columns(fn, a)), (values, _op_rows(fn, a, 8, frozenset())),
                           (narrow, _op_rows(fn, a, 8, frozenset({"nid"})))):
            assert many is not None, fn
            want = [(op, op.src) for op in map(one, vals, srcs, [0x5000, FAILED])]
            assert repr([(op, op.src) for op in many(vals, srcs, [0x5000, FAILED])]) == repr(want), fn


def test_fast_new_many_makes_what_fast_new_makes_and_rejects_a_short_column() -> None:
    from kho_replay.replay.ops import Alloc, Src, fast_new, fast_new_many, fast_new_rows

    params = ("api", "size", "align", "nid", "min_addr", "max_addr", "exact", "expect", "src")
    rows = [("memblock_alloc", 64, 8, -1, 0, 1 << 40, False, FAILED, Src("a.dat", offset=4)),
            ("memblock_phys_alloc", 4096, 4096, 0, None, None, True, 0x1000, None)]
    one, many = fast_new(Alloc, *params), fast_new_many(Alloc, *params)
    built = many(len(rows), *map(list, zip(*rows, strict=True)))
    assert [repr((o, o.src)) for o in built] == [repr((o, o.src)) for o in (one(*r) for r in rows)]
    assert built == [Alloc(*r[:-1], src=r[-1]) for r in rows]
    # fast_new_rows(): the same objects, of the class itself, still frozen
    by_rows = fast_new_rows(Alloc, *params)(rows)
    assert [repr((o, o.src, type(o))) for o in by_rows] == [repr((o, o.src, type(o))) for o in built]
    with pytest.raises(dataclasses.FrozenInstanceError):
        by_rows[0].size = 1  # type: ignore[misc]
    assert fast_new_rows(Src, "path")([]) == []
    assert fast_new_many(Src, "path")(0, []) == []
    with pytest.raises(ValueError, match="fewer than 3 values"):
        fast_new_many(Src, "path", "offset")(3, ["a", "b", "c"], [1, 2])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["console", "call", "short", "sched", "far"]),
                          st.sampled_from(sorted(_CALLS))), min_size=1, max_size=60))
def test_the_in_place_page_walk_is_the_general_walk(tmp_path_factory: pytest.TempPathFactory,
                                                    hits: list[tuple[int, str, str]]) -> None:
    # The one-pass walk (in_place(): columns gathered in lists, packed into arrays per page, records
    # the bulk path cannot take kept aside) against the general page walk, which a time correction
    # (here the identity) forces: the same extraction state, field by field.
    from kho_replay.parsers.tracedat import extract
    from kho_replay.parsers.tracedat.reader import TraceDat
    from kho_replay.parsers.tracedat.writer import ConsoleLine

    events, lines, t = [], [], 1_000_000_000
    for cpu, kind, fn in hits:
        t += 3_000_000_000 if kind == "far" else 100  # "far": a time extend before the next record
        if kind == "console":
            text = f"memblock_reserve: [{t:#018x}-{t + 0xfff:#018x}] setup_arch+0x1c/0x80"
            lines.append(ConsoleLine(t, cpu, 1, text))
        elif kind == "sched":
            events.append(_event(t, "sched_switch", 0, cpu=cpu))
        else:
            ev = _event(t, fn, *_CALLS[fn], cpu=cpu)
            # "short": the payload cut by a word, too short for its format's Struct: kept for the handlers
            events.append(ev._replace(payload=ev.payload[:-4]) if kind == "short" else ev)
    path = tmp_path_factory.mktemp("walk") / "w.dat"
    write_tracedat(path, lines, events=events, formats=_formats(), compression="none",
                   uname="Linux host 7.2.13 #1 SMP x86_64")

    def state() -> str:
        with TraceDat(path) as td:
            ex = extract._Extractor(td, str(path), False, None)
            try:
                ex.walk(ex._meta())
            except InputError as e:
                return str(e)
            return repr(("".join(ex.console_text()), list(ex.lines), list(ex.offs), list(ex.tss), ex.probe_ops,
                         [op.src for op in ex.probe_ops], list(ex.probe_ts), ex.probe_obs, ex.skipped,
                         sorted(ex.dropped.items())))

    one_pass = state()
    correction = TraceDat._ts_correction
    try:
        TraceDat._ts_correction = lambda self: (lambda ts: ts)  # type: ignore[method-assign]
        assert state() == one_pass
    finally:
        TraceDat._ts_correction = correction  # type: ignore[method-assign]
