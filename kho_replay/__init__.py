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

from importlib.metadata import PackageNotFoundError, version

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

try:
    __version__ = version("kho-replay")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

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
