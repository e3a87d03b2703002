# SPDX-License-Identifier: GPL-2.0-only
"""What a long capture's commands hold: validate replays the ops as the reader hands them out (OpStream),
call runs hold their place in the capture rather than their text, parse's script waits in a file.
Every result is the one of the Trace read whole."""

from __future__ import annotations

from pathlib import Path

import pytest

import kho_replay.parsers as parsers_mod
from kho_replay.parsers import boot_count, load, load_script
from kho_replay.parsers.console import reader as reader_mod
from kho_replay.replay.compare.validate import validate
from kho_replay.replay.inputs import Source, validate_source
from kho_replay.replay.ops import format_script_chunks

ROOT = Path(__file__).parents[2] / "traces"
LOGS = sorted([*ROOT.glob("*/console*.log*"), *ROOT.glob("public/*.txt")])
DIRS = sorted(p for p in ROOT.iterdir() if p.is_dir() and (p / "memblock-reserved.txt").exists())


def _small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    # pieces of 32 KiB, chunks of 8 KiB: call runs in many chunks, read again across boundaries
    monkeypatch.setattr(parsers_mod, "_PIECE", 1 << 15)
    monkeypatch.setattr(reader_mod, "_CHUNK", 1 << 13)
    monkeypatch.setattr(parsers_mod, "_SPOOL", 1 << 10)


def _boots(path: Path) -> list[int | None]:
    n = boot_count(path)
    return [1, 2, -1] if n > 1 else [None]


@pytest.mark.parametrize("path", [*LOGS, *DIRS], ids=lambda p: str(p.relative_to(ROOT)))
def test_streamed_validate_is_whole_validate(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for b in _boots(path):
        try:
            whole = validate(load(path, boot=b))
        except Exception as e:  # an input error: the streamed read raises the same
            with monkeypatch.context() as m:
                _small_pieces(m)
                with pytest.raises(type(e)) as got:
                    validate_source(Source(path, b))
                assert str(got.value) == str(e)
            continue
        with monkeypatch.context() as m:
            _small_pieces(m)
            trace, streamed = validate_source(Source(path, b))
        assert streamed == whole
        assert streamed.summary() == whole.summary()
        if whole.ops and not whole.mismatches:
            assert not trace.ops  # replayed as they came: none held


@pytest.mark.parametrize("log", LOGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_spooled_script_is_the_ops_script(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for b in _boots(log):
        try:
            want = "".join(format_script_chunks(load(log, boot=b).ops))
        except Exception:  # input errors: test_stream_file's
            continue
        with monkeypatch.context() as m:
            _small_pieces(m)
            _, script = load_script(log, boot=b)
            assert "".join(script) == want


def test_debugfs_table_mid_log_that_differs(tmp_path: Path) -> None:
    """A reserved table pasted before the boot's end differs from the model there: the post-boot frees after it
    count (the streamed replay reads the boot again whole), and the report is validate()'s."""
    d = ROOT / "arm64-debian-7.2.13-4G"
    from kho_replay.parsers import read_text

    lines = read_text(d / "console.log.gz").splitlines(keepends=True)
    tables = ["# cat /sys/kernel/debug/memblock/memory\n", *read_text(d / "memblock-memory.txt").splitlines(True),
              "# cat /sys/kernel/debug/memblock/reserved\n", *read_text(d / "memblock-reserved.txt").splitlines(True)]
    log = tmp_path / "console.log"
    log.write_text("".join(lines[:400] + tables + lines[400:]))
    whole = validate(load(log))
    assert whole.debugfs == 4 and whole.after_boot_frees and whole.mismatches
    trace, streamed = validate_source(Source(log))
    assert streamed == whole
    assert len(trace.ops) == whole.ops  # a mismatch: the Trace is read whole again (the context table's ops)


# (one boot each: read_console_pieces() reads one)
@pytest.mark.parametrize("log", [p for p in LOGS if p.suffix == ".log" and boot_count(p) == 1],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_text_read_once_holds_its_chunks(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # read_console_pieces() (a trace.dat's text): its chunks held compressed, call runs read there across them
    text = log.read_text(errors="surrogateescape")
    whole = reader_mod.read_console_text(text, str(log))
    monkeypatch.setattr(reader_mod, "_CHUNK", 1 << 13)
    pieces = [text[i:i + 7000] for i in range(0, len(text), 7000)]
    held = reader_mod.read_console_pieces(iter(pieces), str(log))  # an iterator: one boot, vouched for
    assert repr((held.context, held.ops, [op.src for op in held.ops], held.observations, held.skipped)) == \
        repr((whole.context, whole.ops, [op.src for op in whole.ops], whole.observations, whole.skipped))
