# SPDX-License-Identifier: GPL-2.0-only
"""Synthetic fleet hosts: a real boot's plain log with the machine's memory, nodes and gigantic pages changed.

:func:`synth_host` starts from a real ``memblock=debug`` boot, strips it
(:func:`~kho_replay.parsers.plain.strip_debug`, what the host would print
without ``memblock=debug``) and rewrites what differs between machines of a
QEMU-like fleet: the e820 RAM above 4 GiB, the NUMA lines (``Initmem setup
node``, ``Early memory node ranges``, nodes splitting RAM in halves as
QEMU's ``-numa`` does) and ``hugepages=`` on the command line.  Lines whose
values only a real boot of that machine could print are dropped rather than
invented: ``NODE_DATA(n) allocated``, ``software IO TLB: mapped``, ``Memory:``,
``HugeTLB: registered`` and ``KHO:`` results.  :func:`write_fleet` writes N
such hosts with seeded, varied sizes.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from kho_replay.parsers.plain import strip_debug

__all__ = ["synth_host", "write_fleet"]

_LOW_RAM_END = 0xBFFE0000  # QEMU pc: RAM below the 32-bit PCI hole
_G = 1 << 30
_DROP = re.compile(r"NODE_DATA\(\d+\) allocated|software IO TLB: mapped|\] Memory: \d+K/|HugeTLB: registered|"
                   r"\] KHO: |No NUMA configuration found|Faking a node at|NUMA: |ACPI: SRAT: Node")


def _stamp(line: str) -> str:
    m = re.match(r"^(.*?\[\s*\d+\.\d+\] )", line)
    return m.group(1) if m else ""


def synth_host(debug_log: str, *, mem_gib: int, nodes: int = 1, pages: int = 0) -> str:
    """A plain log of a host like *debug_log*'s with *mem_gib* GiB (> 3), *nodes* nodes and *pages* 1 GiB pages."""
    if mem_gib <= 3 or nodes not in (1, 2):
        raise ValueError("mem_gib must be > 3 and nodes 1 or 2")
    top = (1 << 32) + (mem_gib - 3) * _G
    ram_low = _LOW_RAM_END - 0x100000
    if nodes == 1:
        spans = [(0, top)]
    else:
        half = mem_gib * _G // 2
        cut = 0x100000 + half if half <= ram_low else (1 << 32) + (half - ram_low - 0x100000)
        cut = cut >> 27 << 27  # a section boundary
        spans = [(0, cut), (cut, top)]
    ram = [(0x1000, 0x9F000), (0x100000, _LOW_RAM_END), (1 << 32, top)]
    out: list[str] = []
    in_ranges = False
    for line in strip_debug(debug_log).splitlines(keepends=True):
        text = line.rstrip("\n")
        if _DROP.search(text) and not text.startswith("dmesg| "):
            continue
        if "BIOS-e820: [mem 0x0000000100000000-" in text:
            head = text.split("BIOS-e820:")[0]
            out.append(f"{head}BIOS-e820: [mem 0x0000000100000000-{top - 1:#018x}]  System RAM\n")
            continue
        if "BIOS-e820: [gap 0x" in text and "-0x000000fcffffffff]" in text:
            head = text.split("BIOS-e820:")[0]
            out.append(f"{head}BIOS-e820: [gap {top:#018x}-0x000000fcffffffff]\n")
            continue
        if text.endswith("] Early memory node ranges"):
            in_ranges = True
            out.append(line)
            st = _stamp(text)
            for nid, (s, e) in enumerate(spans):
                for b, en in ram:
                    lo, hi = max(b, s), min(en, e)
                    if lo < hi:
                        out.append(f"{st}  node   {nid}: [mem {lo:#018x}-{hi - 1:#018x}]\n")
            continue
        if in_ranges and re.search(r"\]\s+node\s+\d+: \[mem ", text):
            continue
        in_ranges = False
        if "] Initmem setup node " in text:
            st = _stamp(text)
            for nid, (s, e) in enumerate(spans):
                out.append(f"{st}Initmem setup node {nid} [mem {max(s, 0x1000):#018x}-{e - 1:#018x}]\n")
            continue
        if "ommand line: " in text:
            words = [w for w in text.split(" ") if not w.startswith(("hugepages=", "hugepagesz=",
                                                                      "default_hugepagesz="))]
            if pages:
                words += ["hugepagesz=1G", f"hugepages={pages}"]
            out.append(" ".join(words) + "\n")
            continue
        out.append(line)
    return "".join(out)


def write_fleet(debug_log: str, directory: str | Path, count: int, *, seed: int = 1) -> list[Path]:
    """Write *count* synthetic hosts (``host-00000.log``...) of varied memory, nodes and page counts."""
    rng = random.Random(seed)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        mem = rng.choice((4, 6, 8, 8, 12, 16, 16, 24, 32, 48, 64))
        nodes = rng.choice((1, 1, 2)) if mem >= 8 else 1
        pages = rng.choice((0, 0, 1, 2, 2, 4, 8)) if mem >= 6 else rng.choice((0, 1))
        p = d / f"host-{k:05d}.log"
        p.write_text(synth_host(debug_log, mem_gib=mem, nodes=nodes, pages=min(pages, mem - 3)))
        paths.append(p)
    return paths
