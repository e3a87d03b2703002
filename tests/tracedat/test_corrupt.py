# SPDX-License-Identifier: GPL-2.0-only
"""Damaged files end in one line of ours with a byte offset: never a traceback, never a hang."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tracedat_testdata import SYNTHETIC, SYNTHETIC_FILES

from kho_replay.parsers.tracedat import open_tracedat
from kho_replay.parsers.tracedat.render import render_report
from kho_replay.replay.errors import InputError, TruncatedError

#: A damaged 30 KB file that takes this long is a hang (real reads take milliseconds).
HANG_SECONDS = 20
ONE_LINE = re.compile(r"^\S+@0x[0-9a-f]{8,}: [^\n]+$")


def consume(path: Path) -> int:
    """Open, walk and render everything; return the line count."""
    with open_tracedat(path) as td:
        return sum(1 for _ in render_report(td))


def cut_points(name: str) -> list[int]:
    data = (SYNTHETIC / name).read_bytes()
    with open_tracedat(SYNTHETIC / name) as td:
        bounds = {off for _, off in td.layout}
    points = set()
    for b in bounds:
        points.update({b - 1, b, b + 1, b + 8, b + 17})
    points.update(range(0, 64))
    points.update(range(0, len(data), 211))
    return sorted(p for p in points if 0 <= p < len(data))


@pytest.mark.parametrize("name", SYNTHETIC_FILES)
def test_every_cut_is_a_one_line_input_error(tmp_path: Path, name: str) -> None:
    data = (SYNTHETIC / name).read_bytes()
    with open_tracedat(SYNTHETIC / name) as td:
        strings_at = {off for what, off in td.layout if what == "STRINGS"}
    full = consume(SYNTHETIC / name)
    target = tmp_path / name
    for cut in cut_points(name):
        target.write_bytes(data[:cut])
        if cut in strings_at:
            # Without its trailing STRINGS section a v7 file is still complete (descriptions are
            # cosmetic, trace-cmd reads it too): it must read in full, not fail.
            assert consume(target) == full
            continue
        with pytest.raises(InputError) as info:
            consume(target)
        err = info.value
        assert ONE_LINE.match(str(err)), (cut, str(err))
        assert err.offset is not None
        if isinstance(err, TruncatedError) and "beyond the end" not in str(err):
            assert err.offset <= cut, (cut, str(err))  # where the cut record/section began


@pytest.mark.parametrize("name", SYNTHETIC_FILES)
def test_cut_at_a_section_boundary_names_that_section(tmp_path: Path, name: str) -> None:
    data = (SYNTHETIC / name).read_bytes()
    with open_tracedat(SYNTHETIC / name) as td:
        last_what, last_off = td.layout[-1]
    assert last_what in ("STRINGS", "cpu1")
    target = tmp_path / name
    target.write_bytes(data[: last_off + 1])
    with pytest.raises(TruncatedError) as info:
        consume(target)
    assert info.value.offset == last_off, (last_what, str(info.value))


def test_empty_and_foreign_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.dat"
    empty.write_bytes(b"")
    with pytest.raises(TruncatedError, match=r"empty\.dat@0x00000000: "):
        consume(empty)
    elf = tmp_path / "vmlinux"
    elf.write_bytes(b"\x7fELF" + bytes(60))
    with pytest.raises(InputError, match=r"bad magic"):
        consume(elf)


def test_version_above_seven_is_unsupported(tmp_path: Path) -> None:
    data = bytearray((SYNTHETIC / "v7none.dat").read_bytes())
    data[10] = ord("8")
    p = tmp_path / "v8.dat"
    p.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"@0x0000000a: trace.dat version 8"):
        consume(p)


def _flip_check(tmp_path: Path, name: str, flips: list[tuple[int, int]]) -> None:
    data = bytearray((SYNTHETIC / name).read_bytes())
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    target = tmp_path / f"flipped-{name}"
    target.write_bytes(bytes(data))

    def hung(signum: int, frame: object) -> None:
        raise AssertionError(f"reading {name} with flips {flips} took over {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        consume(target)
    except InputError as e:
        assert ONE_LINE.match(str(e)), str(e)
        assert e.offset is not None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


flips = st.lists(st.tuples(st.integers(0, 5000), st.integers(1, 255)), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(SYNTHETIC_FILES), flips=flips)
def test_flipped_header_and_metadata_bytes(tmp_path: Path, name: str, flips: list[tuple[int, int]]) -> None:
    _flip_check(tmp_path, name, flips)


page_flips = st.lists(st.tuples(st.integers(4096, 1 << 15), st.integers(1, 255)), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(SYNTHETIC_FILES), flips=page_flips)
def test_flipped_page_and_chunk_bytes(tmp_path: Path, name: str, flips: list[tuple[int, int]]) -> None:
    _flip_check(tmp_path, name, flips)
