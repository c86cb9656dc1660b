"""The one way the kit reads and writes local files: regular files only, size-capped, written atomically.

Reading a path a learner (or a bundle) names can meet a FIFO (``open()`` blocks forever), a device
(``/dev/zero`` never ends), or a 50 MB ``cks.yaml``. :func:`read_bytes` looks before it opens (``stat``),
opens without blocking (``O_NONBLOCK``: a FIFO swapped in after the look does not hang), checks again on
the open descriptor, and reads at most ``max_bytes + 1`` bytes. Every refusal is a :class:`ReadRefused`
whose ``kind`` says why and whose ``str()`` is a message fit for the user.

:func:`atomic_write` writes to a temporary sibling and renames it into place, so a reader (or a second
writer) never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
_OPEN_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
)


class ReadRefused(ValueError):
    """A file was not read. ``kind``: missing, is_directory, not_a_file, too_large, unreadable, binary."""

    def __init__(self, kind: str, message: str, path: str):
        super().__init__(message)
        self.kind = kind
        self.path = path


def _describe(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


_os_open = os.open  # one place to simulate "permission denied" in tests run as root


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def _mb(n: int) -> str:
    if n >= 1048576 and n % 1048576 == 0 and n < 1024 * 1048576:
        return f"{n // 1048576} MB"
    return f"{n / 1048576:.1f} MB" if n >= 1048576 else f"{n:,} bytes"


def _size(n: int) -> str:
    return f"{n / 1048576:.1f} MB" if n >= 1048576 else f"{n:,} bytes"


def open_regular(path: str | os.PathLike[str], *, what: str = "") -> BinaryIO:
    """An open binary file object for a regular file (for streaming); ReadRefused for anything else."""
    name = what or str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ReadRefused("missing", f"{name} does not exist", str(path)) from None
    except OSError as exc:
        raise ReadRefused("unreadable", f"{name} cannot be read: {_reason(exc)}", str(path)) from None
    if stat.S_ISDIR(st.st_mode):
        raise ReadRefused("is_directory", f"{name} is a directory, not a file", str(path))
    if not stat.S_ISREG(st.st_mode):
        raise ReadRefused(
            "not_a_file", f"{name} is {_describe(st.st_mode)}; only regular files are read", str(path)
        )
    try:
        fd = _os_open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise ReadRefused("missing", f"{name} does not exist", str(path)) from None
    except OSError as exc:
        raise ReadRefused("unreadable", f"{name} cannot be read: {_reason(exc)}", str(path)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped between the look and the open
            raise ReadRefused(
                "not_a_file", f"{name} is {_describe(st.st_mode)}; only regular files are read", str(path)
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "") -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; ReadRefused otherwise (nothing is read)."""
    name = what or str(path)
    with open_regular(path, what=what) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise ReadRefused(
                "too_large",
                f"{name} is {_size(size)}, more than the {_mb(max_bytes)} the kit reads for this file",
                str(path),
            )
        try:
            data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise ReadRefused("unreadable", f"{name} cannot be read: {_reason(exc)}", str(path)) from None
    if len(data) > max_bytes:  # it grew while we read
        raise ReadRefused(
            "too_large", f"{name} is more than the {_mb(max_bytes)} the kit reads for this file", str(path)
        )
    return data


def read_text(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "") -> str:
    """UTF-8 text (a BOM is dropped); ReadRefused('binary') for NUL bytes or bytes that are not UTF-8."""
    data = read_bytes(path, max_bytes=max_bytes, what=what)
    name = what or str(path)
    if b"\x00" in data[:65536]:
        raise ReadRefused("binary", f"{name} is binary, not text", str(path))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReadRefused(
            "binary", f"{name} is not UTF-8 text (bad byte at offset {exc.start})", str(path)
        ) from None


def read_stream(stream: BinaryIO, *, max_bytes: int = DEFAULT_MAX_BYTES, what: str = "stdin") -> bytes:
    """At most ``max_bytes`` from an open stream (stdin); ReadRefused('too_large') past that."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ReadRefused("too_large", f"{what} is more than the {_mb(max_bytes)} the kit reads", what)
    return data


def atomic_write(path: str | os.PathLike[str], data: bytes | str, *, mode: int | None = None) -> None:
    """Write ``data`` to a temporary sibling, then rename it over ``path``: readers see all or nothing."""
    target = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.chmod(tmp, 0o644 if mode is None else mode)  # mkstemp's 0600 would surprise a reader
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
