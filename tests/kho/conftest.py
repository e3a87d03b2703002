# SPDX-License-Identifier: GPL-2.0-only
"""Where the KHO tests find real traces: bundled ones first, then the shared capture directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kho_replay.parsers import load
from kho_replay.replay.ops import Trace

BUNDLED = Path(__file__).resolve().parents[2] / "traces"
SHARED = Path(os.environ.get("KHO_REPLAY_TRACES", "/work/shared/traces"))

B = "x86_64-kho-7.2.13-B-8G-hugepages1G2-defaultscale-scratchfail"
C = "x86_64-kho-7.2.13-C-12G-hugepages1G2-kho_scratch3G"
D = "x86_64-kho-7.2.13-D-8G-hugepages1G2-kho_scratch512M"
G = "x86_64-khodeb-7.2.13-G-16G-default_hugepagesz1G-hugepages6-kho_scratch4G"


def trace_dir(name: str, need: str | None = None) -> Path:
    """The directory of real trace *name* (holding file *need*), or skip the test when there is none."""
    for root in (BUNDLED, SHARED):
        if (root / name).is_dir() and (need is None or (root / name / need).exists()):
            return root / name
    pytest.skip(f"real trace {name} not available")


def log(name: str, kernel: int) -> Trace:
    """Kernel *kernel*'s console log of trace *name*, parsed."""
    d = trace_dir(name)
    for n in (f"console-kernel{kernel}.log", f"console-kernel{kernel}.log.gz"):
        if (d / n).exists():
            return load(d / n)
    pytest.skip(f"{name} has no log of kernel {kernel}")
