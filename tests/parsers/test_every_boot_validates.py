# SPDX-License-Identifier: GPL-2.0-only
"""Every boot of every combined capture (both kernels of a KHO kexec in one console.log) validates fully.

The single-kernel logs are checked by test_real_traces.py; here the combined captures, whose script
sections quote dmesg with its original stamps, must still read as exactly their real boots.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kho_replay.parsers import read_text
from kho_replay.parsers.console import read_console_text
from kho_replay.parsers.console.reader import count_boots
from kho_replay.replay.compare.validate import validate

from .conftest import TRACES

COMBINED = sorted(p for p in TRACES.glob("*/console.log*") if any(p.parent.glob("console-kernel2.log*")))


def test_combined_captures_bundled() -> None:
    assert len([p for p in COMBINED if "7.3.4" in p.parent.name]) == 4


@pytest.mark.parametrize("path", COMBINED, ids=lambda p: p.parent.name)
def test_each_boot_validates_fully(path: Path) -> None:
    text = read_text(path)
    assert count_boots(text, str(path)) == 2  # kernel 1 and the kexec'd kernel 2, no quoted phantom
    for boot in (1, 2):
        rep = validate(read_console_text(text, str(path), boot=boot))
        assert rep.ok, rep.summary()
        assert rep.allocations > 0 and rep.dumps_ok == rep.dumps >= 1
        assert rep.node_ranges_ok == rep.node_ranges == 1 and rep.zone_ranges_ok == rep.zone_ranges == 1
        assert rep.memory_lines_ok == rep.memory_lines == 1
