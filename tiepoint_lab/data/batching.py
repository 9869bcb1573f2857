"""Batches of stream pairs whatever their ground truth, and point correspondences over such a batch.

Items of a stream (:mod:`tiepoint_lab.data.mix`) hold different keys by source: a homography ``H_0to1``, or
the depths, intrinsics and pose of a rendered scene. :func:`collate_pairs` stacks what every item of a batch
has (the images, and the ground truth too when all items share its kind) and keeps each item's ground truth
in ``batch["truth"]``; :func:`correspond_batch` and :func:`correspond_rows` map points of image 0 to image 1
over the batch (batched when the kind is shared, item by item otherwise), :func:`jacobian_batch` gives the
local Jacobians of that mapping, and :func:`reverse_pair` turns a pair or a batch around (image 1 -> 0).

Example:
    >>> stream = make_stream("mix", photos)  # doctest: +SKIP
    >>> loader = DataLoader(stream, batch_size=4, collate_fn=collate_pairs)  # doctest: +SKIP
    >>> batch = next(iter(loader)); points1, visible = correspond_batch(batch, points0)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from tiepoint_lab.data.homography import warp_points
from tiepoint_lab.data.mix import correspond, inside_image

__all__ = [
    "SCENE_KEYS",
    "TRUTH_KEYS",
    "collate_pairs",
    "correspond_batch",
    "correspond_rows",
    "homography_jacobian",
    "invert_pose",
    "jacobian_batch",
    "pair_truth",
    "reverse_pair",
]

SCENE_KEYS = ("depth0", "depth1", "K0", "K1", "T_0to1")
"""The ground truth of a scene pair."""
TRUTH_KEYS = ("H_0to1", *SCENE_KEYS)
"""Every key of ground truth a pair may hold."""
_SWAPPED = {"image0", "image1", "clean1", "valid1", "truth", *TRUTH_KEYS}
"""Keys :func:`reverse_pair` replaces or drops (``clean1`` and ``valid1`` describe image 1 only)."""


def collate_pairs(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A batch of stream items, whatever their sources: a ``collate_fn`` of a DataLoader.

    The keys every item has with values of one kind (tensors of one shape, numbers, strings) are batched as
    torch's default collate does; keys only some items have (``valid1``, ``clean1``, ``kind``...) are left
    out. ``truth`` is the list of each item's ground truth (:data:`TRUTH_KEYS` it holds). A batch of
    homography pairs thus also holds ``H_0to1`` ``(B, 3, 3)``, one of scene pairs ``depth0`` ... ``T_0to1``:
    the batched fast paths of :func:`correspond_batch`.
    """
    if not items:
        raise ValueError("collate_pairs needs at least one item")
    shared = [key for key in items[0] if all(key in item for item in items[1:]) and _uniform(items, key)]
    batch = torch.utils.data.default_collate([{key: item[key] for key in shared} for item in items])
    batch["truth"] = [{key: item[key] for key in TRUTH_KEYS if key in item} for item in items]
    return batch


def _uniform(items: Sequence[Mapping[str, Any]], key: str) -> bool:
    first = items[0][key]
    if isinstance(first, Tensor):
        return all(isinstance(item[key], Tensor) and item[key].shape == first.shape for item in items)
    if isinstance(first, (bool, int, float, str)):
        return all(type(item[key]) is type(first) for item in items)
    return False


def _batched_homographies(batch: Mapping[str, Any]) -> bool:
    return isinstance(batch.get("H_0to1"), Tensor) and batch["H_0to1"].dim() == 3


def _batched_scenes(batch: Mapping[str, Any]) -> bool:
    return all(isinstance(batch.get(key), Tensor) for key in SCENE_KEYS) and batch["K0"].dim() == 3


def pair_truth(batch: Mapping[str, Any], index: int, device: torch.device | None = None) -> dict[str, Any]:
    """Pair ``index`` of a batch as :func:`~tiepoint_lab.data.mix.correspond` takes it: its ``image1`` and
    its ground truth (from ``truth``, else from the batched keys), on ``device`` (default: that of
    ``image1``)."""
    image1 = batch["image1"][index]
    device = image1.device if device is None else device
    if "truth" in batch:
        truth = batch["truth"][index]
    else:
        truth = {key: batch[key][index] for key in TRUTH_KEYS if isinstance(batch.get(key), Tensor)}
    return {"image1": image1, **{key: value.to(device) for key, value in truth.items()}}


def correspond_rows(batch: Mapping[str, Any], rows: Tensor, points0: Tensor) -> tuple[Tensor, Tensor]:
    """Where points of image 0 of given pairs of a batch lie in image 1, and whether they are visible there.

    Args:
        batch: a batch of :func:`collate_pairs` (or torch's default collate of homography pairs).
        rows: ``(M,)`` the pair of each row of points.
        points0: ``(M, P, 2)`` pixel coordinates in image 0 of pair ``rows[m]``.

    Returns:
        ``(M, P, 2)`` float32 positions in image 1 and ``(M, P)`` bool visibility, as
        :func:`~tiepoint_lab.data.mix.correspond` gives them for each pair.
    """
    points0 = points0.float()
    height, width = batch["image1"].shape[-2:]
    if _batched_homographies(batch):
        H = batch["H_0to1"].to(points0.device).float()
        points1 = warp_points(points0, H[rows])
        return points1, inside_image(points1, height, width)
    points1 = torch.zeros_like(points0)
    visible = torch.zeros(points0.shape[:-1], dtype=torch.bool, device=points0.device)
    for index in rows.unique().tolist():
        chosen = rows == index
        mapped, seen = correspond(pair_truth(batch, index, points0.device), points0[chosen].reshape(-1, 2))
        points1[chosen] = mapped.reshape(-1, *points0.shape[1:]).to(points1.dtype)
        visible[chosen] = seen.reshape(-1, points0.shape[1])
    return points1, visible


def correspond_batch(batch: Mapping[str, Any], points0: Tensor) -> tuple[Tensor, Tensor]:
    """Where points of image 0 of each pair of a batch lie in image 1, and whether they are visible there.

    Args:
        batch: a batch of :func:`collate_pairs` (or torch's default collate of homography pairs).
        points0: ``(B, N, 2)`` pixel coordinates in image 0 of each pair.

    Returns:
        ``(B, N, 2)`` float32 positions in image 1 and ``(B, N)`` bool, as
        :func:`~tiepoint_lab.data.mix.correspond` gives them pair by pair (batched when all pairs are
        homographies, or all scenes).
    """
    if not _batched_homographies(batch) and _batched_scenes(batch):
        from tiepoint_lab.data.scenes import project_with_depth

        device = points0.device
        points1, visible = project_with_depth(points0.float(), *(batch[key].to(device) for key in SCENE_KEYS))
        return points1.float(), visible
    return correspond_rows(batch, torch.arange(len(points0), device=points0.device), points0)


def homography_jacobian(points: Tensor, H: Tensor) -> Tensor:
    """``(B, N, 2, 2)`` Jacobians of ``x -> H(x)`` at ``(B, N, 2)`` points for ``(B, 3, 3)`` homographies."""
    u = torch.einsum("bij,bnj->bni", H[:, :, :2], points) + H[:, None, :, 2]  # (B, N, 3)
    w = u[..., 2:3, None]  # (B, N, 1, 1)
    outer = u[..., :2, None] * H[:, None, None, 2, :2]  # (B, N, 2, 2)
    return (H[:, None, :2, :2] * w - outer) / (w * w)


def jacobian_batch(
    batch: Mapping[str, Any], points0: Tensor, step: float = 1.0, tolerance: float = 0.5
) -> tuple[Tensor, Tensor]:
    """Local Jacobians of the map from image 0 to image 1 at points of each pair of a batch.

    Exact for a homography. For a scene it is the central difference of :func:`correspond_batch` over
    ``step`` pixels, which holds on a smooth surface only: a Jacobian is ``reliable`` where the point and its
    four neighbours are visible and the forward and backward differences agree within ``tolerance`` pixels
    (not across a depth edge or a crease).

    Args:
        batch: a batch of :func:`collate_pairs`.
        points0: ``(B, N, 2)`` pixel coordinates in image 0.

    Returns:
        ``(B, N, 2, 2)`` float32 Jacobians and ``(B, N)`` bool ``reliable``.
    """
    points0 = points0.float()
    if _batched_homographies(batch):
        H = batch["H_0to1"].to(points0.device).float()
        return homography_jacobian(points0, H), torch.ones_like(points0[..., 0], dtype=torch.bool)
    size, count = points0.shape[0], points0.shape[1]
    offsets = torch.tensor(
        [[0.0, 0.0], [step, 0.0], [-step, 0.0], [0.0, step], [0.0, -step]], device=points0.device
    )
    mapped, visible = correspond_batch(batch, (points0[:, None] + offsets[:, None]).reshape(size, -1, 2))
    mapped, visible = mapped.reshape(size, 5, count, 2), visible.reshape(size, 5, count)
    centre, right, left, down, up = mapped.unbind(1)
    jacobian = torch.stack([right - left, down - up], -1) / (2 * step)  # columns: d/dx, d/dy
    smooth = ((right - centre) - (centre - left)).norm(dim=-1) <= tolerance
    smooth &= ((down - centre) - (centre - up)).norm(dim=-1) <= tolerance
    reliable = visible.all(1) & smooth
    for index in range(size):  # the homographies of a mixed batch: exact
        truth = pair_truth(batch, index, points0.device)
        if "H_0to1" in truth:
            H = truth["H_0to1"][None].float()
            jacobian[index] = homography_jacobian(points0[index : index + 1], H)[0]
            reliable[index] = True
    return jacobian, reliable


def invert_pose(T: Tensor) -> Tensor:
    """The inverse of ``(..., 4, 4)`` rigid transforms (rotation and translation)."""
    rotation, translation = T[..., :3, :3], T[..., :3, 3:]
    inverse = torch.zeros_like(T)
    inverse[..., :3, :3] = rotation.transpose(-1, -2)
    inverse[..., :3, 3:] = -rotation.transpose(-1, -2) @ translation
    inverse[..., 3, 3] = 1
    return inverse


def _reverse_truth(truth: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(truth.get("H_0to1"), Tensor):
        return {"H_0to1": torch.linalg.inv(truth["H_0to1"])}
    if all(isinstance(truth.get(key), Tensor) for key in SCENE_KEYS):
        return {
            "depth0": truth["depth1"],
            "depth1": truth["depth0"],
            "K0": truth["K1"],
            "K1": truth["K0"],
            "T_0to1": invert_pose(truth["T_0to1"]),
        }
    return {}


def reverse_pair(pair: Mapping[str, Any]) -> dict[str, Any]:
    """The pair (an item, or a batch of :func:`collate_pairs` or of torch's default collate) seen from image
    1: the images swapped, a homography inverted, a scene's depths and intrinsics swapped and its pose
    inverted. ``clean1`` and ``valid1`` are dropped; other keys (``index``, ``source``...) kept."""
    reversed_ = {key: value for key, value in pair.items() if key not in _SWAPPED}
    reversed_["image0"], reversed_["image1"] = pair["image1"], pair["image0"]
    reversed_.update(_reverse_truth(pair))
    if "truth" in pair:
        reversed_["truth"] = [_reverse_truth(truth) for truth in pair["truth"]]
    return reversed_
