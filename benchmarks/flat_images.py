"""Matches found on flat images, with the flat-patch gate (``min_contrast``, the default) and without it (0).

    python benchmarks/flat_images.py [METHOD ...]

Each pair is an image matched with itself, 480x640: black, mid-grey, grey with sensor-like noise (standard
deviation 2 grey levels), and "half" (the left half a blurred random texture, the right half mid-grey). On the
first two nothing can be localised; on the noisy one every pixel can (the images are the same); on "half" only
the textured half. The table gives the number of matches, and for "half" how many lie in the grey half.
"""

import argparse
import warnings

import cv2
import numpy as np

import tiepoint

DEFAULT_METHODS = ["sift", "clidd", "clidd-t64", "raco-clidd-t64", "eloftr", "eloftr-opt"]


def images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    grey = np.full((480, 640), 128, np.uint8)
    noisy = np.clip(128 + rng.normal(0, 2, grey.shape), 0, 255).astype(np.uint8)
    texture = cv2.GaussianBlur((rng.random(grey.shape) * 255).astype(np.uint8), (0, 0), 1.5)
    half = grey.copy()
    half[:, :320] = texture[:, :320]
    return {"black": np.zeros_like(grey), "grey": grey, "noise 2": noisy, "half": half}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("methods", nargs="*", default=DEFAULT_METHODS)
    args = parser.parse_args()
    pairs = images()
    print(
        f"{'method':<16} {'min_contrast':<13} " + " ".join(f"{name:>9}" for name in pairs) + "  half: in grey"
    )
    for method in args.methods:
        for options in ({}, {"min_contrast": 0}):
            if method == "sift" and options:
                continue  # SIFT has its own contrast threshold
            counts, in_grey = [], 0
            for name, image in pairs.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    matches = tiepoint.match(image, image, method=method, **options)
                counts.append(len(matches))
                if name == "half":
                    in_grey = int((matches.keypoints0[:, 0] >= 320 + 4).sum())
            label = "default" if not options else "0"
            print(f"{method:<16} {label:<13} " + " ".join(f"{c:>9}" for c in counts) + f"  {in_grey:>13}")


if __name__ == "__main__":
    main()
