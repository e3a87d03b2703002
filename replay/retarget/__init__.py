# SPDX-License-Identifier: GPL-2.0-only
"""Predict a host that never booted with ``memblock=debug`` from a template boot of the same build.

* :func:`retarget_files` / :func:`~.build.retarget`: template trace + the host's
  plain log (+ ``/proc/iomem``) -> :class:`~.build.Retargeted` (the host's op
  stream, each op naming its origin, and the assumptions made);
* :func:`~.check.check`: ``validate`` of a retargeted trace plus every address
  and total the plain log printed, matched N/M, a mismatch naming the op whose
  assumption failed;
* :func:`~.fleet.fleet`: the same question for many hosts, one typed row each.
"""

from __future__ import annotations

from pathlib import Path

from kho_replay.parsers.plain import Iomem, PlainBoot, parse_plain, read_iomem, read_plain

from ..ops import Trace
from .build import BuildMismatch, Retargeted, retarget

__all__ = ["BuildMismatch", "Retargeted", "Template", "load_template", "retarget", "retarget_files"]

_COLD = ("console-kernel1.log", "console-kernel1.log.gz", "console-kernel1.log.xz",
         "console.log", "console.log.gz", "console.log.xz")


class Template:
    """A template boot: its parsed trace, its log read as a plain log, and its /proc/iomem when captured."""

    def __init__(self, trace: Trace, plain: PlainBoot, iomem: Iomem | None) -> None:
        self.trace = trace
        self.plain = plain
        self.iomem = iomem


def _cold_log(path: Path) -> Path:
    if not path.is_dir():
        return path
    for name in _COLD:
        if (path / name).exists():
            return path / name
    from ..errors import InputError

    raise InputError(str(path), f"no console log ({', '.join(_COLD[:4])}...)")


def _iomem_beside(path: Path) -> Path | None:
    d = path if path.is_dir() else path.parent
    for p in (d / "kernel1" / "iomem.txt", d / "iomem.txt"):
        if p.exists():
            return p
    return None


def load_template(path: str | Path) -> Template:
    """A template from a boot log or trace directory (the first kernel of a KHO capture)."""
    from kho_replay.parsers import load, read_text

    p = Path(path)
    log = _cold_log(p)
    trace = load(log, boot=1)
    plain = parse_plain(read_text(log), str(log))
    io = _iomem_beside(p)
    iomem = None
    if io is not None:
        from ..errors import InputError

        try:
            iomem = read_iomem(io)
        except InputError:
            iomem = None
    return Template(trace, plain, iomem)


def retarget_files(template: str | Path | Template, plain: str | Path, *, iomem: str | Path | None = None,
                   force: bool = False) -> Retargeted:
    """:func:`retarget` from files: a template (log, trace directory or :class:`Template`), a plain log, /proc/iomem.

    A directory given as *plain* is read as a boot directory (its cold console log, and
    its ``iomem.txt`` only when *iomem* is ``"auto"``).
    """
    t = template if isinstance(template, Template) else load_template(template)
    p = Path(plain)
    host = read_plain(_cold_log(p))
    io = None
    if iomem == "auto":
        found = _iomem_beside(p)
        io = read_iomem(found) if found is not None else None
    elif iomem is not None:
        io = read_iomem(iomem)
    return retarget(t.trace, host, iomem=io, tplain=t.plain, tiomem=t.iomem, force=force)
