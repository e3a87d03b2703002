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

import importlib
from typing import TYPE_CHECKING, Any

# Every name is imported on first use (PEP 562): ``kho-replay run`` imports this package
# first, and must not pay for the whole front door (what-ifs, retarget, reports) to replay a script.
_FROM: dict[str, tuple[str, str]] = {
    **{n: ("kho_replay.api", n) for n in ("Boot", "Comparison", "Design", "Run", "StrategySpec", "compare", "load",
                                          "replay", "strategies")},
    **{n: ("kho_replay.replay.compare.diff", n) for n in ("Change", "Diff", "Metric")},
    "ChangeKind": ("kho_replay.replay.compare.diff", "Kind"),
    "InputError": ("kho_replay.replay.errors", "InputError"),
    "KhoReplayError": ("kho_replay.replay.errors", "KhoReplayError"),
    "Flag": ("kho_replay.replay.flags", "Flag"),
    "Subsystem": ("kho_replay.replay.kho.classify", "Subsystem"),
    **{n: ("kho_replay.replay.kho.outcome", n) for n in ("Gigantic", "Outcome", "Request", "Scratch", "ScratchArea")},
    **{n: ("kho_replay.replay.kho.preserve", n) for n in ("PreserveKind", "PreserveSpec")},
    "Trace": ("kho_replay.replay.ops", "Trace"),
    "Retargeted": ("kho_replay.replay.retarget", "Retargeted"),
    "retarget": ("kho_replay.replay.retarget", "retarget_files"),
    **{n: ("kho_replay.replay.retarget.fleet", n) for n in ("FleetRow", "fleet")},
    **{n: ("kho_replay.replay.strategies.base", n) for n in ("BootPoint", "Extension", "GiganticApi", "Option")},
    **{n: ("kho_replay.replay.whatif", n) for n in ("Row", "SweepResult", "sweep", "whatif")},
}

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

    __version__: str


# Loading the subpackage kho_replay.replay binds its name here; the front door's replay() is meant.
importlib.import_module("kho_replay.replay")
del globals()["replay"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("kho-replay")
        except PackageNotFoundError:  # running from a source tree without install
            value = "0.0.0"
    elif name in _FROM:
        module, attr = _FROM[name]
        value = getattr(importlib.import_module(module), attr)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
