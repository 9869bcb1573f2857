"""Training recipe of Efficient LoFTR: stream pairs, the paper's three losses, validation and shipping.

Each step takes a batch of image pairs with dense, exact ground truth: a stream of
:mod:`tiepoint_lab.data.mix` on the photo corpus, by default photo pairs related by a known homography
(``stream="mix"`` adds relit photos and rendered 3D scenes, whose depth maps give the correspondences and
which points are occluded; see :func:`~tiepoint_lab.data.batching.correspond_batch`):

* **coarse**: the centre of every 8x8 cell of image 0 is mapped into image 1; the cell of image 1 it lands in
  is its true match (none where the centre is not visible there: outside image 1, or hidden).
  ``L_c = -mean log P`` over those pairs, ``P`` the dual-softmax of the coarse similarity.
* **fine stage 1**: for up to ``fine_matches`` true coarse matches per pair, every pixel of the image-0 cell
  is mapped into the matched image-1 cell; where it lands (rounded) inside the cell, and is visible, that
  pixel is its true match. ``L_f1 = -mean log P_l`` with ``P_l`` the dual-softmax of the 64x64 local
  correlation (the coarse loss's form).
* **fine stage 2**: the 3x3 softmax expectation around the true (rounded) pixel against the exact sub-pixel
  position: ``L_f2 = mean ||offset - true offset||^2`` (pixels^2).

``L = L_c + 1.0 * L_f1 + 0.25 * L_f2`` (S1 §3.5). Validation runs the model at inference (dual-softmax,
mutual nearest neighbours, refinement) on fixed held-out pairs; ``score`` is the number of matches within 3 px
per coarse cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tiepoint.errors import OptionError
from tiepoint.matchers.eloftr import CELL, CONFIGS, EfficientLoFTR, describe_config, weights_path
from tiepoint.nn.image import gray
from tiepoint_lab.data.batching import collate_pairs, correspond_batch, correspond_rows
from tiepoint_lab.data.homography import warp_points
from tiepoint_lab.data.mix import correspond, make_stream, stream_spec
from tiepoint_lab.data.photos import list_photos
from tiepoint_lab.train.recipe import command_line, corpus_record, held_out_pairs, match_scores, recipe_config
from tiepoint_lab.train.trainer import Trainer, seed_all, ship_run

__all__ = [
    "ELoFTRLoss",
    "coarse_ground_truth",
    "coarse_matches",
    "ship",
    "train_eloftr",
    "validation_scores",
]


def _cell_centres(size0: tuple[int, int], device: torch.device, dtype: torch.dtype) -> Tensor:
    """``(N0, 2)`` pixel centres of the 8x8 cells of an image of ``(H, W)`` ``size0``, row-major."""
    h0, w0 = size0[0] // CELL, size0[1] // CELL
    ys, xs = torch.meshgrid(torch.arange(h0, device=device), torch.arange(w0, device=device), indexing="ij")
    return torch.stack([xs, ys], -1).reshape(-1, 2).to(dtype) * CELL + (CELL - 1) / 2


def coarse_ground_truth(H: Tensor, size0: tuple[int, int], size1: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """True coarse matches: the image-1 cell where each image-0 cell centre lands under ``H``.

    Args:
        H: ``(B, 3, 3)`` homographies from image 0 to image 1 (pixels).
        size0, size1: ``(H, W)`` of the images, multiples of 8.

    Returns:
        ``valid (B, N0)`` bool (the centre lands inside image 1) and ``index1 (B, N0)`` the cell index in
        image 1 (row-major; meaningless where not valid).
    """
    centres = _cell_centres(size0, H.device, H.dtype)
    warped = warp_points(centres.expand(H.shape[0], -1, -1), H)  # (B, N0, 2)
    return _cells(warped, torch.isfinite(warped).all(-1), size1)


def coarse_matches(
    batch: dict[str, Any], size0: tuple[int, int], size1: tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """:func:`coarse_ground_truth` for a batch of any stream (see
    :func:`~tiepoint_lab.data.batching.correspond_batch`): a centre not visible in image 1 (outside it, or
    occluded) has no match."""
    centres = _cell_centres(size0, batch["image0"].device, torch.float32)
    warped, visible = correspond_batch(batch, centres.expand(batch["image0"].shape[0], -1, -1))
    return _cells(warped, visible, size1)


def _cells(warped: Tensor, visible: Tensor, size1: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """``valid`` and ``index1`` (see :func:`coarse_ground_truth`) of ``(B, N0, 2)`` mapped cell centres."""
    h1, w1 = size1[0] // CELL, size1[1] // CELL
    cell = torch.floor((warped + 0.5) / CELL)
    valid = (
        visible
        & torch.isfinite(warped).all(-1)
        & (cell[..., 0] >= 0)
        & (cell[..., 0] < w1)
        & (cell[..., 1] >= 0)
        & (cell[..., 1] < h1)
    )
    cell = torch.where(valid[..., None], cell, torch.zeros_like(cell)).long()
    return valid, cell[..., 1] * w1 + cell[..., 0]


def _dual_log_likelihood(scores: Tensor) -> Tensor:
    """``log P`` of the dual-softmax over the last two dimensions of ``(..., N0, N1)`` scores."""
    return F.log_softmax(scores, -1) + F.log_softmax(scores, -2)


@dataclass
class ELoFTRLoss:
    """``L_c + fine1 * L_f1 + fine2 * L_f2``; call as ``loss(model, batch)`` (a trainer ``LossFunction``).

    Attributes:
        fine_matches: true coarse matches per pair that supervise the fine stages (a random subset).
        fine1, fine2: the weights ``alpha`` and ``beta`` (S1: 1.0 and 0.25).
    """

    fine_matches: int = 64
    fine1: float = 1.0
    fine2: float = 0.25

    def __call__(self, model: EfficientLoFTR, batch: dict[str, Any]) -> dict[str, Tensor]:
        """``batch``: pairs of any stream, from :func:`~tiepoint_lab.data.batching.collate_pairs` (or torch's
        default collate of homography pairs)."""
        image0, image1 = gray(batch["image0"]), gray(batch["image1"])
        features = model.features(image0, image1)  # in the trainer's precision (bfloat16 autocast on a GPU)
        # the scores and losses in float32: bfloat16 similarity logits near 1 / temperature = 10 step by 0.06
        with torch.autocast(image0.device.type, enabled=False):
            return self._losses(
                model, *(x.float() for x in features), batch, image0.shape[-2:], image1.shape[-2:]
            )

    def _losses(
        self,
        model: EfficientLoFTR,
        coarse0: Tensor,
        coarse1: Tensor,
        fine0: Tensor,
        fine1: Tensor,
        batch: dict[str, Any],
        size0: tuple[int, int],
        size1: tuple[int, int],
    ) -> dict[str, Tensor]:
        similarity = model.similarity(coarse0, coarse1)  # (B, N0, N1)
        valid, index1 = coarse_matches(batch, tuple(size0), tuple(size1))
        log_p = _dual_log_likelihood(similarity)
        picked = log_p.gather(2, index1[..., None])[..., 0]  # (B, N0)
        coarse = -(picked * valid).sum() / valid.sum().clamp(min=1)

        batch_index, index0, index1 = self._sample(valid, index1)
        w0, w1 = coarse0.shape[-1], coarse1.shape[-1]
        cell0 = torch.stack([index0 % w0, torch.div(index0, w0, rounding_mode="floor")], -1)
        cell1 = torch.stack([index1 % w1, torch.div(index1, w1, rounding_mode="floor")], -1)
        window0, window1 = model.windows(fine0, fine1, batch_index, cell0, cell1)

        # true fine matches: each pixel of the image-0 cell, mapped into the matched image-1 cell
        offsets = torch.arange(CELL, device=coarse0.device)
        oy, ox = torch.meshgrid(offsets, offsets, indexing="ij")
        local = torch.stack([ox, oy], -1).reshape(1, -1, 2)  # (1, 64, 2)
        pixels0 = (cell0[:, None] * CELL + local).float()  # (M, 64, 2)
        mapped, visible = correspond_rows(batch, batch_index, pixels0)
        target = mapped - cell1[:, None].float() * CELL  # (M, 64, 2)
        rounded = torch.round(target)
        inside = (
            visible & torch.isfinite(target).all(-1) & (rounded >= 0).all(-1) & (rounded <= CELL - 1).all(-1)
        )
        rounded = torch.where(inside[..., None], rounded, torch.zeros_like(rounded)).long()
        target_index = rounded[..., 1] * CELL + rounded[..., 0]  # (M, 64)

        fine_log_p = _dual_log_likelihood(model.fine_scores(window0, model.inner(window1)))  # (M, 64, 64)
        picked = fine_log_p.gather(2, target_index[..., None])[..., 0]
        count = inside.sum().clamp(min=1)
        fine_1 = -(picked * inside).sum() / count

        predicted = model.subpixel(window0, model.neighbourhoods(window1, rounded))  # (M, 64, 2)
        error = ((predicted - (target - rounded)) ** 2).sum(-1)
        fine_2 = (torch.where(inside, error, torch.zeros_like(error))).sum() / count

        total = coarse + self.fine1 * fine_1 + self.fine2 * fine_2
        return {"total": total, "coarse": coarse, "fine1": fine_1, "fine2": fine_2}

    def _sample(self, valid: Tensor, index1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Up to ``fine_matches`` random true coarse matches per pair: ``(batch, index0, index1)``, each
        ``(M,)``."""
        keys = torch.rand(valid.shape, device=valid.device).masked_fill(~valid, -1.0)
        count = min(self.fine_matches, valid.shape[1])
        top, index0 = keys.topk(count, dim=1)  # random order, true matches first
        keep = top >= 0
        batch_index = torch.arange(valid.shape[0], device=valid.device)[:, None].expand_as(index0)
        return batch_index[keep], index0[keep], index1.gather(1, index0)[keep]


def validation_scores(model: EfficientLoFTR, pairs: Any, threshold: float = 3.0) -> dict[str, float]:
    """Inference quality on fixed held-out pairs of any stream (a match whose image-0 point a scene's ground
    truth does not see in image 1 counts as wrong; a homography's truth is defined everywhere).

    Returns:
        ``precision@3px`` (share of matches within ``threshold`` px of the truth), ``matches`` (per pair) and
        ``score`` (correct matches per coarse cell of image 0).
    """
    device = next(model.parameters()).device

    def pairs_errors():
        for index in range(len(pairs)):
            item = pairs[index]
            image0, image1 = gray(item["image0"][None].to(device)), gray(item["image1"][None].to(device))
            output = model(image0, image1)
            keypoints0, keypoints1 = output["keypoints0"].cpu().double(), output["keypoints1"].cpu().double()
            cells = image0.shape[-1] * image0.shape[-2] / CELL**2
            if "H_0to1" in item:
                projected = warp_points(keypoints0, item["H_0to1"].double())
                yield (projected - keypoints1).norm(dim=-1), cells
            else:
                projected, visible = correspond(item, keypoints0)
                errors = (projected.double() - keypoints1).norm(dim=-1)
                yield torch.where(visible, errors, torch.inf), cells

    return match_scores(pairs_errors(), threshold, "precision@3px")


def train_eloftr(
    photos: str | Path,
    out: str | Path,
    config: str = "small",
    steps: int = 2000,
    batch_size: int = 2,
    crop: int = 256,
    learning_rate: float = 2e-3,
    rotation: float = 45.0,
    perspective: float = 0.15,
    scale: tuple[float, float] = (0.6, 1.6),
    fine_matches: int = 64,
    validation_pairs: int = 8,
    device: str = "cpu",
    workers: int = 1,
    seed: int = 0,
    validate_every: int = 250,
    until: int | None = None,
    minutes: float | None = None,
    stream: str = "homography",
) -> dict[str, float]:
    """Train Efficient LoFTR from scratch on the photo corpus (resumes a run in ``out``); returns the last
    validation.

    Args:
        photos: the corpus built by ``tiepoint-lab data photos`` (train split for training, val split for
            validation).
        out: the run directory (see :mod:`tiepoint_lab.train.trainer`).
        config: a key of :data:`~tiepoint.matchers.eloftr.CONFIGS`.
        crop: side of the training images (a multiple of 32).
        rotation, perspective: largest in-plane rotation (degrees) and corner displacement of the
            homographies.
        scale: ``(low, high)`` zoom of the second image relative to the first.
        until: stop after this step (resumable), as if interrupted.
        minutes: stop (with a checkpoint, resumable) after this many minutes of this call, e.g. on a lent GPU.
        stream: the training and held-out pairs, a name of :data:`~tiepoint_lab.data.mix.STREAMS`
            (``"mix"``: homographies, relit photos and 3D scenes); ``rotation`` limits every source's
            in-plane rotation (a scene's roll), ``perspective`` and ``scale`` shape the homographies.
    """
    if config not in CONFIGS:
        raise OptionError(f"unknown Efficient LoFTR config {config!r}; configs: {', '.join(CONFIGS)}")
    if minutes is not None and minutes <= 0:
        raise OptionError(f"minutes must be positive, got {minutes}")
    if crop % 32 or crop < 64:
        raise OptionError(f"crop must be a multiple of 32 and at least 64, got {crop}")
    train_photos, val_photos = list_photos(photos, "train"), list_photos(photos, "val")
    homography = {"rotation_deg": rotation, "perspective": perspective, "scale": tuple(scale)}
    spec = stream_spec(stream, rotation)
    for source in ("homography", "relit"):  # the homographies' ranges of this recipe
        if source in spec:
            spec[source].update(perspective=perspective, scale=list(scale))
    dataset = make_stream(
        spec, train_photos, size=(crop, crop), seed=seed, length=10 * len(train_photos), rotation_deg=rotation
    )
    held_out = held_out_pairs(val_photos, crop, seed, validation_pairs, stream=spec, rotation_deg=rotation)
    train_config = recipe_config(
        steps,
        batch_size,
        learning_rate,
        seed,
        validate_every,
        workers,
        device,
        warmup_steps=min(200, steps // 10 + 1),
    )
    describe = {
        "model": f"eloftr-{config}",
        "architecture": describe_config(config),
        "data": corpus_record(
            photos,
            train_photos,
            val_photos,
            crop=crop,
            pairs_per_epoch=len(dataset),
            **homography,
            stream=spec,
        ),
        "loss": {"coarse": 1.0, "fine1": 1.0, "fine2": 0.25, "fine_matches": fine_matches},
        "command": command_line(),
    }
    seed_all(seed)
    trainer = Trainer(
        EfficientLoFTR(config),
        dataset,
        ELoFTRLoss(fine_matches),
        lambda m: validation_scores(m, held_out),
        train_config,
        out,
        describe,
        collate_fn=collate_pairs,
    )
    return trainer.run(until=until, seconds=None if minutes is None else 60.0 * minutes)


def ship(
    run: str | Path,
    config: str = "small",
    benchmark: dict[str, Any] | None = None,
    destination: Path | None = None,
) -> Path:
    """Copy a run's best weights into the package (``eloftr_<config>.pt``) with its training record
    (``.json``)."""
    return ship_run(run, destination or weights_path(config), benchmark)
