"""Camera poses of a reconstruction against ground truth: alignment by a similarity and per-image errors.

Use it to score a model that :func:`tiepoint.pipeline.reconstruct.reconstruct` wrote against known cameras.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import DatasetError
from ..geometry.accuracy import rotation_error
from ..io.colmap import import_pycolmap

Poses = Mapping[str, tuple[np.ndarray, np.ndarray]]
"""``{image name: (R, t)}``, world-to-camera: ``x_cam = R X + t``."""


def camera_centres(poses: Poses, names: Sequence[str]) -> np.ndarray:
    """``(M, 3)`` camera centres ``C = -R^T t`` of ``names``."""
    return np.array([-poses[n][0].T @ poses[n][1] for n in names], np.float64).reshape(-1, 3)


def pose_errors(estimated: Poses, truth: Poses) -> dict[str, Any]:
    """Align estimated cameras to the ground truth by a similarity on their centres and measure the errors.

    Args:
        estimated: the reconstructed poses (at least 3 images, all in ``truth``).
        truth: the ground-truth poses.

    Returns:
        ``rotation_error_deg`` and ``centre_error`` (GT units) and ``centre_error_percent`` (of the ring
        radius), each with ``median``, ``mean`` and ``max``; ``per_image``; the similarity (``scale``,
        ``sim3`` ``(3, 4)``); ``aligned_centres`` ``(M, 3)`` and ``true_centres`` for figures.

    Raises:
        DatasetError: fewer than 3 images, or images without ground truth.
    """
    pycolmap = import_pycolmap()
    names = sorted(estimated)
    missing = [n for n in names if n not in truth]
    if missing:
        raise DatasetError(f"no ground truth for {', '.join(missing[:5])}")
    if len(names) < 3:
        raise DatasetError(f"a similarity alignment needs at least 3 cameras, got {len(names)}")
    source, target = camera_centres(estimated, names), camera_centres(truth, names)
    similarity = pycolmap.estimate_sim3d(source, target)
    if similarity is None:
        raise DatasetError("the camera centres are degenerate (collinear); no similarity alignment")
    S = np.asarray(similarity.rotation.matrix(), np.float64)
    aligned = (similarity.scale * (S @ source.T)).T + np.asarray(similarity.translation, np.float64)
    radius = float(
        np.linalg.norm(
            camera_centres(truth, sorted(truth)) - camera_centres(truth, sorted(truth)).mean(0), axis=1
        ).mean()
    )
    per_image = {}
    for i, name in enumerate(names):
        r_error = rotation_error(estimated[name][0] @ S.T, truth[name][0])
        c_error = float(np.linalg.norm(aligned[i] - target[i]))
        per_image[name] = {
            "rotation_error_deg": float(r_error),
            "centre_error": c_error,
            "centre_error_percent": 100 * c_error / radius,
        }

    def stats(key: str) -> dict[str, float]:
        values = np.array([v[key] for v in per_image.values()])
        return {"median": float(np.median(values)), "mean": float(values.mean()), "max": float(values.max())}

    return {
        "num_aligned": len(names),
        "rotation_error_deg": stats("rotation_error_deg"),
        "centre_error": stats("centre_error"),
        "centre_error_percent": stats("centre_error_percent"),
        "ring_radius": radius,
        "scale": float(similarity.scale),
        "sim3": np.asarray(similarity.matrix(), np.float64).tolist(),
        "per_image": per_image,
        "aligned_centres": aligned,
        "true_centres": target,
    }


def query_pose_errors(reference: Poses, queries: Poses, truth: Poses) -> dict[str, dict[str, float]]:
    """Errors of localized query cameras: the similarity that aligns the ``reference`` cameras (a model's) to
    the truth (:func:`pose_errors`) is applied to the ``queries``, so a wrong query does not move the
    alignment.

    Returns:
        Per query, ``rotation_error_deg``, ``centre_error`` (GT units) and ``centre_error_percent`` (of the
        radius of all the true centres, as in :func:`pose_errors`).
    """
    alignment = pose_errors(reference, truth)
    sim3 = np.asarray(alignment["sim3"], np.float64)
    S = sim3[:, :3] / alignment["scale"]
    errors = {}
    for name, (R, t) in queries.items():
        if name not in truth:
            raise DatasetError(f"no ground truth for {name}")
        centre = sim3[:, :3] @ (-R.T @ t) + sim3[:, 3]
        c_error = float(np.linalg.norm(centre - camera_centres(truth, [name])[0]))
        errors[name] = {
            "rotation_error_deg": rotation_error(R @ S.T, truth[name][0]),
            "centre_error": c_error,
            "centre_error_percent": 100 * c_error / alignment["ring_radius"],
        }
    return errors


def model_poses(model: Any) -> Poses:
    """``{name: (R, t)}`` of the registered images of a ``pycolmap.Reconstruction``."""
    poses = {}
    for image_id in model.reg_image_ids():
        image = model.image(image_id)
        pose = image.cam_from_world()
        poses[image.name] = (
            np.asarray(pose.rotation.matrix(), np.float64),
            np.asarray(pose.translation, np.float64),
        )
    return poses


__all__ = ["Poses", "camera_centres", "model_poses", "pose_errors", "query_pose_errors"]
