# SPDX-License-Identifier: GPL-2.0-only
"""Run op scripts on the kernel's own ``mm/memblock.c`` and generate op streams for it.

:func:`kernel_run` feeds an op script to ``driver`` (``tests/oracle/driver.c``
linked with the unmodified ``memblock.c`` of Debian's ``linux-source-VERSION``,
built by ``setup.sh`` on first use) and returns the same JSON shape as
``kho-replay run --format json``.

In the kernel's userspace harness "physical" addresses are host virtual
addresses, so the driver maps a fixed window (:data:`WINDOW`) and refuses
memory outside it; the generators below only produce addresses inside it.

Op streams come from one generator (:func:`gen_ops`) driven either by
``random.Random`` (fixed seeds, long streams) or by Hypothesis draws
(:func:`op_streams`, which shrink).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hypothesis import strategies as st

# isort: split
from kho_replay.replay.errors import KhoReplayError
from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import (
    ALLOC_APIS,
    Add,
    Alloc,
    AllowResize,
    CapMemoryRange,
    Clear,
    EnforceMemoryLimit,
    Free,
    KhoScratchOnly,
    Mark,
    MirroredKernelcore,
    MovableNode,
    Op,
    Remove,
    Reserve,
    ReserveKern,
    SetBottomUp,
    SetCurrentLimit,
    SetNode,
    TrimMemory,
    format_script,
)

__all__ = [
    "VERSIONS",
    "WINDOW",
    "Chooser",
    "OracleError",
    "build",
    "comparable",
    "gen_ops",
    "kernel_run",
    "model_run",
    "op_streams",
    "prebuild",
    "random_ops",
    "without_hazards",
]

#: Kernel sources we have an oracle for (each replayed with the matching profile).
VERSIONS = ("7.2", "7.3")
#: The driver's address window [base, end): "physical" memory must lie inside it.
WINDOW = (0x4000_0000, 0x10_0000_0000)

SETUP = Path(__file__).with_name("setup.sh")
K, M, G = 1 << 10, 1 << 20, 1 << 30
ANYWHERE = (1 << 64) - 1
MAX_NUMNODES = 16  # CONFIG_NODES_SHIFT=4 in the oracle build
ZEROING_APIS = frozenset(
    {
        "memblock_alloc_try_nid", "memblock_alloc", "memblock_alloc_from", "memblock_alloc_low",
        "memblock_alloc_node", "memblock_alloc_or_panic",
    }
)


class OracleError(KhoReplayError):
    """The oracle could not be built or rejected its input (one-line message)."""


_drivers: dict[str, Path] = {}
_setups: dict[str, subprocess.Popen[str]] = {}


def prebuild(versions: Sequence[str] = VERSIONS) -> None:
    """Start the setup of every version at once (download and build overlap); :func:`build` waits."""
    for v in versions:
        if v not in _drivers and v not in _setups:
            _setups[v] = subprocess.Popen(["bash", str(SETUP), v], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True)


def build(version: str) -> Path:
    """Build (once per process; once per machine thanks to the cache) and return the driver for *version*.

    :raises OracleError: when the setup script fails.
    """
    if version not in _drivers:
        prebuild([version])
        proc = _setups.pop(version)
        out, err = proc.communicate()
        if proc.returncode != 0:
            tail = err.strip().splitlines()[-1:] or ["no output"]
            raise OracleError(f"oracle setup for {version} failed: {tail[0]}")
        driver = Path(out.strip().splitlines()[-1])
        # the generators aim at WINDOW: it must be the driver's
        out = subprocess.run([str(driver), "--window"], capture_output=True, text=True, check=False).stdout
        if tuple(int(w, 16) for w in out.split()) != WINDOW:
            raise OracleError(f"oracle {version}: driver window {out.strip()!r} is not {WINDOW}")
        _drivers[version] = driver
    return _drivers[version]


def kernel_run(ops_text: str, version: str, *, stats: bool = False) -> dict[str, Any]:
    """Replay the op script *ops_text* with the kernel's ``memblock.c`` of *version*.

    Returns ``{"allocs", "memory", "reserved", "messages"}`` (the shape of
    ``kho-replay run --format json``), ``{"panic": text, "line": n}`` when
    the kernel code panicked (e.g. ``memblock: cannot resize reserved array``),
    or ``{"hazard": text, "line": n}`` when op *n* released the memory under
    one of memblock's own region arrays (the kernel would go on to corrupt it;
    see driver.c).  With *stats*, a successful result also carries
    ``"stats": {"memory_max": n, "reserved_max": n}`` (the arrays' capacities).

    :raises OracleError: when the driver rejects the script or crashes.
    """
    driver = build(version)
    argv = [str(driver), "--stats"] if stats else [str(driver)]
    proc = subprocess.run(argv, input=ops_text, capture_output=True, text=True, check=False)
    if proc.returncode in (0, 2, 3, 4):
        try:
            result = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise OracleError(f"oracle {version}: unreadable output (exit {proc.returncode})") from None
        if proc.returncode == 2:
            raise OracleError(f"oracle {version}: {result['error']}")
        return result
    raise OracleError(f"oracle {version}: driver died with status {proc.returncode} (a kernel BUG_ON?)")


def without_hazards(ops: Sequence[Op], version: str, max_drops: int = 200) -> tuple[list[Op], dict[str, Any]]:
    """Drop the ops that release memblock's own arrays; return the stream and its kernel result.

    Such an op is legal but lets the kernel corrupt its own region array in the
    harness (driver.c), which no model of memblock without memory contents can
    follow.  Dropping it keeps the rest of a long stream comparable.

    :raises OracleError: when more than *max_drops* ops would have to go.
    """
    kept = list(ops)
    for _ in range(max_drops):
        result = kernel_run(format_script(kept), version)
        if "hazard" not in result:
            return kept, result
        del kept[result["line"] - 1]
    raise OracleError(f"oracle {version}: more than {max_drops} ops free memblock's own arrays")


def model_run(ops: Sequence[Op], version: str) -> dict[str, Any]:
    """Replay *ops* on our model (``kho_replay.replay.memblock.engine.replay_json``, harness arch).

    A :class:`~kho_replay.replay.errors.KernelPanic` is returned as ``{"panic": text}``.
    """
    from kho_replay.replay.errors import KernelPanic
    from kho_replay.replay.memblock.engine import replay_json

    try:
        return replay_json(ops, kernel=version, arch="harness")
    except KernelPanic as e:
        return {"panic": str(e)}


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """What must agree between kernel and model: every table and alloc, not the messages.

    Two panics agree whatever their wording (the harness prints ``%pa`` as a pointer).
    A hazard result is not comparable: callers compare the ops before it.

    >>> comparable({"panic": "memblock: cannot resize reserved array", "line": 3})
    {'panic': True}
    >>> comparable({"allocs": [None], "memory": [], "reserved": [], "messages": ["x"]})
    {'allocs': [None], 'memory': [], 'reserved': []}
    """
    if "panic" in result:
        return {"panic": True}
    if "hazard" in result:
        raise ValueError(f"not comparable: {result['hazard']}")
    return {k: result[k] for k in ("allocs", "memory", "reserved")}


# --------------------------------------------------------------------------
# Op-stream generation


class Chooser(Protocol):
    """Source of choices: ``random.Random`` or Hypothesis draws behind one interface."""

    def integer(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]``."""
        ...

    def pick(self, items: Sequence[Any]) -> Any:
        """One of *items* (earlier items are what Hypothesis shrinks towards)."""
        ...

    def chance(self, p: float) -> bool:
        """True with probability about *p*."""
        ...


class RandomChooser:
    """:class:`Chooser` over ``random.Random(seed)``: reproducible long streams."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]``."""
        return self.rnd.randint(lo, hi)

    def pick(self, items: Sequence[Any]) -> Any:
        """One of *items*."""
        return items[self.rnd.randrange(len(items))]

    def chance(self, p: float) -> bool:
        """True with probability *p*."""
        return self.rnd.random() < p


class DrawChooser:
    """:class:`Chooser` over a Hypothesis ``draw``: every choice shrinks."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]``."""
        return self.draw(st.integers(lo, hi))

    def pick(self, items: Sequence[Any]) -> Any:
        """One of *items*; shrinks towards the first."""
        return items[self.draw(st.integers(0, len(items) - 1))]

    def chance(self, p: float) -> bool:
        """True with probability about *p*; shrinks towards False."""
        # integers() shrinks to 0, so "hit" is the rare value and shrinking removes it
        return self.draw(st.integers(0, 999)) >= 1000 - int(p * 1000)


@dataclass
class _State:
    """What the generator knows about the layout, to aim ops at interesting places."""

    lo: int
    hi: int
    nodes: list[int]
    banks: list[tuple[int, int, int]] = field(default_factory=list)  # (base, size, nid)
    blocks: list[tuple[int, int]] = field(default_factory=list)  # reserved or allocated ranges
    may_panic: bool = True  # generate ops that panic (or_panic, doubling before allow_resize)


def _layout(ch: Chooser, ops: list[Op]) -> _State:
    """Memory banks on up to 4 nodes with holes; sometimes straddling 4 GiB."""
    gran = ch.pick([64 * K, 4 * K, 2 * M, 1])
    base = WINDOW[0] + ch.pick([0, 2 * G, 3 * G + 512 * M]) + ch.integer(0, 15) * 64 * K
    nnodes = ch.integer(1, 4)
    nodes = list(range(nnodes))
    st_ = _State(lo=base, hi=base, nodes=nodes)
    nbanks = ch.integer(1, 6)
    cur = base
    for i in range(nbanks):
        size = ch.pick([16 * M, 64 * M, 256 * M, 1 * G, 2 * M]) + ch.integer(0, 7) * gran
        nid: int | None = nodes[i * nnodes // nbanks] if not ch.chance(0.15) else None
        flags = Flag.MEMBLOCK_NONE
        if ch.chance(0.1):
            flags = ch.pick([Flag.MEMBLOCK_HOTPLUG, Flag.MEMBLOCK_NOMAP, Flag.MEMBLOCK_DRIVER_MANAGED,
                             Flag.MEMBLOCK_MIRROR, Flag.MEMBLOCK_KHO_SCRATCH])
        if cur + size > WINDOW[1]:
            break
        ops.append(Add(cur, size, nid, flags))
        st_.banks.append((cur, size, MAX_NUMNODES if nid is None else nid))
        cur += size
        if ch.chance(0.6):  # a hole before the next bank
            cur += ch.pick([2 * M, 64 * K, 4 * K, 128 * M]) + ch.integer(0, 3) * gran
    st_.hi = cur
    return st_


def _addr(ch: Chooser, s: _State) -> int:
    """An address near something interesting: a bank edge, a block edge, or anywhere."""
    kind = ch.integer(0, 9)
    if kind < 3 and s.blocks:
        b, sz = ch.pick(s.blocks)
        return b + ch.pick([0, sz, sz // 2, -4 * K, 4 * K]) + ch.pick([0, 0, 32, -32, 1])
    if kind < 6 and s.banks:
        b, sz, _ = ch.pick(s.banks)
        return b + ch.pick([0, sz, sz // 2, sz - 64 * K, 64 * K]) + ch.pick([0, 0, 4 * K, -4 * K, 1])
    span = max(s.hi - s.lo, 1)
    return s.lo + ch.integer(0, span) // 4096 * 4096 + ch.pick([0, 0, 0, 32, 1, 2048])


def _size(ch: Chooser, big: bool = False) -> int:
    base = ch.pick([4 * K, 64, 32 * K, 1 * M, 0, 1, 2 * M, 12 * K]) if not big else ch.pick([64 * M, 256 * M])
    return base + ch.pick([0, 0, 0, 32, 4 * K, 1, 100])


def _align(ch: Chooser) -> int:
    # 0 means SMP_CACHE_BYTES; non-powers of two are allowed by the kernel and rare
    return ch.pick([0, 4 * K, 32, 64, 2 * M, 1, 8, 64 * K, 1 * G, 3 * K, 48])


def _nid(ch: Chooser, s: _State) -> int:
    return ch.pick([-1, *s.nodes, MAX_NUMNODES, 7])


def _alloc(ch: Chooser, s: _State, version: str) -> Alloc:
    apis = [a for a in ALLOC_APIS if version == "7.3" or a != "memblock_alloc_hugetlb"]
    api = ch.pick(apis)
    if api == "memblock_alloc_or_panic" and not (s.may_panic and ch.chance(0.2)):
        api = "memblock_alloc"  # a failure panics and ends the comparison: keep it rare
    accepted = ALLOC_APIS[api]
    if api == "memblock_alloc_hugetlb":
        size = ch.pick([2 * M, 4 * K, 1 * G, 64 * K])
    elif api in ZEROING_APIS:
        size = _size(ch)  # the harness memsets these: keep them small
    else:
        size = _size(ch, big=ch.chance(0.05))
    kw: dict[str, Any] = {}
    if "align" in accepted:
        kw["align"] = _align(ch)
    if "nid" in accepted and ch.chance(0.8):
        kw["nid"] = _nid(ch, s)
    if "min" in accepted and ch.chance(0.5):
        kw["min_addr"] = ch.pick([0, _addr(ch, s), 1])
    if "max" in accepted and ch.chance(0.5):
        kw["max_addr"] = ch.pick([0, ANYWHERE, _addr(ch, s), 1, 0xFFFF_FFFF])
    if "exact" in accepted:
        kw["exact"] = ch.chance(0.5)
    return Alloc(api, size, **kw)


def gen_ops(ch: Chooser, version: str, n_ops: int, *, may_panic: bool = True) -> list[Op]:
    """An op stream of about *n_ops* ops for kernel *version*: layout, then a random mix.

    Covers reserves (plain, nid/flags, kern), frees (of earlier blocks or
    arbitrary ranges), flag marks and clears on both types, set_node, limits,
    both directions, KHO scratch-only phases, movable_node, mirror, every
    allocation API with every bound, bursts of scattered reserves that double
    the arrays, and (rarely) trim/limit/cap.  Without *may_panic* it avoids the
    ops that panic on failure, so that long streams are compared to the end.
    """
    ops: list[Op] = []
    s = _layout(ch, ops)
    s.may_panic = may_panic
    # without allow_resize doubling panics, which is worth seeing once in a while
    if not may_panic or not ch.chance(0.03):
        ops.insert(ch.integer(0, len(ops)), AllowResize())
    if ch.chance(0.3):
        ops.append(MirroredKernelcore(True))
    while len(ops) < n_ops:
        k = ch.integer(0, 999)  # per-mille weights; 0 (an allocation) is what shrinking aims at
        if k < 330:
            ops.append(_alloc(ch, s, version))
        elif k < 500:
            b, sz = _addr(ch, s), _size(ch)
            v = ch.integer(0, 5)
            if v == 0:
                ops.append(ReserveKern(b, sz, ch.pick([None, *s.nodes])))
            elif v == 1:
                flags = ch.pick([Flag.MEMBLOCK_NONE, Flag.MEMBLOCK_RSRV_NOINIT, Flag.MEMBLOCK_RSRV_KERN])
                ops.append(Reserve(b, sz, _nid(ch, s), flags))
            else:
                ops.append(Reserve(b, sz))
            s.blocks.append((b, sz))
        elif k < 640:
            if s.blocks and ch.chance(0.85):
                b, sz = s.blocks.pop(ch.integer(0, len(s.blocks) - 1))
                if ch.chance(0.3):  # free part of it
                    b, sz = b + sz // 4, sz // 2
            else:
                b, sz = _addr(ch, s), _size(ch)
            ops.append(Free(b, sz))
        elif k < 652 and s.hi + 300 * M < WINDOW[1]:
            # many small banks above the layout: pushes the memory array through doublings
            n = ch.pick([16, 140, 300]) + ch.integer(0, 8)
            start = s.hi + ch.pick([1 * M, 64 * K])
            nid = ch.pick([None, *s.nodes])
            for i in range(n):
                ops.append(Add(start + i * 128 * K, 64 * K, nid))
                s.banks.append((start + i * 128 * K, 64 * K, MAX_NUMNODES if nid is None else nid))
            s.hi = start + n * 128 * K
        elif k < 660:
            # burst of scattered reserves: pushes the reserved array through doublings
            n = ch.pick([4, 16, 64, 130, 260]) + ch.integer(0, 8)
            stride = ch.pick([8 * K, 64 * K, 96, 4 * K + 32])
            start = _addr(ch, s)
            sz = min(ch.pick([4 * K, 32, 1 * K]), stride // 2)
            for i in range(n):
                ops.append(Reserve(start + i * stride, sz))
            s.blocks.append((start, n * stride))
        elif k < 730:
            flag = ch.pick([Flag.MEMBLOCK_HOTPLUG, Flag.MEMBLOCK_NOMAP, Flag.MEMBLOCK_KHO_SCRATCH,
                            Flag.MEMBLOCK_MIRROR, Flag.MEMBLOCK_RSRV_NOINIT, Flag.MEMBLOCK_RSRV_KERN])
            b, sz = _addr(ch, s), _size(ch, big=ch.chance(0.3))
            settable_only = flag in (Flag.MEMBLOCK_MIRROR, Flag.MEMBLOCK_RSRV_NOINIT, Flag.MEMBLOCK_RSRV_KERN)
            if settable_only or ch.chance(0.6):
                ops.append(Mark(flag, b, sz))
            else:
                ops.append(Clear(flag, b, sz))
        elif k < 760:
            nid = ch.pick([*s.nodes, -1, MAX_NUMNODES])
            ops.append(SetNode(_addr(ch, s), _size(ch, big=ch.chance(0.5)), nid, ch.chance(0.3)))
        elif k < 800:
            ops.append(SetBottomUp(ch.chance(0.5)))
        elif k < 825:
            # limits persist: come back to ANYWHERE half of the time
            ops.append(SetCurrentLimit(ch.pick([ANYWHERE, _addr(ch, s), ANYWHERE, s.hi, 0x1_0000_0000])))
        elif k < 870:
            # scratch-only phase: mark some scratch, allocate inside it, mostly leave the mode
            b, sz = _addr(ch, s), ch.pick([16 * M, 64 * M, 2 * M])
            ops.append(Mark(Flag.MEMBLOCK_KHO_SCRATCH, b, sz))
            ops.append(KhoScratchOnly(True))
            for _ in range(ch.integer(1, 4)):
                ops.append(_alloc(ch, s, version))
            if not ch.chance(0.1):
                ops.append(KhoScratchOnly(False))
        elif k < 885:
            ops.append(MovableNode(ch.chance(0.5)))
        elif k < 895:
            ops.append(MirroredKernelcore(ch.chance(0.5)))
        elif k < 910:
            ops.append(Remove(_addr(ch, s), _size(ch, big=ch.chance(0.1))))
        elif k < 915:
            # phys_addr_t edges: sizes capped at PHYS_ADDR_MAX - base, ranges near 2^64
            # (only frees may start low: a low reserve or remove to 2^64 would starve the rest)
            top = ch.pick([ANYWHERE - 4 * K + 1, ANYWHERE, ANYWHERE - 64 * K])
            sz = ch.pick([ANYWHERE, 8 * K, ANYWHERE - top, 0, 1])
            nid = ch.pick(s.nodes)
            ops.append(ch.pick([Reserve(top, sz), Free(ch.pick([top, _addr(ch, s)]), sz), Remove(top, sz),
                                Mark(Flag.MEMBLOCK_RSRV_NOINIT, top, sz), SetNode(top, sz, nid, True)]))
        elif k < 980:
            flags = ch.pick([Flag.MEMBLOCK_NONE, Flag.MEMBLOCK_NONE, Flag.MEMBLOCK_HOTPLUG,
                             Flag.MEMBLOCK_DRIVER_MANAGED])
            b, sz = _addr(ch, s) // 4096 * 4096, _size(ch, big=ch.chance(0.3))
            ops.append(Add(b, sz, ch.pick([None, *s.nodes]), flags))
        else:
            # mem=, crash kernels, trimming: destructive, so rare and followed by fresh memory.
            # mem= limits also drop reservations: only early (as in a boot), while fewer
            # than 128 ops guarantee static arrays, so no live array loses its reservation
            v = ch.integer(0, 2) if len(ops) < 100 else 0
            if v == 0:
                ops.append(TrimMemory(ch.pick([2 * M, 4 * K, 1 * G, 3 * K])))
            elif v == 1:
                ops.append(EnforceMemoryLimit(ch.pick([0, 256 * M, 1 * G, 4 * G, 1])))
            else:
                ops.append(CapMemoryRange(_addr(ch, s), _size(ch, big=True)))
            if ch.chance(0.7):
                b, sz, nid = ch.pick(s.banks)
                ops.append(Add(b, sz, None if nid == MAX_NUMNODES else nid))
    return [op for op in ops if _inside(op)]


def _inside(op: Op) -> bool:
    """Memory (add) must lie in the driver's window; everything else may point anywhere."""
    if isinstance(op, Add):
        return WINDOW[0] <= op.base and op.base + op.size <= WINDOW[1]
    return True


def random_ops(seed: int, version: str, n_ops: int) -> list[Op]:
    """A reproducible stream of about *n_ops* ops from ``random.Random(seed)``, free of panics."""
    return gen_ops(RandomChooser(seed), version, n_ops, may_panic=False)


@st.composite
def op_streams(draw: Callable[[st.SearchStrategy[Any]], Any], version: str, max_ops: int = 60) -> list[Op]:
    """Hypothesis strategy: op streams for kernel *version* that shrink op by op."""
    n = draw(st.integers(1, max_ops))
    return gen_ops(DrawChooser(draw), version, n)


def default_examples() -> int:
    """Hypothesis examples per version (``KHO_ORACLE_EXAMPLES``, default 1000)."""
    return int(os.environ.get("KHO_ORACLE_EXAMPLES", "1000"))
