"""A scripted container file system for the double's exec: what a command would do inside a container,
decided from the pod spec, never by running anything.

- The root file system is read-only when the container's ``securityContext.readOnlyRootFilesystem`` is true.
- A path under a ``volumeMounts`` entry belongs to that volume: ``emptyDir`` is writable unless the mount is
  ``readOnly``; configMap/secret/projected/downwardAPI volumes are always read-only; hostPath follows
  ``readOnly``.
- Images run as root (uid 0) unless ``runAsUser`` says otherwise. On a writable root a non-root user may
  write only under ``/tmp`` (and ``/var/tmp``, ``/dev/shm``); elsewhere ``Permission denied``.
- Creating a file on a read-only mount fails with EROFS whatever the uid (Linux checks the mount first).
  Texts are busybox's: ``touch: <path>: Read-only file system`` / ``touch: <path>: Permission denied``,
  exit 1.

Commands understood: the grader's write probe (``sh -c '<for d in "$@"... touch ...>' sh DIR...``), ``touch
PATH``, ``cat FILE`` (``/etc/shadow`` and ``/etc/passwd`` have fake contents), ``id``, ``true``, ``sleep``,
``sh -c 'id'``; anything else exits 127 ``sh: <cmd>: not found``.
"""

from __future__ import annotations

import posixpath
from typing import Any

SHADOW = "root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")


def _container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    for c in (pod.get("spec") or {}).get("containers") or []:
        if c.get("name") == name:
            return c
    return {}


def _uid(pod: dict[str, Any], c: dict[str, Any]) -> int:
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = c.get("securityContext") or {}
    uid = sc.get("runAsUser", psc.get("runAsUser", 0))
    return int(uid) if isinstance(uid, int) else 0


def touch(pod: dict[str, Any], container: str, path: str) -> tuple[int, str]:
    """(exit code, stderr) of ``touch path`` in the container."""
    c = _container(pod, container)
    path = posixpath.normpath(path)
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    best = None
    for m in c.get("volumeMounts") or []:
        mp = posixpath.normpath(str(m.get("mountPath", "")))
        covers = path == mp or path.startswith(mp.rstrip("/") + "/")
        if covers and (best is None or len(mp) > len(posixpath.normpath(str(best.get("mountPath"))))):
            best = m
    if best is not None:
        vol = volumes.get(best.get("name")) or {}
        writable = not best.get("readOnly") and (
            "emptyDir" in vol or "hostPath" in vol or "persistentVolumeClaim" in vol or "ephemeral" in vol
        )
        if not writable:
            return 1, f"touch: {path}: Read-only file system"
        return 0, ""
    if ((c.get("securityContext") or {}).get("readOnlyRootFilesystem")) is True:
        return 1, f"touch: {path}: Read-only file system"
    if _uid(pod, c) != 0 and not any(path.startswith(w + "/") for w in WORLD_WRITABLE):
        return 1, f"touch: {path}: Permission denied"
    return 0, ""


def interpret(pod: dict[str, Any], container: str, argv: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr)."""
    if not argv:
        return 126, "", "no command"
    if argv[:2] == ["sh", "-c"] and len(argv) >= 3:
        script = argv[2]
        if "touch" in script and '"$@"' in script:  # the grader's write probe: one line per dir
            lines = []
            for d in argv[4:]:
                rc, err = touch(pod, container, posixpath.join(d, ".cksprobe1"))
                lines.append(f"{d}\t{rc}\t{err}")
            return 0, "\n".join(lines) + "\n", ""
        words = script.split()
        return interpret(pod, container, words) if words else (0, "", "")
    cmd, args = argv[0], argv[1:]
    if cmd == "touch" and args:
        rc, err = touch(pod, container, args[-1])
        return rc, "", err + ("\n" if err else "")
    if cmd in {"cat", "head", "tail"} and args:
        path = args[-1]
        text = {"/etc/shadow": SHADOW, "/etc/passwd": PASSWD}.get(path)
        if text is None:
            return 1, "", f"{cmd}: can't open '{path}': No such file or directory\n"
        if path == "/etc/shadow" and _uid(pod, _container(pod, container)) != 0:
            return 1, "", f"{cmd}: can't open '{path}': Permission denied\n"
        return 0, text, ""
    if cmd == "id":
        uid = _uid(pod, _container(pod, container))
        return 0, f"uid={uid} gid={uid}\n", ""
    if cmd in {"true", "sleep", "echo"}:
        return 0, (" ".join(args) + "\n") if cmd == "echo" else "", ""
    return 127, "", f"sh: {cmd}: not found\n"
