# SPDX-License-Identifier: GPL-2.0-only
"""kho-replay: replay real boots on a model of the kernel's memblock allocator.

The front door (:mod:`kho_replay.api`)::

    import kho_replay as kr
    t = kr.load("traces/x86_64-kho-7.2.13-B-8G-hugepages1G2-defaultscale-scratchfail")
    a = kr.replay(t, "baseline", kexec=True)
    b = kr.replay(t, "merged", kexec=True)
    c = kr.compare(a, b)          # c.cold, c.kexec: Diff; c.diverged
    s = kr.sweep(t, kaslr="all", strategies=("baseline", "merged"))   # what-ifs: SweepResult of Rows
    h = kr.retarget(template, plain_log)                               # a host without memblock=debug
    rows = kr.fleet(template, host_logs)                               # FleetRow per host and design

Everything it returns is a frozen dataclass or an enum re-exported here:
:class:`Trace` (the parsed boot), :class:`Outcome` (one re-executed boot),
:class:`Diff` with its :class:`Change` s and :class:`Metric` s.  Below the
front door the code lives in two packages, ``kho_replay.parsers`` (input
formats into the operation stream) and ``kho_replay.replay`` (the model, the
designs, the checks and the reports).

>>> import kho_replay as kr
>>> kr.Design.MERGED in kr.strategies(), kr.ChangeKind("now fails")
(True, <Kind.now_fails: 'now fails'>)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kho_replay.api import Boot, Comparison, Design, Run, StrategySpec, compare, load, replay, strategies
    from kho_replay.replay.compare.diff import Change, Diff, Metric
    from kho_replay.replay.compare.diff import Kind as ChangeKind
    from kho_replay.replay.errors import InputError, KhoReplayError
    from kho_replay.replay.flags import Flag
    from kho_replay.replay.kho.classify import Subsystem
    from kho_replay.replay.kho.outcome import Gigantic, Outcome, Request, Scratch, ScratchArea
    from kho_replay.replay.kho.preserve import PreserveKind, PreserveSpec
    from kho_replay.replay.ops import Trace
    from kho_replay.replay.retarget import Retargeted
    from kho_replay.replay.retarget import retarget_files as retarget
    from kho_replay.replay.retarget.fleet import FleetRow, fleet
    from kho_replay.replay.strategies.base import BootPoint, Extension, GiganticApi, Option
    from kho_replay.replay.whatif import Row, SweepResult, sweep, whatif

#: Where each public name lives: imported on first use, so that reading one input (a trace.dat,
#: a console log) does not pay for the model, the designs and the reports (PEP 562).
_LAZY: dict[str, tuple[str, str]] = {
    "Boot": ("kho_replay.api", "Boot"),
    "Comparison": ("kho_replay.api", "Comparison"),
    "Design": ("kho_replay.api", "Design"),
    "Run": ("kho_replay.api", "Run"),
    "StrategySpec": ("kho_replay.api", "StrategySpec"),
    "compare": ("kho_replay.api", "compare"),
    "load": ("kho_replay.api", "load"),
    "replay": ("kho_replay.api", "replay"),
    "strategies": ("kho_replay.api", "strategies"),
    "Change": ("kho_replay.replay.compare.diff", "Change"),
    "Diff": ("kho_replay.replay.compare.diff", "Diff"),
    "Metric": ("kho_replay.replay.compare.diff", "Metric"),
    "ChangeKind": ("kho_replay.replay.compare.diff", "Kind"),
    "InputError": ("kho_replay.replay.errors", "InputError"),
    "KhoReplayError": ("kho_replay.replay.errors", "KhoReplayError"),
    "Flag": ("kho_replay.replay.flags", "Flag"),
    "Subsystem": ("kho_replay.replay.kho.classify", "Subsystem"),
    "Gigantic": ("kho_replay.replay.kho.outcome", "Gigantic"),
    "Outcome": ("kho_replay.replay.kho.outcome", "Outcome"),
    "Request": ("kho_replay.replay.kho.outcome", "Request"),
    "Scratch": ("kho_replay.replay.kho.outcome", "Scratch"),
    "ScratchArea": ("kho_replay.replay.kho.outcome", "ScratchArea"),
    "PreserveKind": ("kho_replay.replay.kho.preserve", "PreserveKind"),
    "PreserveSpec": ("kho_replay.replay.kho.preserve", "PreserveSpec"),
    "Trace": ("kho_replay.replay.ops", "Trace"),
    "Retargeted": ("kho_replay.replay.retarget", "Retargeted"),
    "retarget": ("kho_replay.replay.retarget", "retarget_files"),
    "FleetRow": ("kho_replay.replay.retarget.fleet", "FleetRow"),
    "fleet": ("kho_replay.replay.retarget.fleet", "fleet"),
    "BootPoint": ("kho_replay.replay.strategies.base", "BootPoint"),
    "Extension": ("kho_replay.replay.strategies.base", "Extension"),
    "GiganticApi": ("kho_replay.replay.strategies.base", "GiganticApi"),
    "Option": ("kho_replay.replay.strategies.base", "Option"),
    "Row": ("kho_replay.replay.whatif", "Row"),
    "SweepResult": ("kho_replay.replay.whatif", "SweepResult"),
    "sweep": ("kho_replay.replay.whatif", "sweep"),
    "whatif": ("kho_replay.replay.whatif", "whatif"),
}


# The subpackage kho_replay.replay shares its name with the function: load it now and drop the attribute
# its import set, so that ``kho_replay.replay`` is the function (through __getattr__), as it always was.
importlib.import_module("kho_replay.replay")
globals().pop("replay", None)


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("kho-replay")
        except PackageNotFoundError:  # running from a source tree without install
            value = "0.0.0"
    else:
        where = _LAZY.get(name)
        if where is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[0]), where[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "Boot",
    "BootPoint",
    "Change",
    "ChangeKind",
    "Comparison",
    "Design",
    "Diff",
    "Extension",
    "FleetRow",
    "Flag",
    "Gigantic",
    "GiganticApi",
    "InputError",
    "KhoReplayError",
    "Metric",
    "Option",
    "Outcome",
    "PreserveKind",
    "PreserveSpec",
    "Request",
    "Retargeted",
    "Row",
    "Run",
    "Scratch",
    "ScratchArea",
    "StrategySpec",
    "SweepResult",
    "Subsystem",
    "Trace",
    "__version__",
    "compare",
    "fleet",
    "load",
    "replay",
    "retarget",
    "strategies",
    "sweep",
    "whatif",
]
