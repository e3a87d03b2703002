# SPDX-License-Identifier: GPL-2.0-only
"""The Python front door: load a boot, replay it under a design, compare two replays.

Three calls do what the command line does, and return typed results instead
of text:

* :func:`load` reads a boot (console log, trace directory, debugfs dump, op
  script, trace.dat, ``scenario:NAME``) into a :class:`~kho_replay.Trace`;
* :func:`replay` re-executes it under one design, cold and optionally as the
  KHO boot after it, and returns a :class:`Run` holding each boot's
  :class:`~kho_replay.Outcome`;
* :func:`compare` lines two runs up request by request and metric by metric
  and returns a :class:`Comparison` holding one :class:`~kho_replay.Diff` per boot.

Names a user types are checked where they enter: a :class:`StrategySpec`
(``merged``, ``inverted-ext+protect-scratch``) names a known design and
options it has, a :class:`~kho_replay.PreserveSpec` parses; both raise
:class:`~kho_replay.KhoReplayError` with one line saying what is known.

>>> import kho_replay as kr
>>> t = kr.load("traces/x86_64-kho-7.2.13-B-8G-hugepages1G2-defaultscale-scratchfail")
>>> base, merged = kr.replay(t, "baseline", kexec=True), kr.replay(t, "merged", kexec=True)
>>> base.cold.scratch.failed, merged.cold.scratch.enabled
('global', True)
>>> c = kr.compare(base, merged)
>>> c.diverged, c.cold.metric("scratch reserved").new
(True, 'yes')
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from kho_replay.replay.compare.diff import Diff, diff
from kho_replay.replay.errors import KhoReplayError
from kho_replay.replay.kho.boot import Replayed, replay_cold, replay_kexec
from kho_replay.replay.kho.outcome import Outcome
from kho_replay.replay.kho.preserve import PreserveSpec
from kho_replay.replay.memblock.engine import Memblock
from kho_replay.replay.ops import Trace
from kho_replay.replay.strategies import BUILTIN, available, get

__all__ = ["Boot", "Comparison", "Design", "Run", "StrategySpec", "compare", "load", "replay", "strategies"]


class Design(enum.StrEnum):
    """The designs that ship with kho-replay (``kho-replay strategies`` describes each)."""

    BASELINE = "baseline"
    EXT_SCRATCH = "ext-scratch"
    HUGETLB_ALLOC = "hugetlb-alloc"
    MERGED = "merged"
    RESERVE_EARLY = "reserve-early"
    PRESERVE_HUGETLB = "preserve-hugetlb"
    INVERTED_EXT = "inverted-ext"
    SCRATCH_OFF_EARLY = "scratch-off-early"


class Boot(enum.StrEnum):
    """Which boot of a run an outcome describes."""

    COLD = "cold"
    KEXEC = "kexec"


@dataclass(frozen=True, slots=True)
class StrategySpec:
    """A design and its options, checked when built: ``NAME[+OPTION]...`` on the command line.

    >>> StrategySpec.parse("inverted-ext+protect-scratch")
    StrategySpec(name='inverted-ext', options=('protect-scratch',))
    >>> StrategySpec.parse("merged+exclude-hugetbl")
    Traceback (most recent call last):
    ...
    kho_replay.replay.errors.KhoReplayError: strategy merged has no option exclude-hugetbl (known: none)
    """

    name: str
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", str(self.name))
        object.__setattr__(self, "options", tuple(sorted(str(o) for o in self.options)))
        get(self.name, self.options)  # raises for an unknown design or option

    @classmethod
    def parse(cls, spec: str | Design | StrategySpec) -> StrategySpec:
        """Read ``NAME[+OPTION]...`` (a :class:`Design` or a StrategySpec passes through).

        :raises KhoReplayError: for an unknown design or an option the design does not have.
        """
        if isinstance(spec, StrategySpec):
            return spec
        name, *opts = str(spec).split("+")
        return cls(name, tuple(opts))

    def __str__(self) -> str:
        return "+".join((self.name, *self.options))


def strategies() -> tuple[str, ...]:
    """Every design by name, built-in ones first, then those registered through entry points.

    >>> strategies()[:4]
    ('baseline', 'ext-scratch', 'hugetlb-alloc', 'merged')
    """
    return tuple(available())


@dataclass(frozen=True, slots=True)
class Run:
    """One trace replayed under one design: the cold boot and, with ``kexec``, the boot after it.

    ``kexec`` is the KHO boot that inherits the cold boot's scratch, or a plain
    kexec (``kexec.kho_boot`` False) when the cold boot reserved none; None
    when the run was cold only.  The final models are kept for memory maps
    and ``reserved[]`` tables, out of ``repr`` and equality.
    """

    trace: Trace = field(repr=False, compare=False)
    strategy: StrategySpec
    cold: Outcome = field(repr=False)
    kexec: Outcome | None = field(repr=False)
    preserve: PreserveSpec | None = None
    models: tuple[Memblock, ...] = field(default=(), repr=False, compare=False)

    @property
    def boots(self) -> tuple[Outcome, ...]:
        """The outcomes in boot order."""
        return (self.cold,) if self.kexec is None else (self.cold, self.kexec)

    def outcome(self, boot: Boot | str) -> Outcome:
        """The outcome of *boot* (``cold`` or ``kexec``).

        :raises KhoReplayError: for ``kexec`` on a cold-only run, or an unknown boot.
        """
        which = _enum(Boot, boot, "boot")
        if which is Boot.KEXEC:
            if self.kexec is None:
                raise KhoReplayError("this run has no kexec boot: replay(..., kexec=True)")
            return self.kexec
        return self.cold


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two runs lined up: one :class:`~kho_replay.Diff` per boot both have (``new`` against ``old``)."""

    old: Run = field(repr=False)
    new: Run = field(repr=False)
    cold: Diff = field(repr=False)
    kexec: Diff | None = field(repr=False)

    @property
    def diffs(self) -> tuple[Diff, ...]:
        """The diffs in boot order."""
        return (self.cold,) if self.kexec is None else (self.cold, self.kexec)

    @property
    def diverged(self) -> bool:
        """True when any boot diverged (what makes ``kho-replay`` exit 1)."""
        return any(d.diverged for d in self.diffs)

    def verdicts(self) -> dict[Boot, str]:
        """One verdict line per boot, as the text report's first lines."""
        return {b: d.verdict() for b, d in zip(Boot, self.diffs, strict=False)}


_E = TypeVar("_E", bound=enum.StrEnum)


def _enum(kind: type[_E], value: _E | str, what: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise KhoReplayError(f"unknown {what} {value!r} (known: {', '.join(kind)})") from None


def load(path: str | Path, *, boot: int | None = None, strict: bool = False) -> Trace:
    """Read a boot into a :class:`~kho_replay.Trace`.

    *path* is a ``memblock=debug`` console log (``.gz``/``.xz`` too), a
    debugfs dump, an op script, a trace-cmd trace.dat, a trace directory
    (its first kernel's log: ``console-kernel1.log``, else ``console.log``)
    or ``scenario:NAME`` (a synthesized boot).

    >>> t = load("traces/x86_64-debian-7.2.13-4G")
    >>> t.context.release, t.context.arch, len(t.ops)
    ('7.2.13+deb14-amd64', 'x86_64', 121)

    :param boot: for a log holding several boots, which one (1-based, -1 the last).
    :param strict: memblock-looking lines the parser does not know are errors, not skipped.
    :raises KhoReplayError: one line naming the file and line (or byte offset) of bad input.
    """
    from kho_replay.parsers import load as parse
    from kho_replay.replay.fixtures import trace_files
    from kho_replay.replay.kho.scenarios import scenario

    if str(path).startswith("scenario:"):
        return scenario(str(path))
    p = Path(path)
    if p.is_dir() and any((p / n).exists() for n in ("console-kernel1.log", "console-kernel1.log.gz")):
        p = trace_files(p)[0]
    return parse(p, boot=boot, strict=strict)


def replay(
    trace: Trace | str | Path,
    strategy: str | Design | StrategySpec = Design.BASELINE,
    *,
    kexec: bool = False,
    preserve: str | PreserveSpec = "hugetlb",
    second: Trace | str | Path | None = None,
    seed: int = 0,
    kernel: str | None = None,
) -> Run:
    """Re-execute *trace* under *strategy*: the cold boot and, with *kexec*, the KHO boot after it.

    >>> r = replay("scenario:trace-b-mirror", "merged+exclude-hugetlb", kexec=True)
    Traceback (most recent call last):
    ...
    kho_replay.replay.errors.KhoReplayError: strategy merged has no option exclude-hugetlb (known: none)
    >>> r = replay("scenario:trace-b-mirror", Design.MERGED, kexec=True, preserve="memfd:64M")
    >>> r.strategy, r.kexec.kho_boot, r.kexec.preserved_bytes >> 20
    (StrategySpec(name='merged', options=()), True, 64)

    :param trace: a loaded trace, or anything :func:`load` reads.
    :param strategy: a design name, ``NAME+OPTION``, a :class:`Design` or a :class:`StrategySpec`.
    :param preserve: the KHO boot's preserved memory: ``hugetlb``, ``memfd:SIZE[:FOLIO]``, ``log``
        or ``debugfs`` (the last two read *second*).
    :param second: the real second kernel's boot, for ``log``/``debugfs`` and the kexec segments.
    :param seed: seed of the ``memfd:`` scatter.
    :param kernel: model this kernel release instead of the trace's.
    :raises KhoReplayError: for an unknown design or option, a bad preserve spec, or bad input.
    """
    spec = StrategySpec.parse(strategy)
    pspec = PreserveSpec.parse(preserve) if isinstance(preserve, str) else preserve
    t = trace if isinstance(trace, Trace) else load(trace)
    t2 = second if isinstance(second, Trace) or second is None else load(second)
    runs: tuple[Replayed, ...]
    if kexec:
        runs = replay_kexec(t, spec.name, options=spec.options, preserve=pspec, second=t2, seed=seed, kernel=kernel)
    else:
        runs = (replay_cold(t, spec.name, options=spec.options, kernel=kernel),)
    return Run(t, spec, runs[0].outcome, runs[1].outcome if kexec else None, pspec if kexec else None,
               tuple(r.model for r in runs))


def compare(old: Run, new: Run, *, threshold: int = 0) -> Comparison:
    """Diff *new* against *old*, boot by boot: what moved, failed, appeared, and every metric.

    Two runs of one trace pair their requests by op index; runs of two
    different boots pair them by caller function, API and nid, in order.
    *threshold* hides byte deltas and moves smaller than it.

    >>> t = load("scenario:trace-b-mirror")
    >>> c = compare(replay(t), replay(t, "merged"))
    >>> c.diverged, c.verdicts()[Boot.COLD].startswith("DIVERGED")
    (True, True)

    :raises KhoReplayError: when the two runs do not have the same boots.
    """
    if (old.kexec is None) != (new.kexec is None):
        raise KhoReplayError("compare runs with the same boots: both cold, or both with kexec=True")
    by_caller = old.trace is not new.trace and old.trace != new.trace
    diffs = []
    for i, (a, b) in enumerate(zip(old.boots, new.boots, strict=True)):
        tables = None
        if len(old.models) > i and len(new.models) > i:
            tables = ([(r.base, r.size) for r in old.models[i].reserved],
                      [(r.base, r.size) for r in new.models[i].reserved])
        diffs.append(diff(a, b, trace=new.trace, threshold=threshold, by_caller=by_caller, reserved=tables))
    return Comparison(old, new, diffs[0], diffs[1] if len(diffs) > 1 else None)


# The built-in designs and the Design enum must name the same things.
if tuple(Design) != tuple(BUILTIN):  # pragma: no cover - a design added to one and not the other
    raise ImportError(f"kho_replay.api.Design {tuple(Design)} != built-in strategies {tuple(BUILTIN)}")
