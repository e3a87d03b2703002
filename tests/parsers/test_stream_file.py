# SPDX-License-Identifier: GPL-2.0-only
"""A capture file longer than one piece is read as a stream (never all held): the Trace, the boot count and
every error are those of the text read whole."""

from __future__ import annotations

import codecs
import gzip
import lzma
import random
from pathlib import Path

import pytest

import kho_replay.parsers as parsers_mod
from kho_replay.parsers import TextFile, boot_count, load, read_text
from kho_replay.parsers.console import reader as reader_mod
from kho_replay.replay.errors import InputError

ROOT = Path(__file__).parents[2] / "traces"
LOGS = sorted([*ROOT.glob("*/console*.log*"), *ROOT.glob("public/*.txt")])


def _small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    # pieces of 32 KiB (a head of about 300 lines), chunks of 8 KiB: every boundary in every log
    monkeypatch.setattr(parsers_mod, "_PIECE", 1 << 15)
    monkeypatch.setattr(reader_mod, "_CHUNK", 1 << 13)


@pytest.mark.parametrize("log", LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_streamed_file_reads_as_whole_text(log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = boot_count(log)
    boots = [1, 2, -1] if n > 1 else [None]
    whole = [load(log, boot=b) for b in boots]
    with monkeypatch.context() as m:
        _small_pieces(m)
        assert not TextFile(log).whole or log.stat().st_size < 1 << 15
        assert boot_count(log) == n
        assert [load(log, boot=b) for b in boots] == whole


def test_decoded_in_pieces_as_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Broken UTF-8 anywhere, at piece boundaries too: the text is read_text()'s."""
    rng = random.Random(3)
    data = bytearray()
    for _ in range(6000):
        data += rng.choice([b"[    0.1] caf\xc3\xa9 ok\n", b"\xe2\x82", b"\xac", b"\xff", b"plain\n", b"\xf0\x9f\x98"])
    p = tmp_path / "u.log"
    p.write_bytes(bytes(data))
    with monkeypatch.context() as m:
        m.setattr(parsers_mod, "_PIECE", 1 << 10)
        f = TextFile(p)
        assert not f.whole and f.text() == read_text(p)
    assert codecs.decode(bytes(data), "utf-8", "replace") == read_text(p)


@pytest.mark.parametrize("kind", ["gz", "xz"])
def test_truncated_archive_is_the_same_error(kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = ("[    0.000000] Linux version 7.2.13 (x)\n" + "[    0.1] memblock_add: x\n" * 50000).encode()
    packed = gzip.compress(text) if kind == "gz" else lzma.compress(text)
    p = tmp_path / f"c.log.{kind}"
    p.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(InputError) as whole:
        read_text(p)
    with monkeypatch.context() as m:
        _small_pieces(m)
        with pytest.raises(InputError) as streamed:
            load(p)
    assert str(streamed.value) == str(whole.value)
