# SPDX-License-Identifier: GPL-2.0-only
"""The console reader hands its ops out as the walk makes them (ConsoleReader.sink), and ``parse`` prints the op
script from them (parsers.load_script): the ops, observations, context, skipped lines and errors must be those
of the read that holds every op, on every real log and on the late edits a log can call for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kho_replay.parsers import TextFile, boot_count, load, load_script, read_text
from kho_replay.parsers.console import reader as reader_mod
from kho_replay.parsers.console.reader import read_console_file, read_console_text
from kho_replay.parsers.tracedat.extract import read_tracedat, stream_script
from kho_replay.replay.cli import app
from kho_replay.replay.errors import KhoReplayError, TruncatedError
from kho_replay.replay.ops import Op, Trace, format_script

from .conftest import TRACES, stamped

SHARED = Path("/work/shared/traces")
#: every real console log: the fixtures, the public logs, and the shared captures where they are
LOGS = sorted({*TRACES.glob("*/console*.log*"), *(TRACES / "public").glob("*.txt"),
               *SHARED.glob("*/console*.log*"), *(SHARED / "public").glob("*.txt")})
TRACEDATS = sorted({*(TRACES / "tracedat").rglob("*.dat"), *(SHARED / "tracedat").rglob("*.dat")})
X86 = TRACES / "x86_64-debian-7.2.13-4G" / "console.log"


@pytest.fixture
def often(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hand out (and make the call runs ahead into lines) every 3 kept lines: every window edge the walk can meet."""
    monkeypatch.setattr(reader_mod, "_HAND_OUT_EVERY", 3)


@pytest.fixture(params=[1, 3, 40])
def every(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """:func:`often`, at several intervals."""
    monkeypatch.setattr(reader_mod, "_HAND_OUT_EVERY", request.param)


def _handed(read: Callable[..., Trace]) -> tuple[Trace, list[Op], int]:
    """The Trace *read* returns with a sink, the ops the sink took, and how many times it took some."""
    got: list[Op] = []
    calls = 0

    def sink(ops: list[Op]) -> None:
        nonlocal calls
        calls += 1
        got.extend(ops)

    return read(sink=sink), got, calls


def _same_read(read: Callable[..., Trace]) -> int:
    """Read with and without a sink: the same everything; return the sink's calls."""
    try:
        whole = read()
    except KhoReplayError as e:
        with pytest.raises(type(e)) as raised:
            read(sink=lambda ops: None)
        assert str(raised.value) == str(e)
        return 0
    t, ops, calls = _handed(read)
    assert t.ops == ()
    assert ops == list(whole.ops)
    assert t.observations == whole.observations  # their ``at`` counts the ops handed out
    assert t.context == whole.context and t.skipped == whole.skipped
    return calls


@pytest.mark.usefixtures("often")
@pytest.mark.parametrize("path", LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_handed_out_ops_are_the_whole_reads(path: Path) -> None:
    boots = [None] if boot_count(path) == 1 else [None, 1, -1]
    for boot in boots:
        f = TextFile(path)
        if f.whole:
            _same_read(lambda boot=boot, text=f.head, **kw: read_console_text(text, str(path), boot=boot, **kw))
        else:
            _same_read(lambda boot=boot, **kw: read_console_file(TextFile(path), boot=boot, **kw))


@pytest.mark.parametrize("path", LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_load_script_prints_the_op_script_of_load(path: Path) -> None:
    boot = None if boot_count(path) == 1 else -1
    trace = load(path, boot=boot)
    t, script = load_script(path, boot=boot)
    assert "".join(script) == format_script(trace.ops)
    assert t.context == trace.context  # the warning line is the same


@pytest.mark.parametrize("path", TRACEDATS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stream_script_prints_the_op_script_of_read_tracedat(path: Path) -> None:
    try:
        whole = read_tracedat(path)
    except KhoReplayError as e:
        with pytest.raises(type(e)) as raised:
            stream_script(path)
        assert str(raised.value) == str(e)
        return
    head, script = stream_script(path)
    assert "".join(script) == format_script(whole.ops)
    assert head.context == whole.context and head.skipped == whole.skipped


def _x86_lines() -> list[str]:
    return read_text(X86).splitlines(keepends=True)


@pytest.mark.usefixtures("every")
def test_the_ops_before_the_first_dump_wait_for_its_seeds() -> None:
    # the first dump inserts the regions no line explains before every op made until then
    text = read_text(X86)
    _, ops, calls = _handed(lambda **kw: read_console_text(text, "x.log", **kw))
    assert calls > 1 and ops[0].inferred and "first MEMBLOCK configuration dump" in ops[0].inferred
    assert ops == list(read_console_text(text, "x.log").ops)


@pytest.mark.usefixtures("every")
def test_a_pending_allocation_at_the_end() -> None:
    # the log ends right after an allocation's API line: no reservation follows, it failed
    lines = _x86_lines()
    cut = next(i for i, ln in enumerate(lines) if "memblock_alloc_try_nid: " in ln and i > 200)
    text = "".join(lines[:cut + 1])
    calls = _same_read(lambda **kw: read_console_text(text, "x.log", **kw))
    assert calls > 1
    assert format_script(read_console_text(text, "x.log").ops).splitlines()[-1].startswith("alloc ")


@pytest.mark.usefixtures("every")
def test_a_log_without_a_dump_hands_out_from_its_start() -> None:
    reserves = [f"memblock_reserve: [{0x1000000 + i * 0x1000:#018x}-{0x1000fff + i * 0x1000:#018x}] "
                f"setup_arch+0x1c2/0xd80" for i in range(200)]
    text = stamped(*reserves)
    assert _same_read(lambda **kw: read_console_text(text, "x.log", **kw)) > 3


@pytest.mark.usefixtures("every")
def test_a_generic_arch_holds_its_ops_for_the_silent_calls() -> None:
    # a generic arch's silent calls go in among the ops after the walk: handed out at the end only
    text = "".join(_x86_lines()[:300])
    t, ops, calls = _handed(lambda **kw: read_console_text(text, "x.log", arch="riscv64", **kw))
    whole = read_console_text(text, "x.log", arch="riscv64")
    assert ops == list(whole.ops) and t.observations == whole.observations
    assert calls == -(-len(ops) // reader_mod._HAND_OUT_EVERY)


def test_a_truncated_log_prints_its_error_alone(tmp_path: Path) -> None:
    lines = _x86_lines()
    # cut inside the second dump: ops were handed out before the error
    second = [i for i, ln in enumerate(lines) if "MEMBLOCK configuration:" in ln][1]
    log = tmp_path / "console.log"
    log.write_text("".join(lines[:second + 4]))
    with pytest.raises(TruncatedError) as whole:
        load(log)
    with pytest.raises(TruncatedError) as streamed:
        load_script(log)
    assert str(streamed.value) == str(whole.value)
    res = CliRunner().invoke(app, ["parse", str(log)])
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr == f"kho-replay: error: {whole.value}\n"
