# SPDX-License-Identifier: GPL-2.0-only
"""Real traces for the what-if tests: bundled first, then the shared capture directory."""

from __future__ import annotations

import pytest
from kho.conftest import trace_dir  # the KHO tests' lookup: bundled traces, then the shared directory

from kho_replay.parsers import load
from kho_replay.replay.ops import Trace

A72 = "x86_64-kho-7.2.13-A-8G-nohuge-memfd64M"
B72 = "x86_64-kho-7.2.13-B-8G-hugepages1G2-defaultscale-scratchfail"
D72 = "x86_64-kho-7.2.13-D-8G-hugepages1G2-kho_scratch512M"
A73 = "x86_64-kho-7.3.4-A-8G-nohuge-memfd64M"
B73 = "x86_64-kho-7.3.4-B-8G-hugepages1G2-defaultscale"
D73 = "x86_64-kho-7.3.4-D-8G-hugepages1G2-kho_scratch512M"
H73 = "x86_64-kho-7.3.4-H-8G-hugepages1G4-defaultscale"

#: Where the 7.3.4 kernel's decompressor put the image in each boot (RESULT.txt, /proc/iomem "Kernel code").
IMAGE73 = {A73: 0x141000000, B73: 0x1C6400000, D73: 0x8AC00000, H73: 0x1ECC00000}

__all__ = ["IMAGE73", "log", "trace_dir"]


def log(name: str, kernel: int = 1) -> Trace:
    """Kernel *kernel*'s console log of trace *name*, parsed.

    The 7.3 captures quote the next kernel's output after the live boot; ``boot=1`` is the live
    boot whether or not the parser tells quoted output apart.
    """
    d = trace_dir(name)
    plain = ("console.log", "console.log.gz") if kernel == 1 else ()
    for n in (f"console-kernel{kernel}.log", f"console-kernel{kernel}.log.gz", *plain):
        if (d / n).exists():
            return load(d / n, boot=1)
    pytest.skip(f"{name} has no log of kernel {kernel}")
