"""Teacher targets computed once and stored, so that training on a CPU does not run the teacher every step.

ALIKED-N32 builds a full-resolution 128-channel feature map: on this project's 2-core CPU it costs about
half a second per 256x256 image, far more than a step of a small student. So the teacher runs once over a
fixed list of training pairs (items of a stream of :mod:`tiepoint_lab.data.mix`: photo homographies, relit
ones, 3D scenes; reproducible from their seed, epoch and index, so the images themselves are not stored), and
:class:`TeacherTargetPairs` serves each pair's images together with what the teacher said about them.

On-disk layout (a folder; resumable, each shard written atomically)::

    TARGETS/meta.json            photos, image size, seed, points per pair, teacher, pairs per shard, and the
                                 stream (absent: homographies only, as folders made before streams)
    TARGETS/check.json           a coarse thumbnail of the first pair: the images are re-rendered from their
                                 seeds, so a changed generator would silently pair new images with old
                                 targets; a mismatch is an error instead
    TARGETS/shard_00000.pt       for the pairs [0, S): a dict of tensors
        keypoints   (S, 2, K, 2) float32  the teacher's keypoints in image 0 and image 1 (padded)
        scores      (S, 2, K)    float32  their scores; 0 marks padding
        points      (S, 2, N, 2) float32  corresponding points in image 0 and image 1
        descriptors (S, 2, N, D) float16  the teacher's descriptors at those points
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tiepoint.errors import DatasetError
from tiepoint.io.files import atomic_path, write_json
from tiepoint_lab.data.mix import MixedPairs, correspond, make_stream, stream_spec

__all__ = ["TeacherTargetPairs", "build_teacher_targets", "correspondences", "targets_ready"]

BORDER = 8
"""Corresponding points keep this many pixels away from the image borders."""


def correspondences(
    seeds: list[Tensor],
    items: Sequence[dict[str, Any]],
    size: tuple[int, int],
    points: int,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Corresponding points of each pair: seed points of image 0 visible in image 1, then random ones.

    Args:
        seeds: per pair, ``(N_i, 2)`` candidate points of image 0 (e.g. the teacher's keypoints), best first.
        items: the pairs, with their ground truth (see :func:`~tiepoint_lab.data.mix.correspond`).
        size: ``(H, W)`` of both images.
        points: ``N``, points per pair.
        generator: for the random points.

    Returns:
        ``(B, N, 2)`` points of image 0 and ``(B, N, 2)`` their positions in image 1, all at least
        :data:`BORDER` pixels inside both images and, in scenes, not occluded.

    Raises:
        DatasetError: a pair shows too few common points (after 50 rounds of random candidates).
    """
    height, width = size
    low = torch.tensor([BORDER, BORDER], dtype=torch.float32)
    high = torch.tensor([width - 1 - BORDER, height - 1 - BORDER], dtype=torch.float32)
    chosen0, chosen1 = [], []
    for seed, item in zip(seeds, items, strict=True):
        pool = seed.float().cpu()
        kept0, kept1 = pool[:0], pool[:0]
        for _ in range(50):  # random fill; with a substantial overlap one or two rounds suffice
            mapped, visible = correspond(item, pool)
            ok = visible & _inside(pool, low, high) & _inside(mapped, low, high)
            kept0, kept1 = torch.cat([kept0, pool[ok]]), torch.cat([kept1, mapped[ok]])
            if len(kept0) >= points:
                break
            pool = low + torch.rand(4 * points, 2, generator=generator) * (high - low)
        else:
            raise DatasetError(f"pair {item.get('index')}: {len(kept0)} common points, fewer than {points}")
        chosen0.append(kept0[:points])
        chosen1.append(kept1[:points])
    return torch.stack(chosen0), torch.stack(chosen1)


def _inside(points: Tensor, low: Tensor, high: Tensor) -> Tensor:
    return ((points >= low) & (points <= high)).all(-1)


def _pad(rows: list[Tensor], length: int) -> Tensor:
    out = rows[0].new_zeros((len(rows), length, *rows[0].shape[1:]))
    for index, row in enumerate(rows):
        out[index, : min(length, len(row))] = row[:length]
    return out


def build_teacher_targets(
    photos: Sequence[str | Path],
    out: str | Path,
    teacher: Any,
    pairs: int,
    size: tuple[int, int] = (256, 256),
    seed: int = 0,
    points: int = 256,
    max_keypoints: int = 512,
    shard_size: int = 32,
    batch_size: int = 8,
    progress: Callable[[str], None] | None = print,
    rotation_deg: float = 180.0,
    stream: str | dict = "homography",
) -> Path:
    """Run the teacher over the first ``pairs`` training pairs and store its targets (resumable).

    Args:
        photos: the training photos (as given to :class:`HomographyPairs`).
        out: the targets folder.
        teacher: an ``AlikedTeacher`` (its network's ``dense``, ``detect`` and ``describe`` are used).
        pairs: how many pairs; pair ``i`` is item ``i % len(photos)`` of epoch ``i // len(photos)``.
        size: ``(H, W)`` of the images.
        points: corresponding points per pair.
        max_keypoints: teacher keypoints kept per image.
        rotation_deg: largest in-plane rotation of image 1, degrees (stored in ``meta.json`` when not 180).
        stream: the pairs: a name of :data:`~tiepoint_lab.data.mix.STREAMS` or a spec (stored in
            ``meta.json`` unless it is the homographies alone).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "photos": [str(p) for p in photos],
        "size": list(size),
        "seed": seed,
        "points": points,
        "max_keypoints": max_keypoints,
        "shard_size": shard_size,
        "teacher": type(teacher).__name__,
    }
    if rotation_deg != 180.0:  # folders made before the option existed hold +-180 degree pairs
        meta["rotation_deg"] = rotation_deg
    spec = stream_spec(stream, rotation_deg)
    if spec != stream_spec("homography", rotation_deg):  # folders made before streams hold homographies
        meta["stream"] = spec
    meta_path = out / "meta.json"
    if meta_path.is_file():
        previous = json.loads(meta_path.read_text())
        if {k: v for k, v in previous.items() if k != "pairs"} != meta:
            raise DatasetError(f"{out} holds targets made with other settings; choose another folder")
    write_json(meta_path, {**meta, "pairs": pairs})
    dataset = make_stream(spec, photos, size=size, seed=seed, rotation_deg=rotation_deg)
    check_pairs(out, dataset, write=not any(out.glob("shard_*.pt")))
    net = teacher.net
    for shard in range(-(-pairs // shard_size)):
        path = out / f"shard_{shard:05d}.pt"
        if path.is_file():
            continue
        indices = range(shard * shard_size, min(pairs, (shard + 1) * shard_size))
        parts: dict[str, list[Tensor]] = {"keypoints": [], "scores": [], "points": [], "descriptors": []}
        for start in range(0, len(indices), batch_size):
            items = [_item(dataset, i) for i in indices[start : start + batch_size]]
            # the teacher sees image 1 before an appearance change (clean1), the student after it
            images = torch.cat(
                [
                    torch.stack([it["image0"] for it in items]),
                    torch.stack([it.get("clean1", it["image1"]) for it in items]),
                ]
            )
            count = len(items)
            with torch.no_grad():
                features, score_map = net.dense(images.to(teacher.device))
                keypoints, scores = net.detect(
                    score_map, max_keypoints, teacher.detection_threshold, teacher.nms_radius
                )
                keypoints = [k.cpu() for k in keypoints]
                generator = torch.Generator().manual_seed(seed * 1_000_003 + indices[start])
                points0, points1 = correspondences(keypoints[:count], items, size, points, generator)
                described = net.describe(
                    features, [p.to(teacher.device) for p in torch.cat([points0, points1])]
                )
            described = torch.stack(described).cpu().half()
            parts["keypoints"].append(
                _pad(keypoints, max_keypoints).view(2, count, max_keypoints, 2).transpose(0, 1)
            )
            parts["scores"].append(
                _pad([s.cpu() for s in scores], max_keypoints).view(2, count, max_keypoints).transpose(0, 1)
            )
            parts["points"].append(torch.stack([points0, points1], 1))
            parts["descriptors"].append(described.view(2, count, points, -1).transpose(0, 1))
        with atomic_path(path) as temporary:
            torch.save({k: torch.cat(v).contiguous() for k, v in parts.items()}, temporary)
        if progress:
            progress(f"teacher targets: shard {shard + 1}/{-(-pairs // shard_size)} written")
    return out


def _shards_needed(folder: Path, pairs: int) -> tuple[int, int]:
    """(shards present, shards the first ``pairs`` pairs need) of a targets folder with a ``meta.json``."""
    shard_size = json.loads((folder / "meta.json").read_text())["shard_size"]
    return len(list(folder.glob("shard_*.pt"))), -(-pairs // shard_size)


def targets_ready(folder: str | Path, pairs: int) -> bool:
    """Whether ``folder`` holds the teacher targets of the first ``pairs`` pairs."""
    folder = Path(folder)
    if not (folder / "meta.json").is_file():
        return False
    present, needed = _shards_needed(folder, pairs)
    return present >= needed


CHECK_TOLERANCE = 0.02
"""Largest difference of a thumbnail value (images in [0, 1]) between the stored and the re-rendered pair."""


def _thumbnail(item: dict[str, Any]) -> list[float]:
    """Both images of a pair averaged over a 4x4 grid, grey, rounded: 32 numbers."""
    values = []
    for key in ("image0", "image1"):
        grey = item[key].float().mean(0, keepdim=True)[None]
        values += torch.nn.functional.adaptive_avg_pool2d(grey, 4).flatten().tolist()
    return [round(v, 4) for v in values]


def check_pairs(folder: Path, dataset: MixedPairs, write: bool = False) -> None:
    """Compare the first pair of ``dataset`` with ``folder/check.json`` (``write``: store it when absent).

    Raises:
        DatasetError: the pairs render differently than when the targets were made (the generator changed).
    """
    path = folder / "check.json"
    thumbnail = _thumbnail(_item(dataset, 0))
    if not path.is_file():
        if write:
            write_json(path, {"pair": 0, "thumbnail": thumbnail})
        return
    stored = json.loads(path.read_text())["thumbnail"]
    worst = max(abs(a - b) for a, b in zip(stored, thumbnail, strict=True))
    if worst > CHECK_TOLERANCE:
        raise DatasetError(
            f"{folder}: the training pairs no longer render as when these targets were made (thumbnail "
            f"differs by {worst:.3f}): the data generator changed; build the targets again in a new folder"
        )


def _item(dataset: MixedPairs, pair: int) -> dict[str, Any]:
    epoch, index = divmod(pair, len(dataset))
    dataset.set_epoch(epoch)
    return dataset[index]


class TeacherTargetPairs(torch.utils.data.Dataset):
    """Training pairs with their stored teacher targets (see the module docstring).

    Items hold ``image0``, ``image1`` ``(3, H, W)``, ``index``, ``source`` (the stream's source of the pair),
    ``teacher_keypoints (2, K, 2)``, ``teacher_scores (2, K)`` (0 = padding), ``points (2, N, 2)`` and
    ``teacher_descriptors (2, N, D)`` float32: the same keys whatever the source, so a batch can mix them
    (:meth:`pair` gives a pair with its ground truth). ``pairs`` uses only the first pairs (default: all).
    ``rotation_deg`` is the largest in-plane rotation of the stored pairs; ``stream`` their stream's spec.
    """

    def __init__(self, folder: str | Path, pairs: int | None = None) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            raise DatasetError(f"{self.folder} holds no teacher targets (no meta.json); build them first")
        self.meta = json.loads(meta_path.read_text())
        self.length = int(self.meta["pairs"] if pairs is None else pairs)
        present, needed = _shards_needed(self.folder, self.length)
        if present < needed:
            raise DatasetError(
                f"{self.folder}: {present} of the {needed} shards {self.length} pairs need; build the targets"
            )
        self.shards = sorted(self.folder.glob("shard_*.pt"))
        self.rotation_deg = float(
            self.meta.get("rotation_deg", 180.0)
        )  # absent in folders made before the option
        self.stream = self.meta.get("stream") or stream_spec("homography", self.rotation_deg)
        self.pairs = make_stream(
            self.stream,
            self.meta["photos"],
            size=tuple(self.meta["size"]),
            seed=self.meta["seed"],
            rotation_deg=self.rotation_deg,
        )
        check_pairs(self.folder, self.pairs)
        self._cache: dict[int, dict[str, Tensor]] = {}

    def __len__(self) -> int:
        return self.length

    def _shard(self, number: int) -> dict[str, Tensor]:
        if number not in self._cache:
            self._cache[number] = torch.load(self.shards[number], weights_only=True)
        return self._cache[number]

    def pair(self, pair: int) -> dict[str, Any]:
        """Pair ``pair`` as its stream makes it, with its ground truth."""
        return _item(self.pairs, pair)

    def __getitem__(self, pair: int) -> dict[str, Any]:
        shard, row = divmod(pair, self.meta["shard_size"])
        stored = self._shard(shard)
        full = self.pair(pair)
        item = {key: full[key] for key in ("image0", "image1", "index", "source")}
        item["teacher_keypoints"] = stored["keypoints"][row]
        item["teacher_scores"] = stored["scores"][row]
        item["points"] = stored["points"][row]
        item["teacher_descriptors"] = stored["descriptors"][row].float()
        return item
