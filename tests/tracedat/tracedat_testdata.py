# SPDX-License-Identifier: GPL-2.0-only
"""Where the trace.dat tests find their inputs (a uniquely named module, not a conftest)."""

from __future__ import annotations

from pathlib import Path

SYNTHETIC = Path(__file__).resolve().parents[2] / "traces" / "tracedat" / "synthetic"
SYNTHETIC_FILES = sorted(p.name for p in SYNTHETIC.glob("*.dat"))
