# SPDX-License-Identifier: GPL-2.0-only
"""stream_tracedat(), what ``parse`` prints a trace.dat's op script from: the ops of read_tracedat(), in its
order, made as they are taken, and never all held."""

from __future__ import annotations

import dataclasses
import gc
import itertools
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_extract import _CALLS, RETURNS, _event, _formats
from tracedat_testdata import SYNTHETIC, SYNTHETIC_FILES
from typer.testing import CliRunner

from kho_replay.parsers.tracedat.events import ConsoleLine
from kho_replay.parsers.tracedat.extract import read_tracedat, stream_script, stream_tracedat
from kho_replay.parsers.tracedat.writer import write_tracedat
from kho_replay.replay.cli import app
from kho_replay.replay.errors import FormatError
from kho_replay.replay.ops import Alloc, Reserve, format_script


def _bare(ops: object) -> list[object]:
    """The ops without their positions (the streamed probe ops have none; an op script prints none)."""
    return [dataclasses.replace(op, src=None) for op in ops]  # type: ignore[attr-defined]


def _same(path: Path, **kw: object) -> None:
    whole = read_tracedat(path, **kw)  # type: ignore[arg-type]
    head, ops = stream_tracedat(path, **kw)  # type: ignore[arg-type]
    streamed = list(ops)
    assert _bare(streamed) == _bare(whole.ops)
    assert format_script(streamed) == format_script(whole.ops)
    assert head.context == whole.context
    assert head.skipped == whole.skipped
    assert not head.ops and not head.observations
    # parse's text: the console parser's ops handed out as it makes them, kept as their lines
    head, script = stream_script(path, **kw)  # type: ignore[arg-type]
    assert "".join(script) == format_script(whole.ops)
    assert head.context == whole.context and head.skipped == whole.skipped


@pytest.mark.parametrize("name", SYNTHETIC_FILES)
def test_streamed_ops_are_the_whole_reads(name: str) -> None:
    try:
        read_tracedat(SYNTHETIC / name)
    except FormatError as e:
        with pytest.raises(FormatError) as got:
            stream_tracedat(SYNTHETIC / name)
        assert str(got.value) == str(e)  # the same error, raised before any op
        return
    _same(SYNTHETIC / name)


def _memblock_line(i: int) -> str:
    base = 0x1000000 + i * 0x1000
    return f"memblock_reserve: [{base:#018x}-{base + 0xfff:#018x}] setup_arch+0x1c2/0xd80"


#: Console lines and probe hits on a few CPUs, few distinct times (ties between console and probe ops).
_HITS = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3), st.sampled_from(["console", *sorted(_CALLS)]),
                           st.sampled_from(["pair", "pair", "call", "return"]), st.integers(0, 1)),
                 min_size=1, max_size=30)


@settings(max_examples=40, deadline=None)
@given(hits=_HITS, banner=st.booleans())
def test_streamed_console_and_probes_are_the_whole_reads(tmp_path_factory: pytest.TempPathFactory,
                                                         hits: list[tuple[int, int, str, str, int]],
                                                         banner: bool) -> None:
    # The console ops and the probe ops merged as they are taken: console first on ties, as the whole read.
    events, lines, t = [], [], 1_000_000_000
    if banner:
        lines.append(ConsoleLine(t - 10, 0, 1, "Linux version 7.2.13 (x86_64) #1 SMP"))
    for k, (cpu, dt, fn, how, failed) in enumerate(hits):
        t += dt * 100  # dt 0: the same time as the one before
        if fn == "console":
            lines.append(ConsoleLine(t, cpu, 1, _memblock_line(k)))
            continue
        ret = fn + "__return"
        if how != "return" or ret not in RETURNS:
            events.append(_event(t, fn, *_CALLS[fn], pid=cpu, cpu=cpu))
        if how != "call" and ret in RETURNS:
            events.append(_event(t + 10, ret, 0 if failed else 0x7FFF0000 + t, pid=cpu, cpu=cpu))
    path = tmp_path_factory.mktemp("stream") / "s.dat"
    write_tracedat(path, lines, events=events, formats=_formats(), uname="Linux host 7.2.13 #1 SMP x86_64")
    try:
        read_tracedat(path)
    except FormatError as e:
        with pytest.raises(FormatError) as got:
            stream_tracedat(path)
        assert str(got.value) == str(e)
        return
    _same(path)


def _probe_file(path: Path, pairs: int) -> Path:
    """*pairs* allocations (a call and its return) and as many reserves, over 4 CPUs, one task each."""
    events, t = [], 1_000_000_000
    for i in range(pairs):
        cpu = i % 4
        t += 300
        events.append(_event(t, "memblock_alloc_try_nid", *_CALLS["memblock_alloc_try_nid"], pid=cpu, cpu=cpu))
        events.append(_event(t + 50, "memblock_alloc_try_nid__return", 0x7FFF0000 + t, pid=cpu, cpu=cpu))
        events.append(_event(t + 100, "memblock_reserve", 0x1000000 + i * 0x1000, 0x1000, pid=cpu, cpu=cpu))
    write_tracedat(path, [], events=events, formats=_formats(), uname="Linux host 7.2.13 #1 SMP x86_64",
                   compression="none")
    return path


def _peak(fn: object) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()  # type: ignore[operator]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streamed_probe_ops_are_never_all_held(tmp_path: Path) -> None:
    # The walk keeps each record's payload and columns (about the file's size), but the ops (with their
    # Src, 300 bytes and more each) are made a window at a time: the peak grows with the file far less
    # than the whole read's, which holds them all.
    small, big = _probe_file(tmp_path / "s.dat", 4_000), _probe_file(tmp_path / "b.dat", 16_000)

    def stream(p: Path) -> int:
        return _peak(lambda: sum(1 for _ in stream_tracedat(p)[1]))

    def whole(p: Path) -> int:
        return _peak(lambda: len(read_tracedat(p).ops))

    ops = 2 * 12_000  # more ops in the big file
    per_op_stream = (stream(big) - stream(small)) / ops
    per_op_whole = (whole(big) - whole(small)) / ops
    # Measured: 170-220 bytes an op streamed (the walk's payloads and columns, the pairing's index arrays),
    # 410 whole.
    assert per_op_stream < 0.65 * per_op_whole, (per_op_stream, per_op_whole)
    # Half way through, the ops alive are one window's (8,192 calls), not the file's 32,000.
    def alive() -> int:  # ops alive in the process (earlier tests may have left some behind)
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, Alloc | Reserve))

    before = alive()
    _, it = stream_tracedat(big)
    taken = sum(1 for _ in itertools.islice(it, 16_000))
    assert taken == 16_000 and alive() - before < 10_000, alive() - before
    assert sum(1 for _ in it) == 16_000


def test_parse_prints_the_streamed_op_script(tmp_path: Path) -> None:
    path = _probe_file(tmp_path / "p.dat", 50)
    got = CliRunner().invoke(app, ["parse", str(path)])
    assert got.exit_code == 0, got.output
    assert got.stdout == format_script(read_tracedat(path).ops)
    # -o writes the same
    out = tmp_path / "ops.txt"
    assert CliRunner().invoke(app, ["parse", str(path), "-o", str(out)]).exit_code == 0
    assert out.read_text() == got.stdout


def test_hit_count_takes_what_the_walk_does_to_its_hits() -> None:
    # A lazy read counts function hits instead of keeping them; a page given up goes back to its mark.
    from kho_replay.parsers.tracedat.extract import _HitCount

    hits = _HitCount()
    hits.append((5, 0, "memblock_add", 1))
    hits += [(7, 0, "memblock_add", 1), (7, 0, "memblock_add", 1)]
    mark = len(hits)
    hits.append((3, 0, "memblock_add", 1))  # goes down
    assert hits.n == 4 and not hits.ascending
    del hits[mark:]
    assert (hits.n, hits.ascending, hits.last) == (3, True, 7)


def test_streamed_console_ops_out_of_time_order_among_probes(tmp_path: Path) -> None:
    # The first dump's seeds go before every op made until then, with the dump's (later) time: the console ops'
    # times are not ascending, and they are merged with the probe ops by the whole sort.
    log = Path(__file__).parents[2] / "traces" / "x86_64-debian-7.2.13-4G" / "console.log"
    raw = log.read_text().splitlines()
    end = next(i for i, ln in enumerate(raw) if "MEMBLOCK configuration:" in ln) + 12
    lines = [ConsoleLine(round(float(ln[1:ln.index("]")]) * 1e9), 0, 1, ln[ln.index("]") + 2:])
             for ln in raw[:end] if ln.startswith("[")]
    events = [_event(lines[k].ts + 5, "memblock_reserve", 0x1000000 + k * 0x1000, 0x1000, pid=1, cpu=1)
              for k in range(0, len(lines), 3)]
    path = tmp_path / "out-of-order.dat"
    write_tracedat(path, lines, events=events, formats=_formats(), uname="Linux host 7.2.13 #1 SMP x86_64")
    whole = read_tracedat(path)
    assert any("first MEMBLOCK configuration dump" in (op.inferred or "") for op in whole.ops)
    _same(path)
