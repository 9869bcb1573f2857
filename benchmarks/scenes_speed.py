"""Rendering speed of ray-cast scene pairs: `python benchmarks/scenes_speed.py [CORPUS] [--pairs N]`.

CORPUS is a photo corpus built by `tiepoint-lab data photos` (default data/photos; its train split is used).
Prints the hardware, then pairs per second at 320x240 (`size=(240, 320)`, default options, no appearance
changes) in one process on one thread, and through a torch DataLoader with two worker processes (batch size
8, timed from its start). Photos are loaded once first (texture pyramids cached, as in training; the workers
inherit the cache).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import cv2
import torch

from tiepoint_lab.data.photos import list_photos
from tiepoint_lab.data.scenes import ScenePairs

SIZE = (240, 320)


def _single_thread(_: int = 0) -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def single_process(pairs: ScenePairs, count: int) -> float:
    """Pairs per second reading items ``0 .. count - 1`` in this process."""
    pairs[count]  # warm up (imports, noise texture)
    start = time.perf_counter()
    for index in range(count):
        pairs[index]
    return count / (time.perf_counter() - start)


def data_loader(pairs: ScenePairs, count: int, workers: int, batch_size: int = 8) -> float:
    """Pairs per second through a DataLoader, timed from its start (worker start-up included)."""
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(pairs, range(count)),
        batch_size=batch_size,
        num_workers=workers,
        worker_init_fn=_single_thread,
    )
    start, seen = time.perf_counter(), 0
    for batch in loader:
        seen += len(batch["index"])
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", default="data/photos")
    parser.add_argument("--pairs", type=int, default=200, help="pairs timed per measurement")
    args = parser.parse_args()
    _single_thread()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"hardware: {_cpu_name()}, {os.cpu_count()} CPUs ({cpus} usable)")
    print(f"python {platform.python_version()}, torch {torch.__version__}, opencv {cv2.__version__}")
    photos = list_photos(args.corpus, split="train")
    pairs = ScenePairs(photos, size=SIZE, seed=0, length=args.pairs + 64)
    start = time.perf_counter()
    for index in range(len(photos)):
        pairs.texture(index)
    print(f"{len(photos)} photos loaded as texture pyramids in {time.perf_counter() - start:.1f} s")
    print(f"size {SIZE[1]}x{SIZE[0]}, {args.pairs} pairs per measurement:")
    print(f"  single process, 1 thread: {single_process(pairs, args.pairs):.1f} pairs/s")
    print(f"  DataLoader, 2 workers:    {data_loader(pairs, args.pairs, workers=2):.1f} pairs/s")


if __name__ == "__main__":
    main()
