"""The engine's only window on the node: a small interface the caller implements (no I/O in the engine)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol


class HostFileError(Exception):
    """A host file could not be read; ``str()`` is the message to show."""


class HostView(Protocol):
    def kind(self, path: str) -> str | None:
        """'file', 'dir', 'missing', or None when the caller cannot tell (the check is then skipped)."""
        ...

    def read_text(self, path: str) -> str:
        """The file's text; raises HostFileError when it cannot be read."""
        ...


class DictHost:
    """A HostView over a mapping {path: text}; directories are implied by the files under them.

    Handy for tests and for callers that already hold the files in memory.
    """

    def __init__(self, files: Mapping[str, str], dirs: tuple[str, ...] = ()):
        self.files = {_norm(p): t for p, t in files.items()}
        self.dirs = {_norm(d) for d in dirs}
        for p in self.files:
            parts = p.split("/")
            for i in range(1, len(parts)):
                self.dirs.add("/".join(parts[:i]) or "/")

    def kind(self, path: str) -> str | None:
        path = _norm(path)
        if path in self.files:
            return "file"
        return "dir" if path in self.dirs else "missing"

    def read_text(self, path: str) -> str:
        path = _norm(path)
        if path not in self.files:
            raise HostFileError(f"{path} does not exist")
        return self.files[path]


class CallableHost:
    """A HostView from two callables (e.g. around a snapshot)."""

    def __init__(self, kind: Callable[[str], str | None], read_text: Callable[[str], str]):
        self._kind = kind
        self._read = read_text

    def kind(self, path: str) -> str | None:
        return self._kind(path)

    def read_text(self, path: str) -> str:
        return self._read(path)


def _norm(path: str) -> str:
    import posixpath

    return posixpath.normpath("/" + path.lstrip("/")) if path else "/"
