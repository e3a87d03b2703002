# SPDX-License-Identifier: GPL-2.0-only
"""How well retargeting predicts a real boot: strip a real debug boot, retarget it from another, compare.

:func:`measure_pair` takes two boots of one build (trace directories or
logs), strips the target's ``memblock=debug`` lines (:func:`~kho_replay.parsers.plain.strip_debug`),
retargets it from the template, and compares the prediction with the target's
real trace, both replayed as cold boots (``baseline``; ``kho=True`` forces the
KHO what-if on kernels booted without ``kho=on``): KHO scratch on/off, scratch
sizes, gigantic page addresses, and the printed facts matched
(:func:`~.check.check`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from kho_replay.parsers import load, read_text
from kho_replay.parsers.plain import strip_debug

from . import _cold_log, _iomem_beside, load_template, retarget_files

__all__ = ["PairResult", "measure_pair"]


@dataclass(frozen=True, slots=True)
class PairResult:
    """Prediction against the real boot for one (template, target) pair."""

    template: str
    target: str
    iomem: bool
    kho_pred: bool
    kho_real: bool
    #: largest difference between predicted and real scratch sizes (lowmem, global, per node), bytes.
    scratch_delta: int
    pages_pred: tuple[int, ...]
    pages_real: tuple[int, ...]
    printed_matched: int
    printed_total: int
    assumptions: tuple[str, ...]

    @property
    def kho_ok(self) -> bool:
        """KHO scratch on/off predicted right."""
        return self.kho_pred == self.kho_real

    @property
    def pages_ok(self) -> bool:
        """Gigantic pages at the same addresses."""
        return self.pages_pred == self.pages_real


def _sizes(o) -> list[int]:
    return [o.scratch.lowmem, o.scratch.global_, *(s for _, s in o.scratch.pernode)]


def measure_pair(template: str | Path, target: str | Path, *, iomem: bool = True, kho: bool | None = None,
                 workdir: str | Path | None = None) -> PairResult:
    """Strip *target*, retarget it from *template* (with the target's /proc/iomem when *iomem*), compare."""
    from ..kho.boot import run_cold
    from .check import check

    tgt = Path(target)
    log = _cold_log(tgt)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        plain = Path(tmp) / "dmesg.txt"
        plain.write_text(strip_debug(read_text(log)))
        io = _iomem_beside(tgt) if iomem else None
        r = retarget_files(load_template(template), plain, iomem=io)
    real = run_cold(load(log, boot=1), "baseline", kho=kho)
    pred = run_cold(r.trace, "baseline", kho=kho)
    a, b = _sizes(pred), _sizes(real)
    delta = max((abs(x - y) for x, y in zip(a, b, strict=False)), default=0) if len(a) == len(b) else 1 << 62
    c = check(r.trace)
    return PairResult(str(template), str(target), iomem, pred.scratch.enabled, real.scratch.enabled, delta,
                      tuple(pred.gigantic.addrs), tuple(real.gigantic.addrs), c.total_matched, c.total,
                      r.assumptions)
