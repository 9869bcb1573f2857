"""Where the work of a pipeline stage runs: in this process (``local``) or on Ray workers (``ray``).

A stage cuts its work into **chunks** (a few images to extract, a few pairs to match or verify), hands each
chunk to a module-level worker function through :meth:`Backend.run`, and writes the results itself as they
come back. Workers only compute and return NumPy arrays; they never open an output file. So:

* only the driver (the process that called the stage) writes the HDF5 files, through
  :func:`tiepoint.io.h5.open_for_update`, one chunk at a time, flushing after each;
* a chunk whose worker dies is retried by Ray (``max_retries``); if it still fails, its items are simply
  missing from the output, the stage reports them, and a rerun computes only what is missing;
* if the driver itself dies, everything written so far is in the ``.partial`` file and a rerun resumes.

Both backends give the same results: a worker function builds its extractor or matcher from the method name
and options it is given, exactly as the local backend does.

Example:
    >>> backend = get_backend("ray", address="auto")  # doctest: +SKIP
    >>> extract_features("images/", "features.h5", backend=backend)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from ..errors import MissingDependencyError, OptionError

logger = logging.getLogger("tiepoint")

T = TypeVar("T")

BACKENDS = ("local", "ray")


@dataclass
class ChunkResult:
    """What came back for one chunk: its index in the submitted order and either a value or an error.

    Attributes:
        index: position of the chunk among those given to :meth:`Backend.run`.
        value: the worker function's return value, or ``None`` if it failed.
        error: why the chunk failed (an exception message), or ``None``.
    """

    index: int
    value: Any = None
    error: str | None = None


class Backend:
    """Runs worker functions on chunks of work. Subclasses: :class:`LocalBackend`, :class:`RayBackend`."""

    name = ""

    @property
    def workers(self) -> int:
        """How many chunks may run at the same time."""
        return 1

    def put(self, value: Any) -> Any:
        """Make ``value`` (e.g. an image's features) available to workers; pass the handle to :meth:`run`.

        Handles passed as top-level arguments of a chunk arrive at the worker as the value itself.
        """
        return value

    def run(self, function: Callable[..., T], chunks: Iterable[tuple]) -> Iterator[ChunkResult]:
        """Call ``function(*arguments)`` for each ``arguments`` tuple in ``chunks``.

        Results are yielded as chunks finish (not necessarily in order). ``chunks`` is consumed lazily, so
        that only the chunks in flight hold their inputs. An exception raised by ``function``, or a worker
        that died, becomes a :class:`ChunkResult` with ``error`` set: the other chunks go on.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release what the backend started (a local Ray instance); connected clusters are left running."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalBackend(Backend):
    """Runs every chunk in this process, one after the other."""

    name = "local"

    def run(self, function: Callable[..., T], chunks: Iterable[tuple]) -> Iterator[ChunkResult]:
        for index, arguments in enumerate(chunks):
            try:
                value = function(*arguments)
            except (KeyboardInterrupt, SystemExit, MemoryError):
                raise
            except Exception as error:  # noqa: BLE001 - reported per chunk, like a dead Ray worker
                logger.warning("chunk %d failed: %s: %s", index, type(error).__name__, error)
                yield ChunkResult(index, error=f"{type(error).__name__}: {error}")
                continue
            yield ChunkResult(index, value)


class RayBackend(Backend):
    """Runs chunks as Ray tasks on a local Ray instance or an existing cluster.

    Args:
        address: a Ray cluster address (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); ``None``
            starts a local instance with ``num_workers`` CPUs (stopped again by :meth:`close`).
        num_workers: CPUs of the local instance (default: all). Ignored when connecting to a cluster.
        max_in_flight: chunks submitted but not yet collected (default: twice the cluster's CPUs), which
            bounds the memory the inputs of pending chunks take in the object store.
        max_retries: how often Ray reruns a chunk whose worker died.

    Workers import tiepoint and read the images from the paths they are given, so on a cluster every node
    needs tiepoint installed (the same version) and the images on a shared file system at the same path.

    Raises:
        MissingDependencyError: Ray is not installed (``pip install 'tiepoint[ray]'``).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        num_workers: int | None = None,
        max_in_flight: int | None = None,
        max_retries: int = 2,
    ) -> None:
        ray = _import_ray()
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            if address is None:
                ray.init(
                    num_cpus=num_workers,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
                self._started = True
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self._workers = max(1, cpus)
        self.max_in_flight = max_in_flight or 2 * self._workers
        self.max_retries = max_retries
        self._remote: dict[Callable, Any] = {}

    @property
    def workers(self) -> int:
        return self._workers

    def put(self, value: Any) -> Any:
        return self._ray.put(value)

    def run(self, function: Callable[..., T], chunks: Iterable[tuple]) -> Iterator[ChunkResult]:
        ray = self._ray
        remote = self._remote.get(function)
        if remote is None:
            remote = self._remote[function] = ray.remote(num_cpus=1, max_retries=self.max_retries)(function)
        pending: dict[Any, int] = {}
        source = enumerate(chunks)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < self.max_in_flight:
                item = next(source, None)
                if item is None:
                    exhausted = True
                    break
                index, arguments = item
                pending[remote.remote(*arguments)] = index
            if not pending:
                break
            done, _ = ray.wait(list(pending), num_returns=1)
            for reference in done:
                index = pending.pop(reference)
                try:
                    yield ChunkResult(index, ray.get(reference))
                except Exception as error:  # noqa: BLE001 - the task raised, or its worker died
                    lines = str(error).strip().splitlines()
                    message = f"{type(error).__name__}: {lines[-1] if lines else ''}"
                    logger.warning("chunk %d failed on Ray: %s", index, message)
                    yield ChunkResult(index, error=message)

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(
            "the ray backend needs Ray: pip install 'tiepoint[ray]' (or pip install ray)"
        ) from None
    return ray


def get_backend(
    backend: str | Backend | None = None, address: str | None = None, num_workers: int | None = None
) -> Backend:
    """A backend by name: ``"local"`` (default) or ``"ray"``; a :class:`Backend` is returned as it is.

    Raises:
        OptionError: an unknown backend name, or ``address``/``num_workers`` given for the local backend.
        MissingDependencyError: ``"ray"`` without Ray installed.
    """
    if isinstance(backend, Backend):
        return backend
    name = backend or "local"
    if name == "local":
        if address is not None:
            raise OptionError("address is only used by the ray backend (pass backend='ray')")
        return LocalBackend()
    if name == "ray":
        return RayBackend(address=address, num_workers=num_workers)
    raise OptionError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)}")


def chunked(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` cut into consecutive lists of at most ``size`` (``size >= 1``)."""
    if size < 1:
        raise OptionError(f"chunk_size must be at least 1, got {size}")
    return [list(items[start : start + size]) for start in range(0, len(items), size)]
