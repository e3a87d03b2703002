# SPDX-License-Identifier: GPL-2.0-only
"""Bad input: one InputError, one line, naming the file (and the line when there is one)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from kho_replay.parsers import assumptions, load
from kho_replay.replay.errors import FormatError, InputError, TruncatedError, UnsupportedError

from .conftest import TRACES, stamped

ADD = "memblock_add: [0x0000000000100000-0x00000000bffdffff] e820__memblock_setup+0x94/0xc0"


def _error(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        load(path)
    e = info.value
    text = str(e)
    assert "\n" not in text and text.startswith(str(path))
    assert "Traceback" not in text
    return e


def test_missing_file(tmp_path: Path) -> None:
    e = _error(tmp_path / "nope.log")
    assert "no such file" in str(e)


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.log"
    p.write_text("")
    assert isinstance(_error(p), FormatError)


def test_binary_data(tmp_path: Path) -> None:
    p = tmp_path / "blob.log"
    p.write_bytes(b"line one\nline two\n\x00\x01\x02\xff")
    e = _error(p)
    assert isinstance(e, FormatError) and e.line == 3


def test_log_without_memblock_lines(tmp_path: Path) -> None:
    p = tmp_path / "quiet.log"
    p.write_text("[    0.000000] Linux version 7.2.13 (x86_64-linux-gnu-gcc)\n[    0.1] Hello\n")
    e = _error(p)
    assert isinstance(e, FormatError) and "memblock=debug" in str(e)


def test_line_cut_in_the_middle(tmp_path: Path) -> None:
    p = tmp_path / "cut.log"
    p.write_text(stamped(ADD) + "[    0.000000] __memblock_reserve: [0x00000000000f5ba0-0x0000")
    e = _error(p)
    assert isinstance(e, TruncatedError) and e.line == 3 and ":3: " in str(e)


def test_dump_cut_at_end_of_file(tmp_path: Path) -> None:
    p = tmp_path / "cutdump.log"
    p.write_text(stamped(ADD, "MEMBLOCK configuration:", " memory size = 0x1000 reserved size = 0x0"))
    assert isinstance(_error(p), TruncatedError)


def test_unknown_kernel_version_is_an_assumption(tmp_path: Path) -> None:
    """A release older than every era is read as the oldest, and one warning says so (issue 12)."""
    p = tmp_path / "old.log"
    p.write_text(stamped(ADD, version="Linux version 3.10.0-1160.el7.x86_64 (mockbuild@x86-vm) (gcc)"))
    t = load(p)
    assert len([op for op in t.ops if not op.inferred]) == 1
    note = assumptions(t)
    assert note is not None and "3.10.0-1160.el7.x86_64 is older than every console era" in note


def test_no_version_line_is_read_with_an_assumed_release(tmp_path: Path) -> None:
    p = tmp_path / "noversion.log"
    p.write_text(f"{ADD}\n")
    t = load(p)
    assert len([op for op in t.ops if not op.inferred]) == 1
    note = assumptions(t)
    assert note is not None and note.startswith("no 'Linux version' line: ")


def test_two_boots_in_one_log() -> None:
    p = TRACES / "arm64-kho-7.2.13-E-numa2-12G-hugepages1G-pernode-kho_scratch" / "console.log.gz"
    e = _error(p)
    assert isinstance(e, UnsupportedError) and e.line is not None and "2 boots in this log" in str(e)


def test_tracedat_cut_after_its_magic(tmp_path: Path) -> None:
    # load() reads trace.dat now: a file cut right after its version is truncated, at that offset.
    p = tmp_path / "trace.dat"
    p.write_bytes(b"\x17\x08\x44tracing6\x00")
    e = _error(p)
    assert isinstance(e, TruncatedError) and e.offset == 12


def test_truncated_gzip(tmp_path: Path) -> None:
    p = tmp_path / "cut.log.gz"
    p.write_bytes(gzip.compress(stamped(ADD).encode())[:-12])
    assert isinstance(_error(p), TruncatedError)


def test_bad_op_script_names_line(tmp_path: Path) -> None:
    p = tmp_path / "x.ops"
    p.write_text("add 0x1000 4K\nreserve 0x1000\n")
    e = _error(p)
    assert isinstance(e, FormatError) and e.line == 2
