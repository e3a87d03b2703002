#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Time the console-log commands as the log grows: parse, validate, kho -s merged.

    .venv/bin/python benchmarks/console_scale.py [--lines 20000 200000 2000000] [--shape memblock noisy]
                                                 [--log PATH] [--commands parse validate "kho -s merged"]
                                                 [--exe NAME=PATH ...]

Two shapes of capture of about N lines are made from a real boot:

* ``memblock``: every line a memblock line.  The boot's per-CPU setup window
  (allocations, the reservations that record their addresses, the frees of
  their tails: ops at fixed addresses inside earlier allocations, which link()
  ties to them) is repeated, each time followed by the frees of what it left
  reserved (but the last), so that every repetition allocates where the boot
  did: a boot the model reproduces (``validate`` exits 0), as many ops as lines.
* ``noisy``: what a long serial-console capture usually is.  The boot itself,
  then N lines of everything else a console shows (kernel messages with growing
  stamps, systemd and shell output, terminal escapes), before the capture
  script's sections.
* ``multiboot``: a serial console left running across reboots.  The boot (with
  its capture script's sections) 40 times, each with its stamps moved (a reboot
  of the same kernel, not the boot pasted again), the rest of the N lines as the
  noisy shape's output between them, each followed by a reboot's lines (the
  kernel's last message, firmware escapes).  It needs ``--boot N`` but for
  ``validate`` (every boot): ``--commands "parse --boot 40" validate "kho -s merged --boot 20"``.

Each command runs in a fresh process; wall and CPU time and peak RSS are
printed with the rate in lines per CPU second, beside the load average.
``--exe before=/path/to/old/kho-replay after=.venv/bin/kho-replay`` runs each
command with each executable back to back (before/after figures side by side).
The targets (issue 15): linear growth; parse and validate at >= 200,000
lines/s on 2,000,000 lines of either shape; the default command on it in
under a minute; memory bounded.  Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import sys
import tempfile
from collections.abc import Iterator

from measure import child

DEFAULT_LOG = "/work/shared/traces/x86_64-kho-7.2.13-C-12G-hugepages1G2-kho_scratch3G/console-kernel1.log"
#: The window repeated: from this line to the first free after it (pcpu setup in a 7.2 boot).
WINDOW_START = "setup_percpu:"
_RANGE = re.compile(r"(?P<fn>\w+): \[(?P<base>0x[0-9a-f]+)-(?P<end>0x[0-9a-f]+)\]")
_STAMP = re.compile(r"^\[ *(\d+\.\d+)\]")


def _read(src: str) -> list[str]:
    with open(src, encoding="utf-8", errors="surrogateescape") as f:
        return f.read().splitlines(keepends=True)


def _undo(window: list[str]) -> list[str]:
    """Free lines that release what *window* left reserved (its reservations minus its frees)."""
    held: list[tuple[int, int]] = []
    template = None
    for ln in window:
        m = _RANGE.search(ln)
        if m is None or "memblock_double_array" in ln:
            continue
        b, e = int(m["base"], 16), int(m["end"], 16) + 1
        if m["fn"].endswith("memblock_reserve"):
            held.append((b, e))
        elif m["fn"] in ("memblock_phys_free", "memblock_free"):
            template = (ln, m)
            held = [piece for hb, he in held for piece in ((hb, min(he, b)), (max(hb, e), he)) if piece[0] < piece[1]]
    assert template is not None, "the window holds no free line to copy"
    ln, m = template
    return [ln[: m.start("base") - 1] + f"[{b:#018x}-{e - 1:#018x}]" + ln[m.end("end") + 1:] for b, e in reversed(held)]


def _memblock_log(text: list[str], lines: int) -> Iterator[str]:
    start = next(i for i, ln in enumerate(text) if WINDOW_START in ln)
    end = next(i for i in range(start, len(text)) if "memblock_phys_free" in text[i]) + 1
    # plus the first reservation at a fixed address (firmware tables, still reserved): it lies in no
    # allocation, so link() checks it against every live one; re-reserving it changes nothing
    window = [*text[start:end], next(ln for ln in text if "memblock_reserve: [" in ln), *_undo(text[start:end])]
    reps = max(0, (lines - len(text)) // len(window))
    yield from text[:start]
    for _ in range(reps):
        yield from window
    yield from text[start:]  # the last time as the boot did it, and the rest of the boot


#: What a console shows besides the boot: (stamped kernel message?, text).
_NOISE = (
    (True, 'audit: type=1400 audit({t:.3f}:{n}): apparmor="STATUS" operation="profile_load" profile="unconfined" '
           'name="/usr/bin/man" pid={pid} comm="apparmor_parser"'),
    (True, "usb 1-1: new high-speed USB device number {m} using xhci_hcd"),
    (True, "EXT4-fs (vda1): re-mounted 6f1c3a52-0d55-4c39-9b0e-2a5e3c8f1d7a r/w. Quota mode: none."),
    (True, "e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx"),
    (True, "systemd[1]: Started session-{n}.scope - Session {n} of User root."),
    (False, "[  OK  ] Started systemd-journald.service - Journal Service."),
    (False, "         Starting systemd-udev-trigger.service - Coldplug All udev Devices..."),
    (True, "perf: interrupt took too long (2503 > 2500), lowering kernel.perf_event_max_sample_rate to 79750"),
    (True, "kauditd_printk_skb: 12 callbacks suppressed"),
    (False, "\x1b[0;32m  OK  \x1b[0m] Reached target network-online.target - Network is Online.\r"),
    (True, "TCP: request_sock_TCP: Possible SYN flooding on port 22. Sending cookies.  Check SNMP counters."),
    (False, "Debian GNU/Linux 14 kho ttyS0"),
    (False, ""),
    (False, "kho login: root"),
    (False, "root@kho:~# ls -l /var/log"),
    (False, "-rw-r----- 1 root adm  {pid} Dec  7 03:44 syslog"),
    (True, "Out of memory: Killed process {pid} (stress) total-vm:1234567kB, anon-rss:1048576kB, file-rss:0kB, "
           "shmem-rss:0kB, UID:0 pgtables:2100kB oom_score_adj:0"),
    (True, "oom_reaper: reaped process {pid} (stress), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"),
    (True, "IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready"),
    (True, "virtio_net virtio0 enp0s2: renamed from eth0"),
)


def _noisy_log(text: list[str], lines: int) -> Iterator[str]:
    # the noise goes where the boot is over: before the capture script's first section
    at = next((i for i, ln in enumerate(text) if ln.startswith("=====")), len(text))
    t = max((float(m[1]) for ln in text[:at] if (m := _STAMP.match(ln))), default=0.0)
    yield from text[:at]
    for n, (stamped, fmt) in zip(range(max(0, lines - len(text))), itertools.cycle(_NOISE)):
        body = fmt.format(t=t, n=n, m=n % 128, pid=1000 + n % 30000)
        if stamped:
            t += 0.0137
            yield f"[{t:12.6f}] {body}\n"
        else:
            yield body + "\n"
    yield from text[at:]


#: What a serial console shows between two boots: the kernel going down, the firmware coming up.
_REBOOT = (
    "[{t:12.6f}] reboot: Restarting system\n",
    "\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01HSeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n",
    "iPXE (https://ipxe.org) 00:03.0 CA00 PCI2.10 PnP PMM+BEFD0F30+BEF30F30 CA00\r\n",
    "Booting from ROM..\r\n",
)
#: How many boots the multiboot shape holds.
BOOTS = 40


def _multiboot_log(text: list[str], lines: int) -> Iterator[str]:
    """The boot :data:`BOOTS` times, each rebooted with its stamps moved (a reboot, not the boot pasted
    again), the console's other output and a reboot between them."""
    noise = iter(_noisy_log([], max(0, lines - BOOTS * (len(text) + len(_REBOOT)))))
    per_gap = max(0, lines - BOOTS * (len(text) + len(_REBOOT))) // BOOTS
    for k in range(BOOTS):
        shift = k * 1e-6
        t = 0.0
        for ln in text:
            m = _STAMP.match(ln)
            if m and float(m[1]) > 0:
                t = float(m[1]) + shift
                ln = f"[{t:12.6f}]" + ln[m.end():]
            yield ln
        yield from itertools.islice(noise, per_gap)
        yield _REBOOT[0].format(t=t + 1)
        yield from _REBOOT[1:]


SHAPES = {"memblock": _memblock_log, "noisy": _noisy_log, "multiboot": _multiboot_log}


def make_log(src: str, lines: int, out: str, shape: str = "memblock") -> int:
    """Write a capture of about *lines* lines of *shape* to *out*; return its line count."""
    count = 0
    with open(out, "w", encoding="utf-8", errors="surrogateescape") as f:
        for ln in SHAPES[shape](_read(src), lines):
            f.write(ln)
            count += 1
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, nargs="+", default=[20_000, 200_000, 2_000_000])
    ap.add_argument("--shape", nargs="+", choices=sorted(SHAPES), default=["memblock", "noisy"])
    ap.add_argument("--log", default=DEFAULT_LOG, help="the real boot to grow")
    ap.add_argument("--dir", default=None)
    ap.add_argument("--commands", nargs="+", default=["parse", "validate", "kho -s merged"])
    ap.add_argument("--exe", nargs="+", default=[f"this={os.path.join(os.path.dirname(sys.executable), 'kho-replay')}"],
                    help="NAME=PATH of each kho-replay to time (default: this venv's)")
    args = ap.parse_args()
    out = args.dir or tempfile.mkdtemp(prefix="console-scale-")
    os.makedirs(out, exist_ok=True)
    exes = [tuple(e.split("=", 1)) for e in args.exe]
    for shape in args.shape:
        for n in args.lines:
            path = os.path.join(out, f"console-{shape}-{n}.log")
            count = make_log(args.log, n, path, shape)
            size = os.path.getsize(path)
            print(f"{shape}: {count} lines, {size / 1e6:.1f} MB ({path})", flush=True)
            for cmd in args.commands:
                for name, exe in exes:
                    load = os.getloadavg()[0]
                    wall, cpu, rss, rc = child([exe, *cmd.split(), path])[1:]
                    print(f"  {cmd:<14} {name:<7} wall {wall:7.2f} s  cpu {cpu:7.2f} s  "
                          f"{count / cpu:>9,.0f} lines/cpu-s  peak RSS {rss / 1024:6.0f} MB  exit {rc}  "
                          f"(load {load:.1f})", flush=True)


if __name__ == "__main__":
    main()
