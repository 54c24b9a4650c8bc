"""Read a file the configuration names, refusing anything that is not a regular file.

A named pipe (FIFO) blocks whoever opens it for reading until a writer appears,
and ``/dev/zero`` or ``/dev/urandom`` never end: either would hang ``validate``,
stall a reload, or fill the memory. The file is opened without blocking and
checked on the open descriptor (``fstat``), so a path swapped between a check
and the open cannot slip past.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Final

_KINDS: Final = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFile(OSError):
    """The path exists but is a directory, a pipe, a device or a socket."""


def read_regular(path: Path) -> bytes:
    """The bytes of ``path``; :class:`NotRegularFile` (an ``OSError``) if it is not a file.

    ``strerror`` of the error is a short reason fit for a one-line message.
    """
    # O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer.
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, f"not a regular file ({_kind(mode)})")
        os.set_blocking(descriptor, True)
        with os.fdopen(descriptor, "rb", closefd=False) as stream:
            return stream.read()
    finally:
        os.close(descriptor)


def read_regular_text(path: Path) -> str:
    """``read_regular`` decoded as UTF-8 with newlines made ``\\n`` (as ``Path.read_text``)."""
    text = read_regular(path).decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a file"
