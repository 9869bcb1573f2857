"""Training recipe of RaCo: stage 1 the detector and its covariance head, stage 2 the ranker.

Both stages train on pairs of a stream (:mod:`tiepoint_lab.data.mix`): by default views of single photos
related by random homographies (:class:`~tiepoint_lab.data.homography.HomographyPairs`) with full 360°
in-plane rotations and strong photometric changes; ``stream="mix"`` adds relit photos and rendered 3D scenes
(their depth maps give where a point lands in the other view and whether it is hidden there; a hidden point
counts as leaving the view). No equivariant layers.

**Stage 1, detector** (:class:`DetectorLoss`). The score map's softmax over all pixels is the policy ``p``.
Per view, the actions are the ``K`` current detections (NMS radius 3 px) and ``K`` distinct pixels sampled
from ``p`` (exploration; without replacement by default, which also pushes down the tail of ``p``: on the
held-out pairs it reached a repeatability@3 px of 0.45 at step 250, against 0.39-0.40 at steps 250-500 with
replacement). An action earns ``p_pos = 1`` when its reprojection into the other view lies within
``d_max = 1.2`` px of a detection there, else ``p_neg``; actions that leave the other view earn nothing. The
rewards are normalised per view by subtracting their mean (a baseline), and the loss is
``-sum(rho' log p[x])`` over the actions (REINFORCE). The covariance head is trained by the Gaussian negative
log-likelihood of the reprojection errors of detections paired within ``cov_radius`` px, each error's
covariance being ``Sigma_B + J Sigma_A J^T`` with ``J`` the Jacobian of the map between the views at ``x_A``
(both directions; a homography's exactly, a scene's by finite differences, on smooth surfaces only).

**Stage 2, ranker** (:class:`RankerLoss`). The detector is frozen and run as at inference; the ranker scores
its keypoints, together with keypoints of the other detectors the ranker should serve (a random subset of
Shi-Tomasi corners stands in for them here), so that it does not learn one detector's quirks. Soft ranks
``r_i = 1 + sum_j sigmoid((s_j - s_i) / tau)`` make the ranks differentiable; the Spearman loss is the mean
squared difference of the normalised soft ranks of keypoints paired across the views (within 3 px), and the
pull loss draws paired keypoints to rank 1 and unpaired ones to rank N.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tiepoint.errors import OptionError
from tiepoint.evaluation.keypoints import repeatability
from tiepoint.features.raco import RaCoConfig, RaCoModel, sample_covariances
from tiepoint.features.ranker import RankerConfig, RankerModel
from tiepoint.nn.detection import detect_keypoints
from tiepoint.weights import WEIGHTS_DIR
from tiepoint_lab.data.batching import (
    collate_pairs,
    correspond_batch,
    homography_jacobian,
    jacobian_batch,
    reverse_pair,
)
from tiepoint_lab.data.mix import correspond, make_stream, stream_spec
from tiepoint_lab.data.photos import list_photos
from tiepoint_lab.train.recipe import command_line, corpus_record, held_out_pairs, recipe_config
from tiepoint_lab.train.trainer import Trainer, seed_all, ship_run

__all__ = [
    "DetectorLoss",
    "RankerLoss",
    "detector_validation",
    "homography_jacobian",
    "pair_repeatability",
    "ship_raco",
    "soft_ranks",
    "train_raco",
]

ROTATION = 180.0
"""Largest in-plane rotation of the training and held-out pairs, degrees (a scene's roll)."""


def _to_other(batch: dict[str, Any], back: dict[str, Any], points: Tensor) -> tuple[Tensor, Tensor]:
    """Where ``(2B, N, 2)`` points of the views (the B images 0, then the B images 1) lie in the other view of
    their pair, ``(2B, N, 2)``, and whether they are visible there ``(2B, N)``; ``back`` is
    ``reverse_pair(batch)``."""
    pairs = len(points) // 2
    forward, seen_forward = correspond_batch(batch, points[:pairs])
    backward, seen_backward = correspond_batch(back, points[pairs:])
    return torch.cat([forward, backward]).to(points.dtype), torch.cat([seen_forward, seen_backward])


def _inside(points: Tensor, height: int, width: int, margin: float = 4.0) -> Tensor:
    x, y = points[..., 0], points[..., 1]
    return (
        torch.isfinite(points).all(-1)
        & (x >= margin)
        & (x <= width - 1 - margin)
        & (y >= margin)
        & (y <= height - 1 - margin)
    )


def _nearest(points: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Distance to and index of the nearest target: ``(B, N)`` each, for ``(B, N, 2)`` and ``(B, M, 2)``."""
    distance = torch.cdist(torch.nan_to_num(points, nan=1e6, posinf=1e6, neginf=-1e6), targets)
    return distance.min(-1)


@dataclass
class DetectorLoss:
    """Stage-1 loss: policy-gradient repeatability reward plus covariance NLL (see the module docstring).

    Attributes:
        keypoints: ``K``, detections (and as many samples) per view.
        d_max: reward radius, pixels.
        p_neg: reward of an action without a detection within ``d_max`` in the other view.
        cov_radius: detections paired within this distance train the covariance head.
        cov_weight: weight of the covariance NLL.
        replacement: sample the exploration actions with replacement.
    """

    keypoints: int = 256
    d_max: float = 1.2
    p_neg: float = -0.25
    cov_radius: float = 3.0
    cov_weight: float = 0.1
    replacement: bool = False

    def __call__(self, model: RaCoModel, batch: dict[str, Any]) -> dict[str, Tensor]:
        """``batch``: pairs of any stream, from :func:`~tiepoint_lab.data.batching.collate_pairs` (or torch's
        default collate of homography pairs)."""
        images = torch.cat([batch["image0"], batch["image1"]])
        pairs, height, width = batch["image0"].shape[0], images.shape[-2], images.shape[-1]
        logits, raw = model.forward_maps(images)
        log_p = torch.log_softmax(logits.flatten(1), dim=1)  # (2B, HW)
        with torch.no_grad():
            detections, _ = detect_keypoints(logits.detach(), self.keypoints, nms_radius=3)
            sampled = torch.multinomial(log_p.detach().exp(), self.keypoints, replacement=self.replacement)
        back = reverse_pair(batch)  # image 1 -> image 0
        other = torch.cat([detections[pairs:], detections[:pairs]])

        detected_pixels = detections.round().long()
        detected_index = detected_pixels[..., 1].clamp(0, height - 1) * width + detected_pixels[..., 0].clamp(
            0, width - 1
        )
        sampled_points = torch.stack([sampled % width, sampled // width], -1).to(images.dtype)
        actions = torch.cat([detections, sampled_points], 1)
        indices = torch.cat([detected_index, sampled], 1)
        with torch.no_grad():
            projected, visible = _to_other(batch, back, actions)
            valid = visible & _inside(projected, height, width)
            distance, _ = _nearest(projected, other)
            reward = torch.where(
                distance < self.d_max, torch.ones_like(distance), torch.full_like(distance, self.p_neg)
            )
            reward = torch.where(valid, reward, torch.zeros_like(reward))
            count = valid.sum(1, keepdim=True).clamp(min=1)
            baseline = reward.sum(1, keepdim=True) / count
            advantage = torch.where(valid, reward - baseline, torch.zeros_like(reward))
        chosen = torch.gather(log_p, 1, indices)
        detection_loss = -(advantage * chosen).sum() / valid.sum().clamp(min=1)

        covariance_loss = self._covariance_nll(raw, detections, other, batch, back, height, width)
        total = detection_loss + self.cov_weight * covariance_loss
        repeatable = ((distance < self.d_max) & valid)[:, : self.keypoints].sum() / valid[
            :, : self.keypoints
        ].sum().clamp(min=1)
        return {
            "total": total,
            "detection": detection_loss,
            "covariance": covariance_loss,
            "repeatable": repeatable,
        }

    def _covariance_nll(
        self,
        raw: Tensor,
        detections: Tensor,
        other: Tensor,
        batch: dict[str, Any],
        back: dict[str, Any],
        height: int,
        width: int,
    ) -> Tensor:
        """Mean Gaussian NLL of the reprojection errors of paired detections, both directions (``back``: the
        batch reversed)."""
        half = len(detections) // 2
        covariances = sample_covariances(raw, detections)  # (2B, K, 2, 2)
        other_covariances = torch.cat([covariances[half:], covariances[:half]])
        with torch.no_grad():
            projected, visible = _to_other(batch, back, detections)
            distance, nearest = _nearest(projected, other)
            forward, reliable_forward = jacobian_batch(batch, detections[:half])
            backward, reliable_backward = jacobian_batch(back, detections[half:])
            jacobian = torch.cat([forward, backward]).to(detections.dtype)
            reliable = torch.cat([reliable_forward, reliable_backward])
            paired = (distance < self.cov_radius) & visible & reliable & _inside(projected, height, width)
            error = projected - torch.gather(other, 1, nearest[..., None].expand(-1, -1, 2))
        target = torch.gather(other_covariances, 1, nearest[..., None, None].expand(-1, -1, 2, 2))
        combined = target + jacobian @ covariances @ jacobian.transpose(-1, -2)
        combined = combined[paired]
        error = error[paired]
        if len(error) == 0:
            return raw.sum() * 0.0
        mahalanobis = (error[:, None, :] @ torch.linalg.solve(combined, error[:, :, None]))[:, 0, 0]
        return 0.5 * (mahalanobis + torch.logdet(combined)).mean()


def pair_repeatability(
    item: dict[str, Any], keypoints0: np.ndarray, keypoints1: np.ndarray, threshold: float = 3.0
) -> float:
    """Repeatability at ``threshold`` px of two keypoint sets of a pair of any stream (see
    :mod:`tiepoint.evaluation.keypoints`): under a homography exactly that module's; in a scene a keypoint
    counts where the ground truth sees it in the other image (inside it and not hidden)."""
    if "H_0to1" in item:
        size = (item["image0"].shape[-1], item["image0"].shape[-2])
        H = item["H_0to1"].numpy().astype(np.float64)
        return repeatability(keypoints0, keypoints1, H, size, size, threshold)
    keypoints0 = torch.as_tensor(np.asarray(keypoints0), dtype=torch.float32).reshape(-1, 2)
    keypoints1 = torch.as_tensor(np.asarray(keypoints1), dtype=torch.float32).reshape(-1, 2)
    mapped0, visible0 = correspond(item, keypoints0)
    _, visible1 = correspond(reverse_pair(item), keypoints1)
    if not visible0.any() or not visible1.any():
        return 0.0
    distance = torch.cdist(mapped0[visible0], keypoints1[visible1])
    nearest1, nearest0 = distance.argmin(1), distance.argmin(0)
    mutual = nearest0[nearest1] == torch.arange(len(nearest1))
    close = distance[torch.arange(len(nearest1)), nearest1] <= threshold
    return float((mutual & close).sum()) / min(int(visible0.sum()), int(visible1.sum()))


def detector_validation(
    model: RaCoModel, pairs: Any, max_keypoints: int = 512, threshold: float = 3.0
) -> dict[str, float]:
    """Mean repeatability at ``threshold`` px of ``max_keypoints`` detections on fixed held-out pairs of any
    stream (``score``), and at 1.2 px (see :func:`pair_repeatability`)."""
    total3, total1 = 0.0, 0.0
    device = next(model.parameters()).device
    for index in range(len(pairs)):
        item = pairs[index]
        output = model(torch.stack([item["image0"], item["image1"]]).to(device), max_keypoints)
        keypoints = output["keypoints"].cpu().numpy()
        total3 += pair_repeatability(item, keypoints[0], keypoints[1], threshold)
        total1 += pair_repeatability(item, keypoints[0], keypoints[1], 1.2)
    count = max(1, len(pairs))
    return {"score": total3 / count, "repeatability@1.2px": total1 / count}


# -------------------------------------------------------------------------------------------- ranker


def soft_ranks(scores: Tensor, temperature: float) -> Tensor:
    """Differentiable ranks, 1 for the highest score: ``r_i = 1 + sum_{j != i} sigmoid((s_j - s_i) / tau)``.

    Args:
        scores: ``(N,)``.
        temperature: ``tau`` (in score units); small values approach hard ranks.

    Returns:
        ``(N,)`` soft ranks in ``[1, N]``.
    """
    difference = (scores[None, :] - scores[:, None]) / temperature
    return 0.5 + torch.sigmoid(difference).sum(1)  # the diagonal adds sigmoid(0) = 0.5


@dataclass
class RankerLoss:
    """Stage-2 loss (see the module docstring).

    Attributes:
        detector: the frozen detector whose keypoints the ranker learns to order.
        keypoints: detections per view (the candidate pool the ranker orders).
        extra: Shi-Tomasi corners per view added to the pool (other detectors' kind of keypoint).
        radius: keypoints closer than this after reprojection count as paired.
        temperature: soft-rank temperature.
        pull_weight: weight of the pull loss.
    """

    detector: RaCoModel
    keypoints: int = 512
    extra: int = 256
    radius: float = 3.0
    temperature: float = 0.1
    pull_weight: float = 1.0

    def __call__(self, model: RankerModel, batch: dict[str, Any]) -> dict[str, Tensor]:
        """``batch``: pairs of any stream, from :func:`~tiepoint_lab.data.batching.collate_pairs` (or torch's
        default collate of homography pairs)."""
        images = torch.cat([batch["image0"], batch["image1"]])
        pairs, height, width = batch["image0"].shape[0], images.shape[-2], images.shape[-1]
        with torch.no_grad():
            points = torch.cat(
                [self.detector(images, self.keypoints)["keypoints"], _corners(images, self.extra)], 1
            )
            mapped, visible = _to_other(batch, reverse_pair(batch), points)
        scores = model.score(images, points)  # (2B, N)
        spearman, pull, counted = images.new_zeros(()), images.new_zeros(()), 0
        for b in range(pairs):
            p0, p1 = points[b], points[pairs + b]
            with torch.no_grad():
                projected, back = mapped[b], mapped[pairs + b]
                valid0 = visible[b] & _inside(projected, height, width)
                valid1 = visible[pairs + b] & _inside(back, height, width)
                distance = torch.cdist(torch.nan_to_num(projected, nan=1e6, posinf=1e6, neginf=-1e6), p1)
                distance[~valid0] = float("inf")
                distance[:, ~valid1] = float("inf")
                d0, n0 = distance.min(1)
                n1 = distance.argmin(0)
                mutual = (n1[n0] == torch.arange(len(p0))) & (d0 < self.radius)
                i0 = torch.nonzero(mutual)[:, 0]
                i1 = n0[i0]
            s0, s1 = scores[b][valid0], scores[pairs + b][valid1]
            if len(i0) < 2 or len(s0) < 4 or len(s1) < 4:
                continue
            r0 = soft_ranks(s0, self.temperature) / len(s0)
            r1 = soft_ranks(s1, self.temperature) / len(s1)
            # positions of the paired keypoints inside the visible subsets
            where0 = torch.cumsum(valid0.long(), 0) - 1
            where1 = torch.cumsum(valid1.long(), 0) - 1
            a, c = where0[i0], where1[i1]
            spearman = spearman + ((r0[a] - r1[c]) ** 2).mean()
            matched0 = torch.zeros(len(s0), dtype=torch.bool)
            matched0[a] = True
            matched1 = torch.zeros(len(s1), dtype=torch.bool)
            matched1[c] = True
            pull = pull + _pull(r0, matched0) + _pull(r1, matched1)
            counted += 1
        counted = max(counted, 1)
        spearman, pull = spearman / counted, pull / counted
        return {"total": spearman + self.pull_weight * pull, "spearman": spearman, "pull": pull}


def _pull(ranks: Tensor, matched: Tensor) -> Tensor:
    """Paired keypoints toward rank 1 (normalised rank 0), unpaired ones toward rank N (normalised 1)."""
    loss = ranks[matched].pow(2).mean()
    if (~matched).any():
        loss = loss + (1 - ranks[~matched]).pow(2).mean()
    return loss


def _corners(images: Tensor, count: int) -> Tensor:
    """``(B, count, 2)`` Shi-Tomasi corners of each image (cv2.goodFeaturesToTrack), random when too few."""
    import cv2

    result = []
    for image in images:
        gray = (
            (image.mean(0) * 255).byte().cpu().numpy()
            if image.shape[0] == 3
            else (image[0] * 255).byte().cpu().numpy()
        )
        corners = cv2.goodFeaturesToTrack(gray, count, 0.001, 3, blockSize=5)
        corners = np.zeros((0, 2), np.float32) if corners is None else corners.reshape(-1, 2)
        if len(corners) < count:
            rng = np.random.default_rng(len(corners))
            fill = rng.uniform(8, [gray.shape[1] - 9, gray.shape[0] - 9], (count - len(corners), 2)).astype(
                np.float32
            )
            corners = np.concatenate([corners, fill])
        result.append(torch.from_numpy(corners[:count]))
    return torch.stack(result).to(images.device, images.dtype)


def ranker_validation(
    model: RankerModel, detector: RaCoModel, pairs: Any, pool: int = 1024, budget: int = 256
) -> dict[str, float]:
    """Repeatability@3 px of ``budget`` keypoints out of ``pool`` detections, ordered by the ranker
    (``score``) and by the detector (``detector``), on fixed held-out pairs of any stream."""
    ranked, plain = 0.0, 0.0
    for index in range(len(pairs)):
        item = pairs[index]
        images = torch.stack([item["image0"], item["image1"]])
        keypoints = detector(images, pool)["keypoints"]
        order = model.score(images, keypoints).argsort(dim=1, descending=True)[:, :budget]
        chosen = torch.gather(keypoints, 1, order[..., None].expand(-1, -1, 2)).numpy()
        ranked += pair_repeatability(item, chosen[0], chosen[1])
        plain += pair_repeatability(item, keypoints[0, :budget].numpy(), keypoints[1, :budget].numpy())
    count = max(1, len(pairs))
    return {"score": ranked / count, "detector": plain / count}


# ------------------------------------------------------------------------------------------- driver


def train_raco(
    stage: str,
    photos: str | Path,
    out: str | Path,
    steps: int = 1500,
    batch_size: int = 4,
    crop: int = 192,
    learning_rate: float = 3e-3,
    keypoints: int = 256,
    validation_pairs: int = 24,
    detector: str | Path | None = None,
    device: str = "cpu",
    workers: int = 1,
    seed: int = 0,
    validate_every: int = 250,
    stream: str = "homography",
) -> dict[str, float]:
    """Train one RaCo stage on the photo corpus (resumes a run in ``out``); returns the last validation.

    Args:
        stage: ``"detector"`` (backbone, score and covariance heads) or ``"ranker"`` (needs ``detector``: the
            weights file of stage 1; default the shipped ``tiepoint/weights/raco.pt``).
        photos: the corpus built by ``tiepoint-lab data photos``.
        out: the run directory (see :mod:`tiepoint_lab.train.trainer`).
        stream: the training and held-out pairs, a name of :data:`~tiepoint_lab.data.mix.STREAMS`
            (``"mix"``: homographies, relit photos and 3D scenes), with full in-plane rotations.
    """
    if stage not in ("detector", "ranker"):
        raise OptionError(f"stage must be 'detector' or 'ranker', got {stage!r}")
    train_photos, val_photos = list_photos(photos, "train"), list_photos(photos, "val")
    spec = stream_spec(stream, ROTATION)
    dataset = make_stream(
        spec,
        train_photos,
        size=(crop, crop),
        seed=seed,
        length=max(len(train_photos), 8 * batch_size),
        rotation_deg=ROTATION,
    )
    held_out = held_out_pairs(val_photos, crop, seed, validation_pairs, stream=spec, rotation_deg=ROTATION)
    config = recipe_config(
        steps, batch_size, learning_rate, seed, validate_every, workers, device, warmup_steps=min(100, steps)
    )
    describe: dict[str, Any] = {
        "data": corpus_record(
            photos,
            train_photos,
            val_photos,
            crop=crop,
            augmentation=(
                "random homography with +-180 deg rotation, scale 0.6-1.6, perspective 0.1; Photometric()"
            ),
            stream=spec,
        ),
        "command": command_line(),
    }
    seed_all(seed)
    if stage == "detector":
        model: torch.nn.Module = RaCoModel(RaCoConfig())
        loss = DetectorLoss(keypoints=keypoints)
        describe.update(
            model="raco-detector",
            architecture=asdict(model.config),
            loss=asdict(loss),
            parameters=sum(p.numel() for p in model.parameters()),
        )
        validate = lambda m: detector_validation(m, held_out)
    else:
        frozen = RaCoModel.from_pretrained(detector).eval()
        for parameter in frozen.parameters():
            parameter.requires_grad_(False)
        model = RankerModel(RankerConfig())
        loss = RankerLoss(frozen, keypoints=2 * keypoints)
        describe.update(
            model="raco-ranker",
            architecture=asdict(model.config),
            detector=str(detector or "shipped raco.pt"),
            loss={
                "keypoints": loss.keypoints,
                "extra": loss.extra,
                "radius": loss.radius,
                "temperature": loss.temperature,
                "pull_weight": loss.pull_weight,
            },
            parameters=sum(p.numel() for p in model.parameters()),
        )
        validate = lambda m: ranker_validation(m, frozen, held_out)
    trainer = Trainer(model, dataset, loss, validate, config, out, describe, collate_fn=collate_pairs)
    return trainer.run()


def ship_raco(
    run: str | Path, stage: str, benchmark: dict[str, Any] | None = None, destination: Path | None = None
) -> Path:
    """Copy a run's best weights into the package (``raco.pt`` or ``raco_ranker.pt``) with a JSON training
    record (data, architecture, steps, time, command, validation and, when given, benchmark scores)."""
    if stage not in ("detector", "ranker"):
        raise OptionError(f"stage must be 'detector' or 'ranker', got {stage!r}")
    name = "raco" if stage == "detector" else "raco_ranker"
    return ship_run(run, destination or WEIGHTS_DIR / f"{name}.pt", benchmark)
