# SPDX-License-Identifier: GPL-2.0-only
"""stream_tracedat()'s light walk: the probe payloads are not kept but read again, each CPU's records as they
come, and the CPUs merged by time.  The ops must come in read_tracedat()'s order: by time, a tie to the lower
CPU, whatever the compression; a CPU whose time goes down is read as the whole read orders it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_extract import _CALLS, _event, _formats

from kho_replay.parsers.tracedat import extract, writer
from kho_replay.parsers.tracedat.extract import read_tracedat, stream_tracedat
from kho_replay.parsers.tracedat.writer import write_tracedat
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
    # whole read sorts them by time; the stream must give the same order.
    path = tmp_path / "t.dat"
    with monkeypatch.context() as m:
        _going_down(m, 2, 500)
        write_tracedat(path, [], events=_events(200, 2), formats=_formats(), uname=UNAME, compression=compression)
    ops, _ = _streamed(path, monkeypatch)
    whole = read_tracedat(path).ops
    assert format_script(ops) == format_script(whole)
    tags = [(op.expect if hasattr(op, "expect") else op.base) & 0xFFFF_FFFF_FFFF for op in ops]
    assert tags != sorted(tags)  # the page stamped early did move its records


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.sampled_from(sorted(_CALLS)),
                          st.sampled_from(["pair", "pair", "call", "return"])), min_size=1, max_size=400),
       st.sampled_from(["none", "zstd", "zlib"]), st.integers(0, 6))
def test_streamed_probes_are_the_whole_reads(tmp_path_factory: pytest.TempPathFactory,
                                             hits: list[tuple[int, int, str, str]], compression: str,
                                             early: int) -> None:
    # Many CPUs, ties (dt 0), pairs left open, returns alone, and a page stamped early (0: none): whichever
    # path the stream takes, its ops are the whole read's.
    events, t = [], 1_000_000_000
    for k, (cpu, dt, fn, how) in enumerate(hits):
        t += dt * 100
        ret = fn + "__return"
        values = (0x1000000 + k * 0x1000, 0x1000) if fn in ("memblock_reserve", "memblock_phys_free") else _CALLS[fn]
        if how != "return" or ret not in _RETURNS:
            events.append(_event(t, fn, *values, pid=cpu, cpu=cpu))
        if how != "call" and ret in _RETURNS:
            events.append(_event(t + 10, ret, 0x7FFF0000 + k, pid=cpu, cpu=cpu))
    path = tmp_path_factory.mktemp("merge") / "m.dat"
    with pytest.MonkeyPatch.context() as m:
        if early:
            _going_down(m, early, 1000)
        write_tracedat(path, [], events=events, formats=_formats(), uname=UNAME, compression=compression)
    whole = read_tracedat(path).ops
    _, ops = stream_tracedat(path)
    assert format_script(list(ops)) == format_script(whole)


def test_the_walk_keeps_no_probe_payload(tmp_path: Path) -> None:
    # stream_tracedat() walks the whole file before the first op: it keeps an event id and a task per probe
    # record (about 27 bytes), not the payload and its columns (about 80 bytes a record before the light walk).
    from test_stream import _peak, _probe_file

    small, big = _probe_file(tmp_path / "s.dat", 8_000), _probe_file(tmp_path / "b.dat", 32_000)
    records = 3 * (32_000 - 8_000)
    per_record = (_peak(lambda: stream_tracedat(big)) - _peak(lambda: stream_tracedat(small))) / records
    assert per_record < 40, per_record


_RETURNS = {"memblock_alloc_try_nid__return", "memblock_phys_alloc_range__return"}
