# SPDX-License-Identifier: GPL-2.0-only
"""The same real boot captured five ways gives the same ops: dmesg -T, journalctl -k, syslog, CRLF, [T0]."""

from __future__ import annotations

import re

import pytest

from kho_replay.parsers.console import read_console, read_console_text

from .conftest import TRACES

LOG = TRACES / "x86_64-debian-7.2.13-4G" / "console.log"
_STAMP = re.compile(r"^(.*?)\[\s*(\d+\.\d+)\] ")
_ESC = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|[@-z])")


def _kernel_lines() -> list[tuple[str, str]]:
    """(timestamp, text) of the log's printk lines, firmware noise dropped as journald would."""
    out = []
    for raw in LOG.read_text(errors="replace").splitlines():
        raw = _ESC.sub("", raw)
        m = _STAMP.match(raw)
        if m and (not m.group(1) or m.group(1).isalnum()):
            out.append((m.group(2), raw[m.end():]))
    return out


VARIANTS = {
    "dmesg -T": lambda ts, text: f"[Wed Nov 25 18:10:{int(float(ts)) % 60:02d} 2026] {text}",
    "journalctl -k": lambda ts, text: f"Nov 25 18:10:00 guest kernel: {text}",
    "syslog priority": lambda ts, text: f"<6>[{float(ts):12.6f}] {text}",
    "CRLF serial": lambda ts, text: f"[{float(ts):12.6f}] {text}\r",
    "caller id": lambda ts, text: f"[{float(ts):12.6f}] [    T0] {text}",
    "dmesg --notime": lambda ts, text: text,
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_same_ops_whatever_the_capture(name: str) -> None:
    reference = read_console(LOG)
    fmt = VARIANTS[name]
    text = "\n".join(fmt(ts, body) for ts, body in _kernel_lines()) + "\n"
    t = read_console_text(text, f"{name}.log")
    assert t.ops == reference.ops
    assert [type(o) for o in t.observations] == [type(o) for o in reference.observations]
    assert t.skipped == ()
