# SPDX-License-Identifier: GPL-2.0-only
"""``kho=`` and ``kho_scratch=`` as a first kernel reads them (``kho_parse_enable()``,
``kho_parse_scratch_size()`` in kernel/liveupdate/kexec_handover.c).

>>> p = parse_kho_cmdline("console=ttyS0 kho=on kho_scratch=64M,3G,128M")
>>> p.enable, p.scale, p.lowmem >> 20, p.global_ >> 20, p.pernode >> 20
(True, 0, 64, 3072, 128)
>>> parse_kho_cmdline("kho_scratch=50%").scale
50
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import KhoReplayError

__all__ = ["KhoParams", "memparse", "parse_kho_cmdline"]

_MEMPARSE = re.compile(r"^(\d+|0[xX][0-9a-fA-F]+)([KMGTPEkmgtpe]?)$")
_SHIFT = {"": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60}


def memparse(text: str) -> int:
    """The kernel's ``memparse()`` for one fully consumed size (``512M``, ``0x1000``).

    :raises KhoReplayError: on anything else.
    """
    m = _MEMPARSE.match(text)
    if not m:
        raise KhoReplayError(f"not a size: {text!r}")
    return int(m.group(1), 0) << _SHIFT[m.group(2).upper()]


@dataclass(frozen=True, slots=True)
class KhoParams:
    """``kho=`` and ``kho_scratch=`` as the first kernel of a KHO chain reads them."""

    #: kho_enable; the trace kernel's CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT is unknown, so off unless kho=.
    enable: bool = False
    #: scratch_scale in percent; 0 when explicit sizes were given.
    scale: int = 200
    lowmem: int = 0
    global_: int = 0
    pernode: int = 0
    messages: tuple[str, ...] = ()


def parse_kho_cmdline(cmdline: str, *, default_enable: bool = False) -> KhoParams:
    """Read ``kho=`` (kstrtobool) and ``kho_scratch=`` (N% or three memparse sizes).

    A malformed ``kho_scratch=`` leaves the defaults, as the kernel's -EINVAL does.
    """
    enable, scale, low, glob, node = default_enable, 200, 0, 0, 0
    msgs: list[str] = []
    for word in cmdline.split():
        key, eq, val = word.partition("=")
        if key == "kho" and eq:
            if val[:1].lower() in ("y", "1") or val.lower() == "on":
                enable = True
            elif val[:1].lower() in ("n", "0") or val.lower() == "off":
                enable = False
        elif key == "kho_scratch" and eq:
            if val.endswith("%"):
                # The string including '%' must fit the parser's 11-byte buffer.
                if len(val) <= 11 and val[:-1].isdigit():
                    scale = int(val[:-1])
                    msgs.append(f"KHO: scratch scale is {scale}%")
                continue
            parts = val.split(",")
            try:
                sizes = [memparse(p) for p in parts]
            except KhoReplayError:
                continue
            if len(sizes) != 3 or not sum(sizes):
                continue
            low, glob, node = sizes
            scale = 0
            msgs.append(f"KHO: scratch areas: lowmem: {low >> 20}MiB global: {glob >> 20}MiB "
                        f"pernode: {node >> 20}MiB")
    return KhoParams(enable, scale, low, glob, node, tuple(msgs))
