# SPDX-License-Identifier: GPL-2.0-only
"""One child process measured on its own: wall time, CPU time and peak RSS from wait4().

Shared by the benchmark scripts (run them from the repository: ``python benchmarks/NAME.py``).
A child's figures are its own: a parent's peak RSS or imports never count.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import NamedTuple


class Child(NamedTuple):
    """What one child printed (when kept), its wall and CPU seconds, peak RSS in KiB and exit status."""

    out: str
    wall: float
    cpu: float
    rss: int
    status: int


def child(argv: list[str], *, keep_output: bool = False) -> Child:
    """Run *argv* to the end; its stdout is kept only when asked (else /dev/null)."""
    w0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE if keep_output else subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    return Child(out, time.perf_counter() - w0, usage.ru_utime + usage.ru_stime, usage.ru_maxrss,
                 os.waitstatus_to_exitcode(status))


def compile_sources() -> None:
    """Byte-compile our packages, as installing them does: the figures then leave out compiling our own
    source on every run (``PYTHONDONTWRITEBYTECODE`` keeps the interpreter from caching it)."""
    import compileall
    import importlib

    for name in ("kho_replay", "kho_replay.parsers", "kho_replay.replay"):
        compileall.compile_dir(os.path.dirname(importlib.import_module(name).__file__ or ""), quiet=1)
