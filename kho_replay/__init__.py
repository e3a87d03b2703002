# SPDX-License-Identifier: GPL-2.0-only
"""kho-replay: replay real boots on a model of the kernel's memblock allocator.

The code lives in two packages, ``kho_replay.parsers`` (input formats into the
operation stream) and ``kho_replay.replay`` (the model, strategies and diffs).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kho-replay")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"
