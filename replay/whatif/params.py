# SPDX-License-Identifier: GPL-2.0-only
"""``--set PARAM=VALUE``: the boot with other boot parameters, applied as the kernel reads them.

The command line is rewritten; the replay then reads it as it reads any
boot's (``hugepages_request()``, ``parse_kho_cmdline()``).  Gigantic pages
the recorded boot allocated beyond the new ``hugepages=`` are dropped from the
op stream (with the ops tied to them); missing ones are allocated by the boot
driver's hugetlb loop, as ``hugetlb_hstate_alloc_pages()`` would.

Parameters (mm/hugetlb.c ``hugepages_setup()``/``hugepagesz_setup()``/
``default_hugepagesz_setup()``; kernel/liveupdate/kexec_handover.c
``kho_parse_enable()``/``kho_parse_scratch_size()``):

* ``hugepages=N`` or per node ``0:2,1:2``: the 1 GiB hstate's count (the only
  one memblock sees); a command line naming no 1 GiB hstate gets
  ``hugepagesz=1G hugepages=N``;
* ``hugepagesz=``/``default_hugepagesz=``: a page size the arch supports;
* ``kho_scratch=``: ``N%`` or ``lowmem,global,pernode`` sizes; ``kho=``: a kstrtobool word;
* ``hugetlb_cma=``: ``SIZE``, per node ``0:1G,1:1G``, from 7.3 also ``N%`` and
  ``nid:N%`` (mm/hugetlb_cma.c ``cmdline_parse_hugetlb_cma()``); a size must be a
  multiple of the gigantic page (the kernel warns and reserves nothing);
  ``hugetlb_cma_only=``: a kstrtobool word.  The boot driver reserves the areas
  (:mod:`~kho_replay.replay.kho.hugetlb_cma`) and skips or carves the gigantic
  pages; areas the recorded boot logged are dropped from the op stream.

>>> set_cmdline("console=ttyS0 hugepagesz=1G hugepages=2", "hugepages", "4")
'console=ttyS0 hugepagesz=1G hugepages=4'
>>> set_cmdline("console=ttyS0", "hugepages", "0:2,1:2")
'console=ttyS0 hugepagesz=1G hugepages=0:2,1:2'
>>> set_cmdline("kho=on kho_scratch=50%", "kho_scratch", "64M,512M,256M")
'kho=on kho_scratch=64M,512M,256M'
>>> set_cmdline("hugepagesz=1G hugepages=2", "hugetlb_cma", "0:1G,1:1G")
'hugepagesz=1G hugepages=2 hugetlb_cma=0:1G,1:1G'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from ..errors import KhoReplayError
from ..kho.hugetlb_cma import hugetlb_cma_order, parse_hugetlb_cma
from ..kho.params import memparse
from ..ops import Alloc, SetBottomUp, Trace

__all__ = ["PARAMS", "apply_sets", "check_param", "parse_set", "set_cmdline"]

#: hstate sizes per arch (x86-64: PMD and PUD; arm64 with 4K pages: contiguous PTE, PMD, contiguous PMD, PUD).
_HUGE_SIZES = {"x86_64": (2 << 20, 1 << 30), "arm64": (64 << 10, 2 << 20, 32 << 20, 1 << 30)}
#: parameter -> first kernel (major, minor) that knows it.
PARAMS = {"hugepages": (2, 6), "hugepagesz": (2, 6), "default_hugepagesz": (2, 6),
          "kho": (6, 16), "kho_scratch": (6, 16),
          # hugetlb_cma= is 5.7's, but its call site is modelled from mm_core_init_early() on (7.x), as is
          # hugetlb_cma_only= (6.15) with hugetlb_bootmem_alloc()
          "hugetlb_cma": (7, 0), "hugetlb_cma_only": (7, 0)}
_KSTRTOBOOL = ("y", "n", "1", "0", "on", "off", "yes", "no", "true", "false")
_PERNODE = re.compile(r"^\d+:\d+(,\d+:\d+)*$")


def check_param(key: str, value: str, *, arch: str = "x86_64", release: str | None = None) -> None:
    """Refuse an unknown parameter, one the trace's kernel predates, or a value the kernel would reject.

    :raises KhoReplayError: one line naming the parameter and what is accepted.
    """
    if key not in PARAMS:
        raise KhoReplayError(f"--set {key}=: unknown parameter (known: {', '.join(sorted(PARAMS))})")
    if release:
        m = re.match(r"(\d+)\.(\d+)", release)
        if m and (int(m.group(1)), int(m.group(2))) < PARAMS[key]:
            since = ".".join(map(str, PARAMS[key]))
            if key.startswith("hugetlb_cma"):
                raise KhoReplayError(f"--set {key}=: modelled from {since} (hugetlb_cma_reserve() in "
                                     f"mm_core_init_early()); kernel {release} runs it from arch setup code")
            raise KhoReplayError(f"--set {key}=: kernel {release} does not know {key}= (since {since})")
    bad = f"--set {key}={value}: "
    if key == "hugepages":
        if not (value.isdigit() or _PERNODE.match(value)):
            raise KhoReplayError(bad + "expected a count (4) or per-node counts (0:2,1:2)")
    elif key in ("hugepagesz", "default_hugepagesz"):
        try:
            size = memparse(value)
        except KhoReplayError:
            size = 0
        sizes = _HUGE_SIZES.get(arch, _HUGE_SIZES["x86_64"])
        if size not in sizes:
            raise KhoReplayError(bad + f"{arch} supports " + ", ".join(_fmt(s) for s in sizes))
    elif key == "hugetlb_cma":
        _check_hugetlb_cma(value, arch, release)
    elif key in ("kho", "hugetlb_cma_only"):
        if value.lower() not in _KSTRTOBOOL:
            raise KhoReplayError(bad + "expected on/off, y/n or 1/0")
    elif key == "kho_scratch":
        if value.endswith("%"):
            if not (value[:-1].isdigit() and len(value) <= 11):
                raise KhoReplayError(bad + "expected N% or lowmem,global,pernode sizes")
            return
        parts = value.split(",")
        try:
            sizes = [memparse(p) for p in parts]
        except KhoReplayError:
            sizes = []
        if len(sizes) != 3 or not sum(sizes):
            raise KhoReplayError(bad + "expected N% or three sizes lowmem,global,pernode (64M,512M,256M)")


def _check_hugetlb_cma(value: str, arch: str, release: str | None) -> None:
    era73 = True
    if release and (m := re.match(r"(\d+)\.(\d+)", release)):
        era73 = (int(m.group(1)), int(m.group(2))) >= (7, 3)
    try:
        req = parse_hugetlb_cma(value, percent=era73)
    except KhoReplayError as e:
        pct = "" if era73 or "%" not in value else f" (N% since 7.3; kernel {release})"
        raise KhoReplayError(f"--set {e}{pct}") from None
    if not req.size and not req.percent and not req.per_node:
        return  # hugetlb_cma=0: no area (hugetlb_cma_reserve() returns at once)
    order = hugetlb_cma_order(arch)
    if not order:
        # arch_hugetlb_cma_order() is the __weak 0: "hugetlb_cma: the option isn't supported by current arch"
        raise KhoReplayError(f"--set hugetlb_cma={value}: the option isn't supported by {arch} (x86_64, arm64)")
    gsize = 4096 << order
    # mm/hugetlb_cma.c (7.3 :298-319, 7.2 :191-212): a size that is not a multiple of the gigantic page is
    # warned about and reserves nothing; refused here rather than replayed as a no-op
    for nid, size, pct in req.per_node:
        if not pct and size % gsize:
            raise KhoReplayError(f"--set hugetlb_cma={value}: cma area of node {nid} must be a multiple of "
                                 f"{gsize >> 20} MiB")
    if not req.per_node and req.size % gsize:
        raise KhoReplayError(f"--set hugetlb_cma={value}: cma area must be a multiple of {gsize >> 20} MiB")


def _fmt(size: int) -> str:
    return f"{size >> 30}G" if size >= 1 << 30 else f"{size >> 20}M" if size >= 1 << 20 else f"{size >> 10}K"


def parse_set(text: str) -> tuple[str, list[str]]:
    """``PARAM=V1,V2`` of a sweep (or ``PARAM=V`` of a replay) into the parameter and its values.

    Per-node ``hugepages=`` and ``hugetlb_cma=`` values keep their commas; separate them with ``;``
    in a sweep (``hugepages=0:1,1:1;0:2,1:2``).  ``kho_scratch=`` sizes, three
    comma-separated, likewise take ``;`` between values.
    """
    key, eq, val = text.partition("=")
    if not eq or not key or not val:
        raise KhoReplayError(f"--set {text}: expected PARAM=VALUE")
    per_node = key in ("hugepages", "hugetlb_cma") and ":" in val
    if ";" in val or per_node or (key == "kho_scratch" and not val.endswith("%") and val.count(",") == 2):
        return key, [v for v in val.split(";") if v]
    return key, [v for v in val.split(",") if v]


def set_cmdline(cmdline: str, key: str, value: str) -> str:
    """*cmdline* with ``key=value``: the existing word replaced, else appended (see the module docstring)."""
    words = cmdline.split()
    if key == "hugepages":
        # The count after the 1 GiB hstate's hugepagesz= (or default_hugepagesz=1G) is the one to change.
        one_g, at = False, None
        for i, w in enumerate(words):
            k, _, v = w.partition("=")
            if k in ("hugepagesz", "default_hugepagesz"):
                one_g = _is_1g(v)
                if one_g and at is None:
                    at = i
            elif k == "hugepages" and one_g:
                words[i] = f"hugepages={value}"
                return " ".join(words)
        if at is not None:
            words.insert(at + 1, f"hugepages={value}")
        else:
            words += ["hugepagesz=1G", f"hugepages={value}"]
        return " ".join(words)
    for i, w in enumerate(words):
        if w.partition("=")[0] == key:
            words[i] = f"{key}={value}"
            return " ".join(words)
    return " ".join([*words, f"{key}={value}"])


def _is_1g(v: str) -> bool:
    try:
        return memparse(v) == 1 << 30
    except KhoReplayError:
        return False


def apply_sets(trace: Trace, sets: Sequence[tuple[str, str]]) -> Trace:
    """*trace* with each ``(param, value)`` of *sets* applied, in order.

    :raises KhoReplayError: for an unknown parameter or a bad value.
    """
    if not sets:
        return trace
    from ..kho.boot import classify_ops
    from ..kho.classify import Subsystem
    from ..kho.hugepages import hugepages_request
    from ..kho.link import link

    ctx = trace.context
    cmdline = ctx.cmdline
    for key, value in sets:
        check_param(key, value, arch=ctx.arch or "x86_64", release=ctx.release)
        cmdline = set_cmdline(cmdline, key, value)
    new = replace(trace, context=replace(ctx, cmdline=cmdline))
    req = hugepages_request(cmdline, ctx.arch or "x86_64")
    subs = classify_ops(trace)
    gig = [i for i, op in enumerate(trace.ops) if isinstance(op, Alloc) and subs[i] is Subsystem.HUGETLB_GIGANTIC]
    keep: set[int] = set()
    if req is not None and req.per_node:
        want = dict(req.per_node)
        for i in gig:
            nid = trace.ops[i].nid  # type: ignore[union-attr]
            if want.get(nid if nid is not None else -1, 0) > 0:
                want[nid] -= 1  # type: ignore[index]
                keep.add(i)
    elif req is not None:
        keep = set(gig[:req.total])
    drop = set(gig) - keep
    if any(key == "hugetlb_cma" for key, _ in sets):
        # the boot driver reserves the new areas where hugetlb_cma_reserve() runs: the recorded ones go
        # (hugetlb_cma's are aligned to the gigantic page; a cma= area's to CMA's 2 MiB minimum stays)
        areas = {i for i, op in enumerate(trace.ops) if isinstance(op, Alloc)
                 and subs[i] is Subsystem.HUGETLB_CMA and (op.align or 0) >= 1 << 30}
        # with the bottom-up switch cma_alloc_mem() wraps its first try in
        drop |= areas | {i + d for i in areas for d in (-1, 1) if 0 <= i + d < len(trace.ops)
                         and isinstance(trace.ops[i + d], SetBottomUp)
                         and (trace.ops[i + d].inferred or "").startswith("cma_alloc_mem()")}
    if not drop:
        return new
    # Ops tied to a dropped page (its tail NOINIT mark) go with it.
    anchors = link(trace.ops)
    ops = tuple(op for i, op in enumerate(trace.ops)
                if i not in drop and not (anchors[i] is not None and anchors[i].alloc in drop))
    return replace(new, ops=ops)
