# SPDX-License-Identifier: GPL-2.0-only
"""Helpers shared by the parser tests."""

from __future__ import annotations

from pathlib import Path

import pytest

TRACES = Path(__file__).resolve().parents[2] / "traces"

VERSION_72 = ("Linux version 7.2.13+deb14-amd64 (debian-kernel@lists.debian.org) (x86_64-linux-gnu-gcc-16 "
              "(Debian 16.2.0-4) 16.2.0, GNU ld (GNU Binutils for Debian) 2.47.50.20261021) #1 SMP "
              "PREEMPT_DYNAMIC Debian 7.2.13-1 (2026-10-28)")
VERSION_61 = ("Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) "
              "12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2")


def stamped(*bodies: str, version: str = VERSION_72) -> str:
    """A dmesg-style log: the version line, then *bodies*, each with a zero timestamp."""
    return "".join(f"[    0.000000] {b}\n" for b in (version, *bodies))


@pytest.fixture
def traces() -> Path:
    return TRACES
