# SPDX-License-Identifier: GPL-2.0-only
"""Issue 6's end goal: ``kho-replay boot.dat --strategy ext-scratch`` answers as the console log does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kho_replay.replay.cli import app, dispatch

TRACES = Path(__file__).resolve().parents[2] / "traces"
runner = CliRunner()


def _positions_out(x: object) -> object:
    # Positions differ by design (file:line vs trace.dat@offset); everything else must not.
    if isinstance(x, dict):
        return {k: _positions_out(v) for k, v in x.items() if k not in ("src", "trace")}
    if isinstance(x, list):
        return [_positions_out(v) for v in x]
    return x


@pytest.mark.parametrize("kexec", [False, True])
def test_recorded_boot_gives_the_console_log_answer(tmp_path: Path, kexec: bool) -> None:
    log = TRACES / "x86_64-kho-7.2.13-B-8G-hugepages1G2-defaultscale-scratchfail" / "console-kernel1.log.gz"
    dat = tmp_path / "boot.dat"
    assert runner.invoke(app, ["record", str(log), "-o", str(dat)]).exit_code == 0
    extra = ["--kexec"] if kexec else []
    # dispatch() is what the console script does with "kho-replay TRACE ...".
    runs = [runner.invoke(app, dispatch([str(p), "--strategy", "ext-scratch", "-f", "json", *extra]))
            for p in (dat, log)]
    # Trace B diverges under ext-scratch (its global scratch fails under baseline): exit 1 on both.
    assert [r.exit_code for r in runs] == [1, 1]
    a, b = (json.loads(r.stdout) for r in runs)
    assert a["trace"] == str(dat) and b["trace"] == str(log)
    assert _positions_out(a) == _positions_out(b)
    assert a["comparisons"][0]["changes"], "the comparison should report what ext-scratch changes"
