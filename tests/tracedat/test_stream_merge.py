# SPDX-License-Identifier: GPL-2.0-only
"""stream_tracedat()'s light walk: the probe payloads are not kept but read again, each CPU's records as they
come, and the CPUs merged by time.  The ops must come in read_tracedat()'s order: by time, a tie to the lower
CPU, whatever the compression; a CPU whose time goes down is read as the whole read orders it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_extract import _CALLS, _event, _formats

from kho_replay.parsers.tracedat import extract, writer
from kho_replay.parsers.tracedat.extract import read_tracedat, stream_tracedat
from kho_replay.parsers.tracedat.writer import write_tracedat
from kho_replay.replay.errors import FormatError
from kho_replay.replay.ops import format_script

UNAME = "Linux host 7.2.13 #1 SMP x86_64"


def _events(n: int, cpus: int, step: int = 100) -> list[Any]:
    """*n* rounds; in each, every CPU makes an allocation (call, return) and a reserve at the same times as
    the other CPUs (ties across CPUs).  Each op says its CPU and round in its base or result."""
    events, t = [], 1_000_000_000
    for i in range(n):
        t += step
        for cpu in range(cpus):
            tag = (cpu << 32) + i * 0x1000
            events.append(_event(t, "memblock_phys_alloc_range", *_CALLS["memblock_phys_alloc_range"], pid=cpu,
                                  cpu=cpu))
            events.append(_event(t + 10, "memblock_phys_alloc_range__return", 0x10_0000_0000 + tag, pid=cpu,
                                  cpu=cpu))
            events.append(_event(t + 20, "memblock_reserve", 0x20_0000_0000 + tag, 0x1000, pid=cpu, cpu=cpu))
    return events


def _streamed(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], bool]:
    """The streamed ops and whether the light walk made them."""
    light = []
    second = extract._Extractor._light_stream

    def spy(self: Any, *a: Any) -> Any:
        light.append(True)
        return second(self, *a)

    monkeypatch.setattr(extract._Extractor, "_light_stream", spy)
    _, ops = stream_tracedat(path)
    return list(ops), bool(light)


@pytest.mark.parametrize(("version", "compression"), [(6, "none"), (7, "none"), (7, "zstd"), (7, "zlib")])
def test_light_walk_merges_cpus_by_time_lower_cpu_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         version: int, compression: str) -> None:
    # 3 CPUs, 300 rounds: several pages per CPU, every op tied in time with the other CPUs'.
    path = tmp_path / "t.dat"
    write_tracedat(path, [], events=_events(300, 3), formats=_formats(), uname=UNAME, version=version,
                   compression=compression)
    ops, light = _streamed(path, monkeypatch)
    assert light
    whole = read_tracedat(path).ops
    assert format_script(ops) == format_script(whole)
    # by time, a tie to the lower CPU: round after round, the allocations of CPU 0, 1, 2, then the reserves
    tags = [(op.expect if hasattr(op, "expect") else op.base) & 0xFFFF_FFFF_FFFF for op in ops]
    want = [kind + (cpu << 32) + i * 0x1000 for i in range(300) for kind in (0x10_0000_0000, 0x20_0000_0000)
            for cpu in range(3)]
    assert tags == want


def _going_down(monkeypatch: pytest.MonkeyPatch, cpu_page: int, back: int) -> None:
    """Make the writer stamp its *cpu_page*-th page (counted over every CPU, CPU after CPU) *back* ns early."""
    pages = [0]
    page = writer._PageWriter._page

    def early(self: Any, ts: int, body: bytearray) -> bytes:
        pages[0] += 1
        return page(self, ts - back if pages[0] == cpu_page else ts, body)

    monkeypatch.setattr(writer._PageWriter, "_page", early)


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_a_cpu_whose_time_goes_down_streams_the_whole_reads_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  compression: str) -> None:
    # CPU 0's second page stamped 5 rounds early: its records go before CPU 1's of those rounds and the
    # whole read sorts them by time; the stream must give the same order.  The light walk reads CPU 0's
    # two runs of ascending time apart and merges the three runs by time, a tie by the merged order.
    path = tmp_path / "t.dat"
    with monkeypatch.context() as m:
        _going_down(m, 2, 500)
        write_tracedat(path, [], events=_events(200, 2), formats=_formats(), uname=UNAME, compression=compression)
    runs = []
    find = extract._Extractor._light_runs
    monkeypatch.setattr(extract._Extractor, "_light_runs", lambda self, *a: runs.append(find(self, *a)) or runs[-1])
    ops, light = _streamed(path, monkeypatch)
    assert light and runs and len(runs[0][1]) == 3  # CPU 0 in two runs, CPU 1 in one
    whole = read_tracedat(path).ops
    assert format_script(ops) == format_script(whole)
    tags = [(op.expect if hasattr(op, "expect") else op.base) & 0xFFFF_FFFF_FFFF for op in ops]
    assert tags != sorted(tags)  # the page stamped early did move its records


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.sampled_from(sorted(_CALLS)),
                          st.sampled_from(["pair", "pair", "call", "return"])), min_size=1, max_size=400),
       st.sampled_from(["none", "zstd", "zlib"]), st.integers(0, 6), st.booleans())
def test_streamed_probes_are_the_whole_reads(tmp_path_factory: pytest.TempPathFactory,
                                             hits: list[tuple[int, int, str, str]], compression: str,
                                             early: int, one_task: bool) -> None:
    # Many CPUs, ties (dt 0), pairs left open, returns alone, tasks moving between CPUs (unless one_task: a
    # task per CPU), and a page stamped early (0: none): the stream's ops are the whole read's, and the
    # light walk takes a file whose times ascend exactly when the whole read's bulk path does (its task checks
    # are the same).
    events, t = [], 1_000_000_000
    for k, (cpu, dt, fn, how) in enumerate(hits):
        pid = cpu if one_task else (k // 7) % 3
        t += dt * 100
        ret = fn + "__return"
        values = (0x1000000 + k * 0x1000, 0x1000) if fn in ("memblock_reserve", "memblock_phys_free") else _CALLS[fn]
        if how != "return" or ret not in _RETURNS:
            events.append(_event(t, fn, *values, pid=pid, cpu=cpu))
        if how != "call" and ret in _RETURNS:
            events.append(_event(t + 10, ret, 0x7FFF0000 + k, pid=pid, cpu=cpu))
    path = tmp_path_factory.mktemp("merge") / "m.dat"
    with pytest.MonkeyPatch.context() as m:
        if early:
            _going_down(m, early, 1000)
        write_tracedat(path, [], events=events, formats=_formats(), uname=UNAME, compression=compression)
    bulk = []
    with pytest.MonkeyPatch.context() as m:
        checks = extract._Extractor._probes_in_bulk
        m.setattr(extract._Extractor, "_probes_in_bulk", lambda *a: bulk.append(checks(*a)) or bulk[-1])
        try:
            whole = read_tracedat(path).ops
        except FormatError as e:  # returns alone: no memblock activity
            with pytest.raises(FormatError, match=re.escape(str(e))):
                stream_tracedat(path)
            return
    with pytest.MonkeyPatch.context() as m:
        ops, light = _streamed(path, m)
    assert format_script(ops) == format_script(whole)
    if bulk:  # (the whole read checks a file whose CPUs' times ascend only)
        assert light == bulk[0]


@pytest.mark.parametrize("case", ["usual", "return of another task", "task on two CPUs", "return first"])
def test_the_light_walks_task_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    # The checks the light walk makes as it goes (the tasks are not kept) decline what the whole read's
    # bulk path declines; the ops are the whole read's either way.
    fn, ret = "memblock_phys_alloc_range", "memblock_phys_alloc_range__return"
    events = []
    for i in range(400):  # several pages: the checks carry over from one squeezed run to the next
        t = 1_000_000_000 + 100 * i
        cpu = i % 2
        events.append(_event(t, fn, *_CALLS[fn], pid=cpu + 1, cpu=cpu))
        events.append(_event(t + 10, ret, 0x7FFF0000 + i, pid=cpu + 1, cpu=cpu))
    if case == "return of another task":
        events[-3] = events[-3]._replace(payload=_event(0, ret, 0x1234, pid=7).payload)
    elif case == "task on two CPUs":
        events[-2:] = [_event(2_000_000_000, fn, *_CALLS[fn], pid=1, cpu=1),
                       _event(2_000_000_010, ret, 0x5678, pid=1, cpu=1)]
    elif case == "return first":
        events[0] = _event(999_999_000, ret, 0x9999, pid=1, cpu=0)
    path = tmp_path / "t.dat"
    write_tracedat(path, [], events=events, formats=_formats(), uname=UNAME)
    ops, light = _streamed(path, monkeypatch)
    assert format_script(ops) == format_script(read_tracedat(path).ops)
    assert light == (case == "usual")


def test_the_walk_keeps_no_probe_payload(tmp_path: Path) -> None:
    # stream_tracedat() walks the whole file before the first op: it keeps a byte per probe record (its
    # event; its task is checked as the walk goes), not the payload and its columns (104 bytes a record
    # measured before the light walk; 6 now).
    from test_stream import _peak, _probe_file

    small, big = _probe_file(tmp_path / "s.dat", 8_000), _probe_file(tmp_path / "b.dat", 32_000)
    records = 3 * (32_000 - 8_000)
    per_record = (_peak(lambda: stream_tracedat(big)) - _peak(lambda: stream_tracedat(small))) / records
    assert per_record < 12, per_record


_RETURNS = {"memblock_alloc_try_nid__return", "memblock_phys_alloc_range__return"}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 6), st.integers(1, 5)), max_size=12), min_size=1, max_size=5))
def test_merged_windows_is_the_heap_merge_lower_stream_first(shape: list[list[tuple[int, int]]]) -> None:
    """_merged_windows() puts the streams' windows in the order of heapq.merge by time (a tie to the earlier
    stream, then to the earlier item), whatever the window sizes and however many times tie."""
    import heapq
    import itertools

    streams = []
    for k, windows in enumerate(shape):
        t, got = 0, []
        for j, (step, size) in enumerate(windows):
            times = list(itertools.accumulate([step] + [step % 2] * (size - 1), initial=t))[1:]
            t = times[-1]
            got.append(([(k, j, i) for i in range(size)], times))
        streams.append(got)
    want = [op for _, op in heapq.merge(*([(ts, op) for ops, times in s for op, ts in zip(ops, times, strict=True)]
                                          for s in streams), key=lambda x: x[0])]
    out = list(extract._merged_windows([iter(s) for s in streams]))
    assert [op for ops, _ in out for op in ops] == want
    assert [t for _, times in out for t in times] == sorted(t for s in streams for _, times in s for t in times)
