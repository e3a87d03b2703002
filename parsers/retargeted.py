# SPDX-License-Identifier: GPL-2.0-only
"""Read and write a retargeted trace: an op script with a ``#@`` header carrying what ops cannot.

``kho-replay retarget`` writes the host's predicted ops as an ordinary op
script (so ``parse``, ``run`` and ``kho`` read it like any other), preceded by
comment lines an op-script reader ignores::

    # kho-replay retarget v1
    #@ release: 7.2.13-kho
    #@ arch: x86_64
    #@ cmdline: console=ttyS0 kho=on hugepages=2 ...
    #@ node: 0 0x1000 0x240000000
    #@ fact: retarget_assume kernel image at the template's 0x61a00000 ...
    #@ observe: memory 173 host.log:466 Memory: 7123976K/8388088K available (...)

``observe`` lines are kernel lines of the host (kind, op index, where, text)
that ``validate`` checks the replay against.
"""

from __future__ import annotations

from kho_replay.replay.errors import FormatError
from kho_replay.replay.ops import Context, KernelMessage, Src, Trace, format_script, parse_script

from .console.grammar import stated_kib

__all__ = ["MAGIC", "format_retargeted", "parse_retargeted"]

MAGIC = "# kho-replay retarget v1"


def format_retargeted(trace: Trace) -> str:
    """The op script of *trace* with its context and host observations in a ``#@`` header."""
    c = trace.context
    head = [MAGIC, f"#@ source: {c.source}"]
    if c.release:
        head.append(f"#@ release: {c.release}")
    if c.arch:
        head.append(f"#@ arch: {c.arch}")
    head.append(f"#@ cmdline: {c.cmdline}")
    head += [f"#@ node: {n} {b:#x} {e:#x}" for n, b, e in c.nodes]
    head += [f"#@ fact: {k} {v}" for k, v in c.facts]
    for o in trace.observations:
        if isinstance(o, KernelMessage):
            where = f"{o.src.path}:{o.src.line}" if o.src is not None and o.src.line is not None else "?"
            head.append(f"#@ observe: {o.kind} {o.at} {where} {o.text}")
    return "\n".join(head) + "\n" + format_script(trace.ops)


def parse_retargeted(text: str, path: str) -> Trace:
    """Read what :func:`format_retargeted` wrote.

    :raises FormatError: naming the line of a header entry that does not parse.
    """
    kw: dict[str, object] = {"source": path}
    nodes: list[tuple[int, int, int]] = []
    facts: list[tuple[str, str]] = []
    obs: list[KernelMessage] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.startswith("#@ "):
            continue
        key, _, val = line[3:].partition(": ")
        try:
            if key in ("release", "arch", "cmdline"):
                kw[key] = val
            elif key == "node":
                n, b, e = val.split()
                nodes.append((int(n), int(b, 0), int(e, 0)))
            elif key == "fact":
                k, _, v = val.partition(" ")
                facts.append((k, v))
            elif key == "observe":
                kind, at, where, rest = val.split(" ", 3)
                p, _, ln = where.rpartition(":")
                src = Src(p, int(ln), text=rest) if ln.isdigit() else None
                obs.append(KernelMessage(at=int(at), src=src, kind=kind, text=rest, kib=stated_kib(kind, rest)))
        except ValueError as e:
            raise FormatError(path, f"bad '#@ {key}' header line ({e})", line=lineno) from None
    ctx = Context(nodes=tuple(nodes), facts=tuple(facts), **kw)  # type: ignore[arg-type]
    return Trace(ctx, parse_script(text, path), tuple(obs))
