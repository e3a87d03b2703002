# SPDX-License-Identifier: GPL-2.0-only
"""The one way kho-replay writes a file the user named with ``-o``.

Reports are written whole or not at all: the text goes to a temporary file
beside the target, which replaces the target only once everything is
written (``rename(2)`` is atomic within a directory), so a failure half way
(a truncated input, a full disk, Ctrl-C) leaves the old file, or none, and
never a partial one.  A target that exists and is not a regular file (a
device such as ``/dev/null``, a FIFO, a socket, a symbolic link such as
``/dev/stdout``) is opened and written in place instead: renaming over it
would put a regular file where the device node or link was.  A target that
is one of the command's own inputs is refused before any work is lost.  Every OS error becomes one
:class:`OutputError` line naming the output, never the input.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .errors import KhoReplayError

__all__ = ["OutputError", "atomic_path", "check_output", "joined_lines", "need_pyarrow", "read_parquet", "write_output",
           "write_parquet"]


class OutputError(KhoReplayError):
    """The output named by ``-o`` cannot be written."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {message}".replace("\n", " "))


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _in_place(path: Path) -> bool:
    """Whether *path* is written in place: it exists and is not a regular file (lstat: a link counts).

    A device node, FIFO or socket must be opened, not replaced; a symbolic link is written through
    (``/dev/stdout`` leads to whatever fd 1 is, a regular file too), so the link itself survives.
    """
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode)


def check_output(path: Path, inputs: Sequence[Path] = ()) -> None:
    """Refuse an output that cannot be written or would overwrite an input, before any work is done.

    :raises OutputError: for a directory, a missing parent directory or one of *inputs*.
    """
    if path.is_dir():
        raise OutputError(path, "is a directory (give a file name to -o)")
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(path, f"no such directory {str(parent)!r}")
    for i in inputs:
        if _same(path, i):
            raise OutputError(path, f"is an input of this command ({i}): refusing to overwrite it")
    if _in_place(path):
        # Written in place: no temporary file beside it, so only the target itself must be writable
        # (a dangling link is created through, as a shell's `>` would).
        if path.exists() and not os.access(path, os.W_OK):
            raise OutputError(path, "permission denied")
        return
    if not os.access(parent, os.W_OK):
        raise OutputError(path, f"cannot write in {str(parent)!r}: permission denied")


@contextlib.contextmanager
def atomic_path(path: Path, inputs: Sequence[Path] = ()) -> Iterator[Path]:
    """A temporary path beside *path* to write; it becomes *path* when the block ends without an error.

    Where *path* exists and is not a regular file (:func:`_in_place`) the path given is *path* itself,
    written directly: a device, FIFO or link is never replaced, and is left as it is on an error.

    :raises OutputError: see :func:`check_output`; or when the OS refuses the write.
    """
    check_output(path, inputs)
    if _in_place(path):
        try:
            yield path
        except OSError as e:
            raise OutputError(path, e.strerror or str(e)) from None
        return
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OutputError(path, e.strerror or str(e)) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp_path, 0o666 & ~mask)  # mkstemp's 0600 is for the temporary only
        os.replace(tmp_path, path)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        raise OutputError(path, e.strerror or str(e)) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_output(path: Path | None, text: str | Iterable[str], inputs: Sequence[Path] = ()) -> None:
    """Write *text* (a string, or chunks produced lazily) to stdout, or atomically to *path*.

    :raises OutputError: see :func:`atomic_path`.
    """
    chunks = [text] if isinstance(text, str) else text
    if path is None:
        write = sys.stdout.write
        for chunk in chunks:
            write(chunk)
        return
    with atomic_path(path, inputs) as tmp:
        try:
            f = tmp.open("w")
        except OSError as e:
            raise OutputError(path, e.strerror or str(e)) from None
        with f:
            for chunk in chunks:
                try:
                    f.write(chunk)
                except OSError as e:
                    raise OutputError(path, e.strerror or str(e)) from None


def joined_lines(lines: Sequence[str], batch: int = 1 << 14) -> Iterator[str]:
    """*lines* as text, newline-terminated, *batch* lines to a chunk: for :func:`write_output`, which
    writes each chunk as it comes, so a report of 10^6 lines is never one string (nor copied whole).

    >>> list(joined_lines(["a", "b", "c"], batch=2))
    ['a\\nb\\n', 'c\\n']
    """
    for i in range(0, len(lines), batch):
        yield "\n".join(lines[i:i + batch]) + "\n"


def need_pyarrow(path: Path):  # type: ignore[no-untyped-def]
    """pyarrow and pyarrow.parquet, for writing or reading *path*.

    :raises OutputError: naming *path* when pyarrow is not installed.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise OutputError(path, "parquet needs pyarrow (pip install 'kho-replay[parquet]'); "
                                "use .json or .csv") from None
    return pa, pq


def write_parquet(path: Path, columns: dict[str, list[object]], inputs: Sequence[Path] = ()) -> None:
    """Write *columns* (name -> values, one per row) as a parquet file, atomically like :func:`write_output`.

    :raises OutputError: when pyarrow is missing, or as :func:`write_output`.
    """
    pa, pq = need_pyarrow(path)
    with atomic_path(path, inputs) as tmp:
        pq.write_table(pa.table(columns), tmp)


def read_parquet(path: Path) -> list[dict[str, object]]:
    """The rows of a parquet file :func:`write_parquet` wrote, one dict each.

    :raises OutputError: when pyarrow is missing or the file is not parquet.
    """
    _, pq = need_pyarrow(path)
    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises its own ArrowInvalid / OSError kinds
        raise OutputError(path, f"not a parquet file ({e})") from None

