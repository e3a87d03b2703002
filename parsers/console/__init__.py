# SPDX-License-Identifier: GPL-2.0-only
"""``memblock=debug`` console logs into the operation stream.

``prefixes`` strips what a capture adds before the printk text (dmesg, journalctl,
syslog, serial stamps); ``grammar`` holds the kernel's message formats and each
era's; ``infer`` supplies the calls a log never prints; ``reader`` walks the lines.
"""

from .reader import (
    ConsoleReader,
    boot_lines,
    count_boots,
    count_boots_file,
    read_console,
    read_console_file,
    read_console_pieces,
    read_console_text,
)

__all__ = ["ConsoleReader", "boot_lines", "count_boots", "count_boots_file", "read_console", "read_console_file",
           "read_console_pieces", "read_console_text"]
