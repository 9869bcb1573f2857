"""Training recipe of the feature upsamplers (JBU, LoftUp, FeatSharp) on a frozen backbone.

The backbone dominates CPU time, so its outputs are computed once per training crop and cached
(:func:`build_feature_cache`): for each photo, ``crops`` random square crops (side drawn between ``crop`` and
the photo's short side) are resized to ``crop`` (the 1x view) and ``2 crop`` (the 2x view), and the cache
keeps the 2x image, the backbone's maps of both views, the map of the 2x view run as 2x2 tiles (FeatSharp's
input) and a class-agnostic segmentation of the 1x view (scikit-image's Felzenszwalb graph segmentation: SAM,
which LoftUp uses, is not reachable offline). With a ``stream`` (:mod:`tiepoint_lab.data.mix`) the crops are
the views of that stream's pairs instead (both images of each: photo views under homographies and strong
photometric or lighting changes, rendered 3D scenes), at ``2 crop`` pixels.

Objectives (``../shared/spec.md`` sections 4-5; what the papers leave open is chosen here):

* ``jbu`` and ``featsharp``: multi-view consistency across resolutions. The upsampled 1x view, evaluated at
  the token centres of the 2x view, must agree with the backbone's own map of the 2x view (cosine + relative
  L2).
* ``loftup`` stage 1: at random pixels of the 1x view, the output against the mask-refined bicubic
  pseudo-ground truth ``alpha * mean_segment(F_bicubic) + (1 - alpha) F_bicubic`` with ``alpha = 0.8`` (L2).
* ``loftup`` stage 2: self-distillation. The frozen stage-1 model sees the 2x view (and its backbone map); its
  output, averaged over the 2x2 pixels under each 1x pixel (the downsampling sigma_1), teaches the student at
  random pixels through the affinity-matrix loss (cosine-similarity matrices of the sampled pixels compared in
  L2).

Validation, the same for every method (``score``): the cross-resolution cosine agreement on the cached crops
of the held-out photos.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tiepoint.backbones import Backbone, build_backbone, image_tensor, tiled_features
from tiepoint.errors import OptionError
from tiepoint.io.files import atomic_path, write_json
from tiepoint.io.image import load_image
from tiepoint.upsamplers import TRAINED, Upsampler, build_upsampler
from tiepoint.upsamplers.base import sample
from tiepoint.upsamplers.weights import weights_path
from tiepoint_lab.data.mix import make_stream, stream_spec
from tiepoint_lab.data.photos import list_photos
from tiepoint_lab.train.recipe import command_line, corpus_record, recipe_config
from tiepoint_lab.train.trainer import TrainConfig, Trainer, seed_all, ship_run

__all__ = ["ALPHA", "CachedCrops", "build_feature_cache", "ship_upsampler", "train_upsampler"]

ALPHA = 0.8
"""LoftUp's mask-refinement weight (spec section 4.3)."""


# ------------------------------------------------------------------------------------------------ cache


def _segments(image: np.ndarray) -> np.ndarray:
    from skimage.segmentation import felzenszwalb

    return felzenszwalb(image, scale=100, sigma=0.8, min_size=50).astype(np.int32)


def _random_crops(photo: np.ndarray, count: int, side: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` square crops of random size and place, resized to ``2 side`` (INTER_AREA)."""
    height, width = photo.shape[:2]
    short = min(height, width)
    crops = []
    for _ in range(count):
        size = int(rng.integers(min(side, short), short + 1))
        y, x = int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
        crops.append(
            cv2.resize(photo[y : y + size, x : x + size], (2 * side, 2 * side), interpolation=cv2.INTER_AREA)
        )
    return crops


def _photo_crops(photo: Path, index: int, crops: int, side: int, seed: int) -> list[np.ndarray]:
    return _random_crops(load_image(photo), crops, side, np.random.default_rng([seed, index]))


def _stream_views(pairs: torch.utils.data.Dataset, index: int) -> list[np.ndarray]:
    """Both images of pair ``index`` as ``(H, W, 3)`` uint8 crops."""
    item = pairs[index]
    return [
        (item[key].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
        for key in ("image0", "image1")
    ]


def _cache_jobs(
    photos: list[Path], crops: int, side: int, seed: int, stream: str | dict | None
) -> list[tuple[str, str, Callable[[], list[np.ndarray]]]]:
    """``(file stem, name to print, the crops at 2x)`` of each file of a feature cache."""
    if stream is None:
        return [
            (path.stem, path.name, partial(_photo_crops, path, index, crops, side, seed))
            for index, path in enumerate(photos)
        ]
    length = -(-crops * len(photos) // 2)
    pairs = make_stream(stream, photos, size=(2 * side, 2 * side), seed=seed, length=length)
    return [(f"pair_{i:05d}", f"pair {i}", partial(_stream_views, pairs, i)) for i in range(length)]


def _check_stream_record(folder: Path, record: dict[str, Any] | None) -> None:
    """Keep a cache folder to one kind of crops: ``stream.json`` holds a stream's settings (``record``;
    ``None`` for photo crops, which have no such file)."""
    path = folder / "stream.json"
    previous = json.loads(path.read_text()) if path.is_file() else None
    if previous != record and (previous is not None or any(folder.glob("*.pt"))):
        made = "another stream or settings" if previous else "photo crops"
        wanted = "photo crops" if record is None else f"stream {json.dumps(record['stream'])}"
        raise OptionError(f"{folder} holds crops of {made}, not of {wanted}; choose another cache folder")
    if record is not None:
        write_json(path, record)


def build_feature_cache(
    backbone: Backbone,
    photos: list[Path],
    folder: str | Path,
    crops: int = 2,
    side: int = 224,
    seed: int = 0,
    stream: str | dict | None = None,
) -> Path:
    """Cache the backbone's maps of ``crops`` random crops per photo (resumable: one file per photo).

    Each ``folder/<photo>.pt`` holds ``image2x`` ``(K, 3, 2s, 2s)`` uint8, ``features`` ``(K, C, s/t, s/t)``
    (1x view), ``features2x`` and ``tiled`` ``(K, C, 2s/t, 2s/t)`` (2x view whole and as 2x2 tiles) and
    ``segments`` ``(K, s, s)`` int32, for side ``s`` and stride ``t``.

    With ``stream`` (a name of :data:`~tiepoint_lab.data.mix.STREAMS` or a spec) the crops are both images
    of ``ceil(crops * len(photos) / 2)`` pairs of that stream (epoch 0, seeded ``seed``), one file per pair
    (``folder/pair_<i>.pt``, ``K = 2``); ``folder/stream.json`` records the stream and the settings.
    """
    if side % backbone.stride:
        raise OptionError(f"crop side {side} must be a multiple of the backbone stride {backbone.stride}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = None
    if stream is not None:
        record = {"stream": stream_spec(stream), "crops": crops, "side": side, "seed": seed}
        record["photos"] = [path.name for path in photos]
    _check_stream_record(folder, record)
    jobs = _cache_jobs(photos, crops, side, seed, stream)
    for number, (stem, name, make) in enumerate(jobs):
        target = folder / f"{stem}.pt"
        if target.is_file():
            continue
        large = make()
        images2x = torch.cat([image_tensor(crop) for crop in large])
        images = F.avg_pool2d(images2x, 2)
        small = [(image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for image in images]
        record = {
            "image2x": torch.from_numpy(np.stack(large)).permute(0, 3, 1, 2).contiguous(),
            "features": backbone(images).half(),
            "features2x": backbone(images2x).half(),
            "tiled": tiled_features(backbone, images, 2).half(),
            "segments": torch.from_numpy(np.stack([_segments(image) for image in small])),
        }
        with atomic_path(target) as temporary:
            torch.save(record, temporary)
        print(f"cached {number + 1}/{len(jobs)} {name}", flush=True)
    return folder


class CachedCrops(torch.utils.data.Dataset):
    """The crops of a feature cache as training items (dicts of tensors; see :func:`build_feature_cache`)."""

    def __init__(self, folder: str | Path) -> None:
        files = sorted(Path(folder).glob("*.pt"))
        if not files:
            raise OptionError(f"no cached crops in {folder}")
        self.items: list[dict[str, Tensor]] = []
        for file in files:
            record = torch.load(file, map_location="cpu", weights_only=True)
            for k in range(record["image2x"].shape[0]):
                self.items.append({key: value[k] for key, value in record.items()})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = self.items[index]
        image2x = item["image2x"].float() / 255.0
        return {
            "image": F.avg_pool2d(image2x[None], 2)[0],
            "image2x": image2x,
            "features": item["features"].float(),
            "features2x": item["features2x"].float(),
            "tiled": item["tiled"].float(),
            "segments": item["segments"].long(),
        }


# ----------------------------------------------------------------------------------------------- losses


def token_centres(size: int, stride: float, batch: int) -> Tensor:
    """Pixel centres ``(batch, size*size, 2)`` of a ``size x size`` grid of cells ``stride`` pixels wide."""
    steps = (torch.arange(size, dtype=torch.float32) + 0.5) * stride - 0.5
    return (
        torch.stack(torch.meshgrid(steps, steps, indexing="xy"), -1).reshape(1, -1, 2).expand(batch, -1, -1)
    )


def cross_resolution(model: Upsampler, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The upsampled 1x view at the 2x view's token centres, and the 2x view's own tokens, both
    ``(B, N, C)``."""
    image, target = batch["image"], batch["features2x"]
    state = model.prepare(image, batch["features"], batch.get("tiled"))
    grid = target.shape[-1]
    predicted = model.query(state, token_centres(grid, image.shape[-1] / grid, image.shape[0]))
    return predicted, target.flatten(2).transpose(1, 2)


def consistency_losses(predicted: Tensor, target: Tensor) -> dict[str, Tensor]:
    """``1 - cos`` and the L2 error relative to the target's energy."""
    cosine = 1 - F.cosine_similarity(predicted, target, dim=-1).mean()
    relative = ((predicted - target) ** 2).sum(-1).mean() / (target**2).sum(-1).mean()
    return {"total": cosine + relative, "cosine": cosine, "relative_l2": relative}


def consistency_loss(model: Upsampler, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """JBU and FeatSharp: multi-view (cross-resolution) consistency."""
    return consistency_losses(*cross_resolution(model, batch))


def _random_pixels(batch: int, side: int, count: int, generator: torch.Generator) -> Tensor:
    return torch.randint(0, side, (batch, count, 2), generator=generator).float()


def mask_refined_targets(
    features: Tensor, segments: Tensor, points: Tensor, side: int, alpha: float = ALPHA
) -> Tensor:
    """LoftUp's stage-1 pseudo-ground truth at pixels ``(B, N, 2)``: the bicubic upsampling blended with its
    mean over the pixel's segment, ``alpha * mean + (1 - alpha) * value`` -> ``(B, N, C)``. Segment means are
    taken over every second pixel in each direction (a quarter of the cost, the same expectation)."""
    half = side // 2
    steps = torch.arange(half, dtype=torch.float32) * 2  # pixels 0, 2, 4, ...
    grid = (
        torch.stack(torch.meshgrid(steps, steps, indexing="xy"), -1)
        .reshape(1, -1, 2)
        .expand(features.shape[0], -1, -1)
    )
    bicubic = sample(features, grid, side, side, "bicubic").transpose(1, 2)  # (B, C, P)
    labels = segments[:, ::2, ::2].reshape(features.shape[0], -1)
    at_points = sample(features, points, side, side, "bicubic")  # (B, N, C)
    targets = []
    for b in range(features.shape[0]):
        _, labels_b = torch.unique(labels[b], return_inverse=True)
        count = int(labels_b.max()) + 1
        means = torch.zeros(features.shape[1], count).index_add_(1, labels_b, bicubic[b]) / torch.bincount(
            labels_b, minlength=count
        )
        full = segments[b, points[b, :, 1].long(), points[b, :, 0].long()]
        # a segment too small to appear on the subsampled grid keeps the bicubic value
        lookup = torch.full((int(segments[b].max()) + 1,), -1, dtype=torch.long)
        lookup[labels[b]] = labels_b
        index = lookup[full]
        mean = torch.where((index >= 0).unsqueeze(1), means[:, index.clamp(min=0)].T, at_points[b])
        targets.append(alpha * mean + (1 - alpha) * at_points[b])
    return torch.stack(targets)


@dataclass
class LoftUpStage1Loss:
    """Stage 1: L2 to the mask-refined bicubic pseudo-ground truth at ``points`` random pixels per crop."""

    points: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def __call__(self, model: Upsampler, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        image = batch["image"]
        side = image.shape[-1]
        points = _random_pixels(image.shape[0], side, self.points, self.generator)
        target = mask_refined_targets(batch["features"], batch["segments"], points, side)
        predicted = model.query(model.prepare(image, batch["features"]), points)
        l2 = ((predicted - target) ** 2).sum(-1).mean() / (target**2).sum(-1).mean()
        return {"total": l2, "relative_l2": l2}


def affinity_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """L2 between the cosine-similarity matrices of ``(B, N, C)`` student and teacher features."""
    s, t = F.normalize(student, dim=-1), F.normalize(teacher, dim=-1)
    return ((s @ s.transpose(1, 2) - t @ t.transpose(1, 2)) ** 2).mean()


class LoftUpStage2Loss:
    """Stage 2: self-distillation from the frozen stage-1 model on the 2x view, with the affinity loss."""

    def __init__(self, teacher: Upsampler, points: int = 512, seed: int = 0) -> None:
        self.teacher = copy.deepcopy(teacher).eval().requires_grad_(False)
        self.points = points
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, model: Upsampler, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        image = batch["image"]
        points = _random_pixels(image.shape[0], image.shape[-1], self.points, self.generator)
        with torch.no_grad():
            state = self.teacher.prepare(batch["image2x"], batch["features2x"])
            corners = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
            large = (2 * points.unsqueeze(2) + corners).flatten(1, 2)  # the 2x2 pixels under each 1x pixel
            teacher = self.teacher.query(state, large).reshape(*points.shape[:2], 4, -1).mean(2)
        student = model.query(model.prepare(image, batch["features"]), points)
        affinity = affinity_loss(student, teacher)
        return {"total": affinity, "affinity": affinity}


def validation_scores(model: Upsampler, dataset: CachedCrops, batch_size: int = 4) -> dict[str, float]:
    """Mean cross-resolution cosine agreement (``score``) and relative L2 on held-out crops."""
    cosines, errors = [], []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        batch = {key: torch.stack([item[key] for item in items]) for key in items[0]}
        predicted, target = cross_resolution(model, batch)
        cosines.append(F.cosine_similarity(predicted, target, dim=-1).mean(1))
        errors.append(((predicted - target) ** 2).sum(-1).mean(1) / (target**2).sum(-1).mean(1))
    return {"score": float(torch.cat(cosines).mean()), "relative_l2": float(torch.cat(errors).mean())}


# -------------------------------------------------------------------------------------------- recipe


def train_upsampler(
    backbone: str,
    method: str,
    photos: str | Path = "data/photos",
    out: str | Path | None = None,
    cache: str | Path | None = None,
    crops: int = 2,
    side: int = 224,
    steps: int = 600,
    stage2_steps: int = 300,
    batch_size: int = 4,
    learning_rate: float = 2e-3,
    seed: int = 0,
    validate_every: int = 100,
    layer: int | None = None,
    stream: str | None = None,
) -> dict[str, float]:
    """Train one upsampler on one backbone (resumable: rerun the same call to continue).

    Args:
        backbone: ``"dinov2s"`` or ``"effl0"``.
        method: ``"jbu"``, ``"loftup"`` or ``"featsharp"``.
        photos: the photo corpus (train split for training, val split for validation).
        out: run directory (default ``runs/upsampler/<tag>-<method>``, where the tag is the backbone's name
            and, for ``dinov2s``, its layer: ``dinov2s-l9``); LoftUp writes ``stage1`` and ``stage2`` inside
            it.
        cache: feature cache (default ``runs/upsampler-cache/<tag>-<side>``, with ``-<stream>`` appended for
            a ``stream``).
        crops: crops per photo in the cache.
        side: crop side of the 1x view in pixels.
        steps: optimisation steps (LoftUp: of stage 1).
        stage2_steps: LoftUp's self-distillation steps.
        layer: ``dinov2s`` only: the transformer layer (default
            :data:`tiepoint.backbones.dinov2.DEFAULT_LAYER`); it is recorded with the weights.
        stream: ``None`` (random crops of the photos), or a name of :data:`~tiepoint_lab.data.mix.STREAMS`:
            the crops are then both views of that stream's pairs (train and val photos alike; see
            :func:`build_feature_cache`), recorded with the weights.
    """
    if method not in TRAINED:
        raise OptionError(f"method must be one of {TRAINED}, got {method!r}")
    torch.set_num_threads(1)
    network = build_backbone(backbone, layer)
    layer = getattr(network, "layer", None)
    tag = backbone if layer is None else f"{backbone}-l{layer}"
    default_cache = f"{tag}-{side}" + ("" if stream is None else f"-{stream}")
    cache = Path(cache) if cache else Path("runs") / "upsampler-cache" / default_cache
    out = Path(out) if out else Path("runs") / "upsampler" / f"{tag}-{method}"
    train_photos, val_photos = list_photos(photos, "train"), list_photos(photos, "val")
    build_feature_cache(network, train_photos, cache / "train", crops, side, seed, stream)
    build_feature_cache(network, val_photos, cache / "val", crops, side, seed + 1, stream)
    dataset, held_out = CachedCrops(cache / "train"), CachedCrops(cache / "val")
    describe = {
        "model": f"{backbone}-{method}",
        "backbone": backbone,
        "layer": layer,
        "method": method,
        "data": corpus_record(
            photos,
            train_photos,
            val_photos,
            crops=len(dataset),
            side=side,
            cache=str(cache),
            segmentation="skimage felzenszwalb(scale=100, sigma=0.8, min_size=50)"
            if method == "loftup"
            else None,
            stream=None if stream is None else stream_spec(stream),
        ),
        "command": command_line(),
    }

    def config(count: int) -> TrainConfig:
        return recipe_config(
            count,
            batch_size,
            learning_rate,
            seed,
            validate_every,
            workers=0,
            warmup_steps=min(50, count),
            checkpoint_every=50,
        )

    validate = lambda m: validation_scores(m, held_out)
    seed_all(seed)
    model = build_upsampler(method, network.dim)
    if method != "loftup":
        return Trainer(model, dataset, consistency_loss, validate, config(steps), out, describe).run()
    Trainer(
        model, dataset, LoftUpStage1Loss(seed=seed), validate, config(steps), out / "stage1", describe
    ).run()
    final = torch.load(out / "stage1" / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]
    model.load_state_dict(final)  # stage 2 starts from (and distils) the last stage-1 model
    teacher = LoftUpStage2Loss(model, seed=seed)
    describe = {**describe, "stage": 2}
    return Trainer(model, dataset, teacher, validate, config(stage2_steps), out / "stage2", describe).run()


def ship_upsampler(
    run: str | Path, backbone: str, method: str, benchmark: dict[str, Any] | None = None
) -> Path:
    """Copy a run's best weights (by the validation score) into
    ``tiepoint/weights/upsampler_<backbone>_<method>.pt`` with a training record (data, steps, time, command,
    validation, and ``benchmark`` scores when given); see :func:`tiepoint_lab.train.trainer.ship_run`.

    For LoftUp ``run`` holds ``stage1`` and ``stage2``: the weights come from stage 2 and the record also
    describes stage 1.
    """
    run = Path(run)
    path = ship_run(run / "stage2" if method == "loftup" else run, weights_path(backbone, method), benchmark)
    if method == "loftup":
        stage1 = run / "stage1"
        checkpoint = torch.load(stage1 / "checkpoint.pt", map_location="cpu", weights_only=False)
        validations = [
            json.loads(line)
            for line in (stage1 / "log.jsonl").read_text().splitlines()
            if '"validation"' in line
        ]
        record = json.loads(path.with_suffix(".json").read_text())
        record["stage1"] = {
            **json.loads((stage1 / "config.json").read_text()),
            "steps": checkpoint["step"],
            "train_seconds": round(checkpoint["seconds"], 1),
            "last_validation": validations[-1] if validations else None,
        }
        write_json(path.with_suffix(".json"), record)
    return path
