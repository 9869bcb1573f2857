"""A mixed stream of training pairs: photo homographies, relit photo homographies and rendered 3D scenes.

Every learned model here first trained on :class:`~tiepoint_lab.data.homography.HomographyPairs` alone: no
parallax, no occlusion, mild photometric jitter. :class:`MixedPairs` draws each item from one of several
sources with fixed weights, so a trainer sees planar pairs, planar pairs under a strong appearance change
(:mod:`tiepoint_lab.data.appearance` applied to image 1) and scene pairs with real 3D structure
(:mod:`tiepoint_lab.data.scenes`). A stream is described by a JSON-able *spec* (:data:`STREAMS`), which each
training record stores, so the data of a run can be rebuilt and compared.

Ground truth differs by source (a homography ``H_0to1``, or depths, intrinsics and ``T_0to1``);
:func:`correspond` maps points of image 0 to image 1 for either, saying which are visible there.

Example:
    >>> stream = make_stream("mix", list_photos("data/photos"), size=(256, 256), seed=0)  # doctest: +SKIP
    >>> item = stream[3]; points1, visible = correspond(item, torch.rand(100, 2) * 255)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tiepoint.errors import OptionError
from tiepoint_lab.data.homography import HomographyPairs, warp_points

__all__ = ["STREAMS", "MixedPairs", "TwoLooks", "correspond", "inside_image", "make_stream", "stream_spec"]

STREAMS: dict[str, dict[str, dict[str, Any]]] = {
    "homography": {"homography": {"weight": 1.0}},
    "mix": {
        "homography": {"weight": 0.35},
        "relit": {"weight": 0.15},
        "scenes": {"weight": 0.5},
    },
    "scenes": {"scenes": {"weight": 1.0}},
}
"""Named streams: source -> its weight and options. ``homography`` is :class:`HomographyPairs` with its
photometric jitter; ``relit`` the same pairs with ``Appearance.strong()``
(:class:`~tiepoint_lab.data.appearance.Appearance`) on image 1 instead; ``scenes``
:class:`~tiepoint_lab.data.scenes.ScenePairs` with a mild look on view 0 and the default appearance mix on
view 1. Options of every source: ``rotation_deg``; of ``homography`` and ``relit`` also the homographies'
``scale`` (``[low, high]``), ``perspective`` and ``translation`` (:class:`HomographyPairs`' defaults where
absent)."""


def stream_spec(stream: str | Mapping[str, Mapping[str, Any]], rotation_deg: float = 180.0) -> dict:
    """The spec of a stream given by name or as a spec; ``rotation_deg`` limits the homographies' in-plane
    rotation (the scenes roll camera 1 by the same limit)."""
    if isinstance(stream, str):
        if stream not in STREAMS:
            raise OptionError(f"unknown stream {stream!r}; streams: {', '.join(STREAMS)}")
        spec = copy.deepcopy(STREAMS[stream])
    else:
        spec = {name: dict(options) for name, options in stream.items()}
    unknown = set(spec) - {"homography", "relit", "scenes"}
    if unknown or not spec:
        raise OptionError(f"stream sources must be among homography, relit, scenes; got {sorted(spec)}")
    for name, options in spec.items():
        weight = options.get("weight", 0)
        if not isinstance(weight, (int, float)) or weight <= 0:
            raise OptionError(f"stream source {name!r}: weight must be a positive number, got {weight!r}")
        if rotation_deg != 180.0:
            options.setdefault("rotation_deg", rotation_deg)
    return spec


def _source(
    name: str,
    options: Mapping[str, Any],
    photos: Sequence[str | os.PathLike],
    size: tuple[int, int],
    seed: int,
) -> torch.utils.data.Dataset:
    rotation = float(options.get("rotation_deg", 180.0))
    # the homographies' other ranges, where the spec sets them (HomographyPairs' defaults otherwise)
    shape = {key: options[key] for key in ("perspective", "translation") if key in options}
    if "scale" in options:
        shape["scale"] = tuple(options["scale"])
    if name == "homography":
        return HomographyPairs(photos, size=size, seed=seed, rotation_deg=rotation, **shape)
    from tiepoint_lab.data.appearance import Appearance

    if name == "relit":
        return HomographyPairs(
            photos, size=size, seed=seed, rotation_deg=rotation, appearance1=Appearance.strong(), **shape
        )
    from tiepoint_lab.data.scenes import ScenePairs

    return ScenePairs(
        photos, size=size, seed=seed, roll_deg=rotation, appearance=TwoLooks(Appearance.mild(), Appearance())
    )


class TwoLooks:
    """An appearance callable for :class:`~tiepoint_lab.data.scenes.ScenePairs`: one model for view 0, another
    for view 1."""

    def __init__(self, first: Any, second: Any) -> None:
        self.first, self.second = first, second

    def __call__(self, image, rng, normals=None, valid=None, view: int = 0):
        model = self.first if view == 0 else self.second
        return model(image, rng, normals=normals, valid=valid, view=view)


class MixedPairs(torch.utils.data.Dataset):
    """Items drawn from weighted sources; item ``i`` of epoch ``e`` depends only on ``(seed, e, i)``.

    Args:
        sources: name -> a dataset with ``set_epoch`` whose items hold ``image0``, ``image1`` and ground truth
            (``H_0to1``, or ``depth0``, ``depth1``, ``K0``, ``K1``, ``T_0to1``).
        weights: name -> its share of the items.
        seed: chooses the source of each item.
        length: items per epoch.

    Each item is its source's item plus ``source`` (the name).
    """

    def __init__(
        self,
        sources: Mapping[str, torch.utils.data.Dataset],
        weights: Mapping[str, float],
        seed: int = 0,
        length: int = 1000,
    ) -> None:
        if set(sources) != set(weights) or not sources:
            raise OptionError("sources and weights must name the same, non-empty set of sources")
        self.names = list(sources)
        self.sources = dict(sources)
        shares = np.array([float(weights[name]) for name in self.names])
        if (shares <= 0).any():
            raise OptionError(f"weights must be positive, got {dict(weights)}")
        self.cumulative = np.cumsum(shares / shares.sum())
        self.seed, self.length, self.epoch = seed, int(length), 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Use the items of this epoch (passed on to every source)."""
        self.epoch = int(epoch)
        for source in self.sources.values():
            source.set_epoch(epoch)

    def source_of(self, index: int) -> str:
        """The name of the source item ``index`` of this epoch comes from."""
        draw = np.random.default_rng([self.seed, self.epoch, index, 0x5EED]).random()
        return self.names[
            int(np.searchsorted(self.cumulative, draw, side="right").clip(max=len(self.names) - 1))
        ]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} pairs")
        name = self.source_of(index)
        source = self.sources[name]
        item = source[index % len(source)]
        item["source"] = name
        return item


def make_stream(
    stream: str | Mapping[str, Mapping[str, Any]],
    photos: Sequence[str | os.PathLike],
    size: tuple[int, int] = (256, 256),
    seed: int = 0,
    length: int | None = None,
    rotation_deg: float = 180.0,
) -> MixedPairs:
    """The stream ``stream`` (a name of :data:`STREAMS` or a spec) on ``photos``; ``size`` is ``(H, W)``.

    ``length`` defaults to one item per photo, as :class:`HomographyPairs` does."""
    spec = stream_spec(stream, rotation_deg)
    length = len(photos) if length is None else int(length)
    sources = {name: _source(name, options, photos, size, seed) for name, options in spec.items()}
    for source in sources.values():
        source.length = max(getattr(source, "length", length), length)
    return MixedPairs(sources, {name: options["weight"] for name, options in spec.items()}, seed, length)


def inside_image(points: Tensor, height: int, width: int) -> Tensor:
    """``(..., 2)`` points inside ``[-0.5, W - 0.5] x [-0.5, H - 0.5]`` and finite: ``(...)`` bool."""
    x, y = points[..., 0], points[..., 1]
    inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
    return inside & torch.isfinite(points).all(-1)


def correspond(item: Mapping[str, Any], points0: Tensor) -> tuple[Tensor, Tensor]:
    """Where points of image 0 of a pair lie in image 1, and whether they are visible there.

    Args:
        item: a pair with ``image1`` and either ``H_0to1`` or ``depth0``, ``depth1``, ``K0``, ``K1``,
            ``T_0to1`` (unbatched).
        points0: ``(N, 2)`` pixel coordinates in image 0.

    Returns:
        ``(N, 2)`` float32 positions in image 1 and ``(N,)`` bool: inside image 1 and, for scenes, not
        occluded (points of image 0 that show no surface are not visible).
    """
    points0 = points0.float()
    height, width = item["image1"].shape[-2:]
    if "H_0to1" in item:
        points1 = warp_points(points0, item["H_0to1"].float())
        return points1, inside_image(points1, height, width)
    if "depth0" in item:
        from tiepoint_lab.data.scenes import project_with_depth

        points1, visible = project_with_depth(
            points0, item["depth0"], item["depth1"], item["K0"], item["K1"], item["T_0to1"]
        )
        return points1.float(), visible
    raise OptionError("the pair holds no ground truth: expected H_0to1, or depth0/depth1/K0/K1/T_0to1")
