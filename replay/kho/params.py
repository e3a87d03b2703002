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

__all__ = ["KhoParams", "memparse", "memparse_end", "parse_kho_cmdline", "strtoull_end"]

#: simple_strtoull(..., 0)'s number: 0x hex (a hex digit must follow), a leading 0 octal, else decimal.
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")
_SUFFIX_SHIFT = {"k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}


def strtoull_end(text: str, pos: int = 0) -> tuple[int, int]:
    """``simple_strtoull(text + pos, &end, 0)``: the number and where it ends (*pos* when none starts there).

    >>> strtoull_end("0x1e"), strtoull_end("010"), strtoull_end("08"), strtoull_end("x")
    ((30, 4), (8, 3), (0, 1), (0, 0))
    """
    m = _NUMBER.match(text, pos)
    if not m:
        return 0, pos
    digits = m.group()
    n = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits, 8) if digits[0] == "0" else int(digits)
    return n, m.end()


def memparse_end(text: str, pos: int = 0) -> tuple[int, int]:
    """The kernel's ``memparse()`` (lib/cmdline.c) at ``text[pos:]``: the value and where its end
    pointer stops (*pos* when no number starts there: a suffix letter alone is not consumed).

    >>> memparse_end("64M,3G"), memparse_end("010k"), memparse_end("0x1000"), memparse_end("G")
    ((67108864, 3), (8192, 4), (4096, 6), (0, 0))
    """
    n, end = strtoull_end(text, pos)
    if end == pos:
        return 0, pos
    shift = _SUFFIX_SHIFT.get(text[end:end + 1].lower())
    if shift is None:
        return n, end
    return min(n << shift, (1 << 64) - 1), end + 1  # check_shl_overflow() saturates at ULLONG_MAX


def memparse(text: str) -> int:
    """``memparse()`` of one size that must be all of *text* (``512M``, ``0x1000``, ``010`` octal).

    :raises KhoReplayError: when *text* is empty or anything follows the size.
    """
    value, end = memparse_end(text)
    if end == 0 or end != len(text):
        raise KhoReplayError(f"not a size: {text!r}")
    return value


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
