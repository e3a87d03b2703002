# SPDX-License-Identifier: GPL-2.0-only
"""Container facts and decoded events of the synthetic files: versions, byte orders, long
sizes, compression, sparse CPUs, missed events, time stamps."""

from __future__ import annotations

import itertools

import pytest
from tracedat_testdata import SYNTHETIC, SYNTHETIC_FILES

from kho_replay.parsers.tracedat import FieldKind, open_tracedat
from kho_replay.parsers.tracedat.reader import MISSED_UNKNOWN

#: name -> (file version, compression, big endian, kernel long size)
EXPECTED = {
    "v6.dat": (6, "none", False, 8),
    "v6be32.dat": (6, "none", True, 4),
    "v7be.dat": (7, "none", True, 8),
    "v7le32.dat": (7, "zstd", False, 4),
    "v7none.dat": (7, "none", False, 8),
    "v7zlib.dat": (7, "zlib", False, 8),
    "v7zstd-be.dat": (7, "zstd", True, 8),
    "v7zstd.dat": (7, "zstd", False, 8),
}


def test_expectations_cover_the_set() -> None:
    assert sorted(EXPECTED) == SYNTHETIC_FILES


@pytest.mark.parametrize("name", SYNTHETIC_FILES)
def test_header(name: str) -> None:
    with open_tracedat(SYNTHETIC / name) as td:
        assert (td.file_version, td.compression, td.big_endian, td.header_page.long_size) == EXPECTED[name]
        assert td.page_size == 4096
        assert td.header_page.data_offset == 8 + td.header_page.long_size
        # CPU 2 is empty: absent from the buffer, yet counted by CPUCOUNT / the v6 table.
        assert [c.cpu for c in td.buffer("").cpus] == [0, 1]
        assert td.cpu_count == 3


@pytest.mark.parametrize("name", SYNTHETIC_FILES)
def test_events_decode_the_same_in_every_variant(name: str) -> None:
    with open_tracedat(SYNTHETIC / "v7zstd.dat") as ref, open_tracedat(SYNTHETIC / name) as td:
        want = [(e.ts, e.cpu, e.pid, e.name, e.missed) for e in ref.iter_events()]
        got = [(e.ts, e.cpu, e.pid, e.name, e.missed) for e in td.iter_events()]
        assert got == want
        # Strings are byte-order and long-size independent.
        assert [e.get("msg") for e in td.iter_events() if e.name == "console"] == [
            e.get("msg") for e in ref.iter_events() if e.name == "console"]


@pytest.mark.parametrize("name", SYNTHETIC_FILES)
def test_timestamps_merge_in_order(name: str) -> None:
    with open_tracedat(SYNTHETIC / name) as td:
        keys = [(r.ts, r.cpu) for r in td.iter_records()]
    assert keys == sorted(keys)
    assert len(keys) == 200
    # A TIME_EXTEND moves the clock by more than 2**27 ns between two records.
    assert any(b[0] - a[0] >= 1 << 27 for a, b in itertools.pairwise(keys))


def test_missed_events_with_and_without_count() -> None:
    with open_tracedat(SYNTHETIC / "v7none.dat") as td:
        missed = [(e.cpu, e.missed) for e in td.iter_events() if e.missed]
    assert missed == [(0, 1234), (0, MISSED_UNKNOWN)]


def test_field_kinds_and_values() -> None:
    with open_tracedat(SYNTHETIC / "v6be32.dat") as td:
        ev = next(e for e in td.iter_events() if e.name == "memblock_alloc_range_nid")
        fmt = ev.format
        assert fmt is not None and fmt.system == "kprobes"
        assert fmt.fields[fmt.field_index("caller")].kind is FieldKind.DATA_LOC
        assert ev.get("nid") == -1  # s32, signed:1
        assert ev.get("end") == (1 << 64) - 1
        assert ev.get("__probe_ip") == 0xC0002200  # 4-byte kernel long
        assert ev.get("caller") == "alloc_node_data"
        big = next(e for e in td.iter_events() if e.name == "print")
        assert big.get("buf").endswith("alloc_node_data+0x1f/0x60\n")
        assert len(big.payload) > 112  # a type-0 "big" record


def test_lazy_metadata_and_formats_by_name() -> None:
    with open_tracedat(SYNTHETIC / "v7zstd.dat") as td:
        assert "kallsyms_text" not in td.__dict__  # nothing decompressed until asked
        fmt = td.decoder.find("printk", "console")
        assert fmt is not None and fmt.print_fmt == '"%s", __get_str(msg)'
        assert b"setup_arch" in td.kallsyms_text


def test_unknown_instance_is_our_error() -> None:
    from kho_replay.replay.errors import UnsupportedError

    with open_tracedat(SYNTHETIC / "v6.dat") as td, pytest.raises(UnsupportedError):
        td.buffer("nope")


def test_unknown_event_ids_and_options_are_kept_and_listed(tmp_path) -> None:
    from kho_replay.parsers.tracedat.render import UNKNOWN_EVENT, render_report

    data = bytearray((SYNTHETIC / "v6.dat").read_bytes())
    i = data.find(b"ID: 411")
    data[i:i + 7] = b"ID: 412"  # console records (type 411) now have no format
    j = data.find(b"\x05\x00\x1f\x00\x00\x00Linux")
    data[j] = 99  # the UNAME option becomes an id trace-cmd does not know
    path = tmp_path / "unknown.dat"
    path.write_bytes(bytes(data))
    with open_tracedat(path) as td:
        lines = list(render_report(td))
        assert td.decoder.unknown == {411: 29}
        reasons = [s.reason for s in td.skipped()]
        unknown_opt = [o for o in td.options if o.id == 99]
    assert reasons == ["unknown option 99", "no format for event id 411 (29 records)"]
    assert unknown_opt[0].data.startswith(b"Linux gen")
    # trace-cmd 3.1.6 prints this for a format-less ID (checked by hand against its output).
    assert lines.count(f"{UNKNOWN_EVENT}{UNKNOWN_EVENT} (NULL):               {UNKNOWN_EVENT}") == 29
    assert len(lines) == 203


def test_iterating_after_close_is_our_error() -> None:
    from kho_replay.replay.errors import InputError

    td = open_tracedat(SYNTHETIC / "v6.dat")
    events = td.iter_events()
    first = next(events)
    td.close()
    assert first.name == "function"  # what was yielded stays usable
    with pytest.raises(InputError, match="closed"):
        list(events)


def test_latency_format_is_unsupported_not_misread(tmp_path) -> None:
    from kho_replay.replay.errors import UnsupportedError

    data = bytearray((SYNTHETIC / "v6.dat").read_bytes())
    i = data.find(b"flyrecord\0")
    data[i:i + 10] = b"latency  \0"  # the rest of the file is now latency-tracer text
    path = tmp_path / "latency.dat"
    path.write_bytes(bytes(data))
    with open_tracedat(path) as td:
        assert td.buffer("").latency
        with pytest.raises(UnsupportedError, match=r"@0x[0-9a-f]{8}: latency-format data"):
            next(td.iter_records())


@pytest.mark.parametrize("name", SYNTHETIC_FILES)
def test_iter_console_agrees_with_the_general_decoder(name: str) -> None:
    from kho_replay.parsers.tracedat import ConsoleLine, iter_console

    with open_tracedat(SYNTHETIC / name) as td:
        general = [ConsoleLine(e.ts, e.cpu, e.pid, e.get("msg")) for e in td.iter_events()
                   if e.name == "console"]
        fast = list(iter_console(td))
    assert len(fast) == 29
    assert fast == general
