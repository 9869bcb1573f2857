"""Writing files safely: an output file is either complete or absent, never half-written; and only one run
writes a given output at a time (:func:`output_lock`)."""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import TiepointError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".lock"
"""Suffix of the lock file that :func:`output_lock` keeps beside an output while a run writes it."""


class OutputLockedError(TiepointError, OSError):
    """Another live process is writing the same output file (the message names it and that process)."""


_held: set[Path] = set()  # lock files held by this process, to report nested use of one output clearly


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of ``path``: ``OUTPUT.lock`` beside it."""
    path = Path(path)
    return path.with_name(path.name + LOCK_SUFFIX)


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock on an open file without waiting; False if another process holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK):
            return False
        raise
    return True


def _holder(lock: Path) -> str:
    """The process written into a lock file, in words."""
    try:
        info = json.loads(lock.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    command = info.get("command") or "?"
    return f"PID {info.get('pid', '?')} on {info.get('host', '?')} since {since} ({command})"


@contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the exclusive right to write ``path`` for the duration of the block.

    The lock is ``OUTPUT.lock`` beside the output, locked with ``flock`` and holding the PID, host, start
    time and command line of the run. A second run on the same output fails at once; a lock file left by a
    process that has died is not held by anyone (the system releases ``flock`` locks with their process) and
    is taken over silently. The lock file is deleted when the block ends.

    Locks on network file systems work where the file system supports ``flock`` (NFS does on Linux).

    Yields:
        The lock file's path.

    Raises:
        OutputLockedError: another live process writes ``path``; the message names it and what to do.
    """
    path = Path(path)
    lock = lock_path(path)
    key = Path(os.path.abspath(lock))
    if key in _held:
        raise OutputLockedError(
            f"{path} is already being written by this process (PID {os.getpid()}); a stage cannot write the "
            "same file twice at once"
        )
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise OutputLockedError(
                f"{path} is being written by another run: {_holder(lock)}; wait for it to finish or stop it, "
                f"then run again (finished work is kept); if no such process is running, delete {lock}"
            )
        try:  # the holder before us may have deleted the file after we opened it: lock the one on disk
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "command": " ".join(sys.argv),
        "output": str(path),
    }
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(info) + "\n").encode())
    _held.add(key)
    try:
        yield lock
    finally:
        _held.discard(key)
        try:
            lock.unlink()  # before releasing, so that a waiting run does not lock a deleted file
        except OSError:
            pass
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, locked: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    Args:
        path: the file to write.
        locked: hold :func:`output_lock` on ``path`` meanwhile, so that a second run writing the same file
            fails at once (:class:`OutputLockedError`) instead of racing this one.

    Example:
        >>> with atomic_path("out.png") as tmp:  # doctest: +SKIP
        ...     figure.savefig(tmp, format="png")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{_HOST}.{os.getpid()}.partial")
    with output_lock(path) if locked else _no_lock():
        _sweep_dead_partials(path)
        try:
            yield tmp
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


@contextmanager
def _no_lock() -> Iterator[None]:
    yield None


_HOST = socket.gethostname().replace("/", "_")


def _sweep_dead_partials(path: Path) -> None:
    """Delete the temporary files of :func:`atomic_path` that runs on this host left for ``path`` when they
    were killed (their process no longer exists). Another host's files are left alone: its runs cannot be
    checked from here."""
    prefix = f".{path.name}.{_HOST}."
    for stale in path.parent.glob(f".{path.name}.*.partial"):
        pid = stale.name[len(prefix) : -len(".partial")] if stale.name.startswith(prefix) else ""
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether a process with this PID exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return Path(path)
