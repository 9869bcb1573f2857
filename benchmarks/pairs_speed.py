"""Loading speed of training pairs on one CPU thread: `python benchmarks/pairs_speed.py [CORPUS]`.

CORPUS is a photo corpus built by `tiepoint-lab data photos` (default data/photos). Prints pairs per second at
256x256 with and without photometric changes (photos decoded once and cached, as in training), and with
every photo decoded afresh.
"""

import sys
import time

import cv2
import torch

from tiepoint_lab.data.homography import HomographyPairs
from tiepoint_lab.data.photos import list_photos


def pairs_per_second(pairs: HomographyPairs, count: int) -> float:
    start = time.perf_counter()
    for index in range(count):
        pairs[index]
    return count / (time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    photos = list_photos(sys.argv[1] if len(sys.argv) > 1 else "data/photos")
    for photometric in (True, False):
        pairs = HomographyPairs(photos, size=(256, 256), photometric=photometric, length=400)
        for index in range(len(photos)):
            pairs.photo(index)  # decode every photo once, as a training run does in its first epoch
        print(
            f"photometric={photometric}: {pairs_per_second(pairs, 400):.0f} pairs/s (cached photos, 1 thread)"
        )
    uncached = HomographyPairs(photos, size=(256, 256), cache=False, length=200)
    print(f"decoding every photo: {pairs_per_second(uncached, 200):.0f} pairs/s")


if __name__ == "__main__":
    main()
