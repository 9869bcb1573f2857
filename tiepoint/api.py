"""The public entry points: ``load_image``, ``extract``, ``match``, ``estimate``, ``methods``.

``tiepoint.match(image0, image1, method=...)`` returning :class:`~tiepoint.types.Matches` with
``keypoints0``, ``keypoints1`` and ``scores`` is the stable interface that outside evaluation scripts use.
"""

from __future__ import annotations

from typing import Any

from . import registry
from .geometry.estimate import estimate
from .io.image import ImageLike, load_image
from .registry import MethodInfo
from .types import Features, Matches

DEFAULT_METHOD = "clidd"
"""The method used when none is named: the preset ``clidd``, CLIDD S96 with mutual nearest neighbours on a
3-level keypoint pyramid, then the aligned second pass with the ratio test."""

RECONSTRUCTION_METHOD = "sift+glue"
"""The default of the feature-file pipelines (``tiepoint extract``, ``match-pairs``, ``reconstruct``): SIFT
matched by Glue, the context matcher trained here. Matching every pair of a collection needs a matcher that
rejects pairs that do not overlap, which Glue and the ratio test do and the mutual nearest neighbours of
``clidd`` do not; Glue links more views of sparse rings than the ratio test (``sift``, about 3x faster)."""

__all__ = ["DEFAULT_METHOD", "RECONSTRUCTION_METHOD", "estimate", "extract", "load_image", "match", "methods"]


def extract(
    image: ImageLike, method: str = DEFAULT_METHOD, max_keypoints: int | None = None, **options: Any
) -> Features:
    """Detect and describe keypoints in one image.

    Args:
        image: a path, a ``(H, W[, C])`` NumPy array (uint8, uint16 or float in [0, 1]) or a
            ``([1, ]C, H, W)`` torch tensor.
        method: an extractor name (``tiepoint.registry.extractors()``), or a method name whose extractor
            part is used (``"sift+ratio"`` -> ``"sift"``, a preset with its extractor options).
        max_keypoints: keep at most this many keypoints (the extractor's default when ``None``).
        **options: further options of the extractor (e.g. ``resize=1024``, ``scales=(1, 0.5)``), also spelt
            ``"extractor.resize"`` or ``extractor={"resize": 1024}``.

    Returns:
        :class:`Features`: ``keypoints`` ``(N, 2)`` in pixels of ``image``, ``scores`` ``(N,)``,
        ``descriptors`` ``(N, D)``.

    Example:
        >>> features = tiepoint.extract("a.jpg", method="sift", max_keypoints=1024)  # doctest: +SKIP
        >>> features.keypoints.shape  # doctest: +SKIP
        (1024, 2)
    """
    extractor_name, _ = registry.split_method_name(method)
    options = registry.part_options(method, "extractor", options)
    if max_keypoints is not None:
        options["max_keypoints"] = max_keypoints
    return registry.get_extractor(extractor_name, **options).extract(image)


def match(image0: ImageLike, image1: ImageLike, method: str = DEFAULT_METHOD, **options: Any) -> Matches:
    """Find tie points between two images.

    Args:
        image0, image1: paths, NumPy arrays or torch tensors (see :func:`extract`); sizes may differ.
        method: a registered method name, see :func:`methods` (e.g. ``"sift+ratio"``, ``"orb+mnn"``).
        **options: options of the method's parts (:func:`tiepoint.registry.build_method`): by part, as a
            mapping (``extractor={"threshold": 0.2}``, ``matcher={"ratio": 0.9}``) or a dotted name
            (``**{"extractor.threshold": 0.2}``), or by a bare name that one part declares
            (``max_keypoints=4096``, ``ratio=0.9``). The view search (``search={...}``) applies to any method:
            ``rotations`` (e.g. ``(0, 90, 180, 270)``: match image 1 at each right-angle turn) and ``zooms``
            (e.g. ``(1, 0.5, 2)``: match with image 1 zoomed out or in by up to 2×); the view with the most
            homography inliers is kept, or with ``accept=0.5`` the first view whose inliers are half its
            matches; ``align=True`` then matches once more with image 1 warped onto image 0 by that view's
            homography (:mod:`tiepoint.matchers.search`).

    Returns:
        :class:`Matches` with ``keypoints0`` and ``keypoints1`` ``(M, 2)`` in pixels of each original image
        and ``scores`` ``(M,)``. A pair without correspondences gives ``M = 0``, not an error. A view search
        says in ``info`` which view it kept.

    Example:
        >>> m = tiepoint.match("left.png", "right.png", method="sift+ratio")  # doctest: +SKIP
        >>> m.keypoints0.shape, m.keypoints1.shape, m.scores.shape  # doctest: +SKIP
        ((812, 2), (812, 2), (812,))
    """
    return registry.get_method(method, **options).match(image0, image1)


def methods() -> list[MethodInfo]:
    """The registered methods, each with its kind (``"sparse"`` or ``"dense"``) and a one-line summary."""
    return registry.methods()
