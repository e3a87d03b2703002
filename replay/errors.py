# SPDX-License-Identifier: GPL-2.0-only
"""The one exception tree of kho-replay.

Both ``kho_replay.parsers`` and ``kho_replay.replay`` raise only these.  Every
``str(e)`` is a single line that names where the problem is, the way a
compiler does: ``console.log:1234: ...`` for text input, ``trace.dat@0x0001a2f0:
...`` for binary input, ``op 17 (setup_arch+0x848/0xc10): ...`` for replay.
"""

from __future__ import annotations

__all__ = [
    "FormatError",
    "InputError",
    "KernelPanic",
    "KhoReplayError",
    "ReplayError",
    "TruncatedError",
    "UnsupportedError",
]


class KhoReplayError(Exception):
    """Root of every error kho-replay raises on purpose."""


class InputError(KhoReplayError):
    """Something is wrong with an input file.

    :param path: the file as the user named it.
    :param line: 1-based line number for text input.
    :param offset: byte offset for binary input.
    """

    def __init__(
        self,
        path: str,
        message: str,
        *,
        line: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.offset = offset
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
        elif self.offset is not None:
            where += f"@0x{self.offset:08x}"
        # one line, always: an embedded newline would break "one error, one line"
        return f"{where}: {self.message}".replace("\n", " ")


class FormatError(InputError):
    """The input is garbled or not in the format it claims to be."""


class TruncatedError(InputError):
    """The input ends inside a record, a line or a section."""


class UnsupportedError(InputError):
    """The input is valid but uses a version or feature we do not model."""


class ReplayError(KhoReplayError):
    """A model invariant broke while replaying an operation.

    :param op_index: index of the op in the stream being replayed.
    :param caller: the op's caller symbol, when the trace has one.
    """

    def __init__(self, message: str, *, op_index: int | None = None, caller: str | None = None) -> None:
        self.message = message
        self.op_index = op_index
        self.caller = caller
        super().__init__(str(self))

    def __str__(self) -> str:
        where = "" if self.op_index is None else f"op {self.op_index}"
        if self.caller:
            where += f" ({self.caller})" if where else self.caller
        text = f"{where}: {self.message}" if where else self.message
        return text.replace("\n", " ")


class KernelPanic(ReplayError):
    """The modelled kernel would panic here (e.g. ``memblock: cannot resize reserved array``)."""
