# SPDX-License-Identifier: GPL-2.0-only
"""write -> read round trips over random console streams, and trace-cmd reading what we write."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kho_replay.parsers.tracedat import iter_console, open_tracedat
from kho_replay.parsers.tracedat.render import render_report
from kho_replay.parsers.tracedat.structs import TraceCmdOption as Opt
from kho_replay.parsers.tracedat.writer import ConsoleLine, write_tracedat
from kho_replay.replay.errors import UnsupportedError

#: (version, compression): every layout the writer can produce.
LAYOUTS = [(7, "zstd"), (7, "zlib"), (7, "none"), (6, "none")]

gaps = st.one_of(st.integers(0, 2000), st.sampled_from([0, 1, (1 << 27) - 1, 1 << 27, 1 << 32, 10**12]))
messages = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=300)
streams = st.lists(st.tuples(gaps, st.integers(0, 3), st.sampled_from([0, 1, 42, 4242]), messages),
                   max_size=120)


def build(stream: list[tuple[int, int, int, str]]) -> list[ConsoleLine]:
    ts = 1_000_000_000
    lines = []
    for gap, cpu, pid, msg in stream:
        ts += gap
        lines.append(ConsoleLine(ts, cpu, pid, msg))
    return lines


def expected(lines: list[ConsoleLine]) -> list[tuple[int, int, int, str]]:
    # Report order: by time, ties to the lower CPU; stable within a CPU.
    return sorted(((x.ts, x.cpu, x.pid, x.msg) for x in lines), key=lambda t: (t[0], t[1]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=streams, layout=st.sampled_from(LAYOUTS), big_endian=st.booleans(),
       long_size=st.sampled_from([4, 8]))
def test_round_trip(tmp_path: Path, stream: list[tuple[int, int, int, str]], layout: tuple[int, str],
                    big_endian: bool, long_size: int) -> None:
    version, compression = layout
    lines = build(stream)
    path = tmp_path / "rt.dat"
    write_tracedat(path, lines, version=version, compression=compression, big_endian=big_endian,
                   long_size=long_size, cpus=4)
    with open_tracedat(path) as td:
        assert (td.file_version, td.compression, td.big_endian) == (version, compression, big_endian)
        assert td.header_page.long_size == long_size
        assert td.cpu_count == 4
        got = [(e.ts, e.cpu, e.pid, e.get("msg")) for e in td.iter_events()]
        assert all(e.name == "console" and e.system == "printk" for e in td.iter_events())
        fast = list(iter_console(td))
    assert got == expected(lines)
    assert fast == [ConsoleLine(*t) for t in got]


def test_big_gaps_use_time_extends_and_big_lines_type0(tmp_path: Path) -> None:
    lines = [ConsoleLine(5, 0, 1, "a"), ConsoleLine(5 + (1 << 40), 0, 1, "b" * 200)]
    path = tmp_path / "x.dat"
    write_tracedat(path, lines, compression="none")
    with open_tracedat(path) as td:
        (_, page), = td.iter_pages(td.buffer(""), td.buffer("").cpus[0])
        recs = list(td.iter_records())
    assert [r.ts for r in recs] == [5, 5 + (1 << 40)]
    assert page[16 + 4 + 16] & 31 == 30  # the second record is preceded by a TIME_EXTEND
    assert len(recs[1].payload) > 112


def test_a_line_that_cannot_fit_a_page_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError, match="does not fit"):
        write_tracedat(tmp_path / "x.dat", [ConsoleLine(1, 0, 1, "x" * 5000)])


TRACE_CMD = shutil.which("trace-cmd")


@pytest.mark.skipif(TRACE_CMD is None, reason="trace-cmd not installed (apt-get install trace-cmd)")
@pytest.mark.parametrize("version,compression", [(7, "zstd"), (7, "none"), (6, "none")])
@pytest.mark.parametrize("big_endian,long_size", [(False, 8), (True, 4)])
def test_trace_cmd_reads_what_we_write(tmp_path: Path, version: int, compression: str,
                                       big_endian: bool, long_size: int) -> None:
    # Debian's trace-cmd 3.1.6 has no zlib, so zlib is only checked by the round trip above.
    lines = build([(g, c, p, f"memblock_reserve: [{i:#018x}-{i + 4095:#018x}] setup_arch+0x1c2/0xd80"
                    + "z" * (i % 7 * 40)) for i, (g, c, p) in enumerate(
                        [(1000, i % 3, (0, 1, 42)[i % 3]) for i in range(500)] + [(1 << 33, 1, 42)])])
    path = tmp_path / "tc.dat"
    write_tracedat(path, lines, version=version, compression=compression, big_endian=big_endian,
                   long_size=long_size, comms={1: "swapper/0", 42: "memblock-test"})
    want = subprocess.run([TRACE_CMD, "report", "-t", str(path)], capture_output=True, check=True).stdout
    with open_tracedat(path) as td:
        got = "".join(line + "\n" for line in render_report(td)).encode("utf-8", "surrogateescape")
    assert got == want
    assert want.count(b" console: ") == len(lines)
    dump = subprocess.run([TRACE_CMD, "dump", "-v", str(path)], capture_output=True, text=True)
    assert "valid trace-cmd file" in dump.stdout + dump.stderr


#: Timestamp options and what trace-cmd 3.1.6 made of them (checked by the test below it).
TS_OPTIONS = {
    "offset": ([(Opt.TRACECMD_OPTION_OFFSET, b"123456789\0")], lambda ts: ts + 123456789),
    "negative-offset": ([(Opt.TRACECMD_OPTION_OFFSET, b"-500\0")], lambda ts: ts - 500),
    "date-in-us": ([(Opt.TRACECMD_OPTION_DATE, b"0x10\0")], lambda ts: ts + 16_000),
    "tsc2nsec": ([(Opt.TRACECMD_OPTION_TSC2NSEC, struct.pack("<IIQ", 3, 1, 0))], lambda ts: ts * 3 >> 1),
}
TS_LINES = [ConsoleLine(1_000_000_000 + i * 1000, i % 2, 1, f"line {i}") for i in range(5)]


@pytest.mark.parametrize("version", [6, 7])
@pytest.mark.parametrize("case", sorted(TS_OPTIONS))
def test_timestamp_options(tmp_path: Path, case: str, version: int) -> None:
    options, fix = TS_OPTIONS[case]
    path = tmp_path / "ts.dat"
    write_tracedat(path, TS_LINES, version=version, compression="none", options=options)
    with open_tracedat(path) as td:
        assert [e.ts for e in td.iter_events()] == [fix(x.ts) for x in TS_LINES]
        got = "".join(line + "\n" for line in render_report(td)).encode()
    if TRACE_CMD is not None:
        assert got == subprocess.run([TRACE_CMD, "report", "-t", str(path)], capture_output=True,
                                     check=True).stdout
