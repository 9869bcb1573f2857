"""tiepoint: tie points between images, turned into geometry.

The public face::

    import tiepoint
    image = tiepoint.load_image("a.jpg")                      # (H, W, 3) uint8 RGB
    features = tiepoint.extract(image, method="sift")         # Features: keypoints (N, 2), descriptors (N, D)
    matches = tiepoint.match("a.jpg", "b.jpg", method="sift") # Matches: keypoints0/1 (M, 2), scores (M,)
    geometry = tiepoint.estimate(matches, model="homography") # Geometry: matrix (3, 3), inliers (M,)
    tiepoint.methods()                                        # every registered method, one line each

Conventions for coordinates, sizes and poses are documented in :mod:`tiepoint.types`.
"""

from .api import DEFAULT_METHOD, RECONSTRUCTION_METHOD, estimate, extract, load_image, match, methods
from .errors import (
    EstimationError,
    ImageError,
    NotEnoughMatchesError,
    OptionError,
    TiepointError,
    UnknownMethodError,
)
from .types import Camera, Features, Geometry, Matches

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_METHOD",
    "RECONSTRUCTION_METHOD",
    "Camera",
    "EstimationError",
    "Features",
    "Geometry",
    "ImageError",
    "Matches",
    "NotEnoughMatchesError",
    "OptionError",
    "TiepointError",
    "UnknownMethodError",
    "estimate",
    "extract",
    "load_image",
    "match",
    "methods",
]
