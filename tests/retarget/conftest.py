# SPDX-License-Identifier: GPL-2.0-only
"""Real boots for the retarget tests: bundled traces first, then the shared capture directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

BUNDLED = Path(__file__).resolve().parents[2] / "traces"
SHARED = Path(os.environ.get("KHO_REPLAY_TRACES", "/work/shared/traces"))

KHO72 = ["x86_64-kho-7.2.13-A-8G-nohuge-memfd64M", "x86_64-kho-7.2.13-B-8G-hugepages1G2-defaultscale-scratchfail",
         "x86_64-kho-7.2.13-C-12G-hugepages1G2-kho_scratch3G", "x86_64-kho-7.2.13-D-8G-hugepages1G2-kho_scratch512M"]
DEB72 = ["x86_64-debian-7.2.13-4G", "x86_64-debian-7.2.13-4G-hugepagesz1G-hugepages4",
         "x86_64-debian-7.2.13-8G-crashkernel256M-cma128M-hugepages1G2",
         "x86_64-debian-7.2.13-8G-hugepagesz1G-hugepages4", "x86_64-debian-7.2.13-numa2-8G-hugepages1G-pernode"]
KHO73 = ["x86_64-kho-7.3.4-A-8G-nohuge-memfd64M", "x86_64-kho-7.3.4-B-8G-hugepages1G2-defaultscale",
         "x86_64-kho-7.3.4-D-8G-hugepages1G2-kho_scratch512M", "x86_64-kho-7.3.4-H-8G-hugepages1G4-defaultscale"]


def trace_dir(name: str) -> Path:
    """The directory of real trace *name*, or skip the test."""
    for root in (BUNDLED, SHARED):
        if (root / name).is_dir():
            return root / name
    pytest.skip(f"real trace {name} not available")
