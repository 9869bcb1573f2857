"""Training losses for local features and matchers.

* :func:`dual_softmax_loss`: metric learning on descriptors of corresponding points (CLIDD, and the
  coarse level of Efficient LoFTR).
* :func:`procrustes_distillation_loss`: transfers the geometry of a teacher's descriptor space into a
  smaller student space through a low-rank reduction and an orthogonal Procrustes alignment.
* :func:`unfold_softmax_loss`: distils a teacher's keypoints into a detection head, one softmax per cell.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "dual_softmax_loss",
    "keypoint_cell_targets",
    "procrustes_distillation_loss",
    "unfold_softmax_loss",
]


def dual_softmax_loss(
    descriptors0: Tensor, descriptors1: Tensor, valid: Tensor | None = None, temperature: float = 0.1
) -> Tensor:
    """Negative log-likelihood of the true pairs under the dual softmax.

    Row ``i`` of ``descriptors0`` corresponds to row ``i`` of ``descriptors1``; every other row is a
    negative. ``P = softmax_rows(S / t) * softmax_cols(S / t)`` with ``S`` the cosine similarities.

    Args:
        descriptors0: ``(B, N, D)`` L2-normalised.
        descriptors1: ``(B, N, D)`` L2-normalised.
        valid: optional ``(B, N)`` bool; invalid rows are neither positives nor negatives.
        temperature: ``t``.

    Returns:
        Scalar: ``-mean log P[i, i]`` over valid ``i``.
    """
    similarity = descriptors0 @ descriptors1.transpose(1, 2) / temperature  # (B, N, N)
    if valid is not None:
        pair_valid = valid[:, :, None] & valid[:, None, :]
        similarity = similarity.masked_fill(~pair_valid, -1e4)
    log_p = F.log_softmax(similarity, dim=2) + F.log_softmax(similarity, dim=1)
    diagonal = log_p.diagonal(dim1=1, dim2=2)  # (B, N)
    if valid is None:
        return -diagonal.mean()
    return -(diagonal * valid).sum() / valid.sum().clamp(min=1)


def procrustes_distillation_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """Orthogonal-Procrustes distillation of descriptor structure.

    The teacher's descriptors are reduced to the student's dimension by their top right singular vectors
    (a low-rank approximation of the teacher space) and re-normalised; the orthogonal matrix ``R`` that
    best maps the student onto them is solved in closed form (``R = U V^T`` from the SVD of
    ``student^T teacher_reduced``, without gradient), and the residual is penalised. The loss is invariant
    to any rotation of the student space, so it constrains only the relative geometry of the descriptors.

    Args:
        student: ``(N, D_s)`` L2-normalised student descriptors.
        teacher: ``(N, D_t)`` teacher descriptors of the same points, ``D_t >= D_s``.

    Returns:
        Scalar: ``mean_i ||student_i R - reduced_i||^2``.
    """
    if teacher.shape[1] < student.shape[1]:
        raise ValueError(f"teacher dimension {teacher.shape[1]} is below the student's {student.shape[1]}")
    with torch.no_grad():
        teacher = teacher.float()
        _, _, vh = torch.linalg.svd(teacher, full_matrices=False)
        reduced = F.normalize(teacher @ vh[: student.shape[1]].T, dim=1)
        u, _, vh_align = torch.linalg.svd(student.detach().float().T @ reduced, full_matrices=False)
        rotation = u @ vh_align
    return ((student.float() @ rotation - reduced) ** 2).sum(1).mean()


def keypoint_cell_targets(
    keypoints: list[Tensor], scores: list[Tensor], size: tuple[int, int], cell: int = 8
) -> Tensor:
    """Class targets of :func:`unfold_softmax_loss` from keypoint lists.

    Args:
        keypoints: per image, ``(N_i, 2)`` positions ``(x, y)`` in pixels.
        scores: per image, ``(N_i,)``; when several keypoints fall in one cell the highest score wins.
        size: ``(H, W)`` of the images, multiples of ``cell``.
        cell: cell side.

    Returns:
        ``(B, H / cell, W / cell)`` long: the index ``dy * cell + dx`` of the cell's keypoint, or
        ``cell * cell`` (the "no keypoint" class).
    """
    height, width = size
    targets = []
    for points, point_scores in zip(keypoints, scores, strict=True):
        heat = torch.zeros(height * width, device=points.device)
        pixel = points.round().long()
        inside = (pixel[:, 0] >= 0) & (pixel[:, 0] < width) & (pixel[:, 1] >= 0) & (pixel[:, 1] < height)
        pixel, point_scores = pixel[inside], point_scores[inside].float()
        heat.scatter_reduce_(0, pixel[:, 1] * width + pixel[:, 0], point_scores + 1.0, reduce="amax")
        cells = F.unfold(heat.view(1, 1, height, width), cell, stride=cell)[0]  # (cell^2, cells)
        best, index = cells.max(0)
        index[best == 0] = cell * cell
        targets.append(index.view(height // cell, width // cell))
    return torch.stack(targets)


def unfold_softmax_loss(logits: Tensor, targets: Tensor, cell: int = 8) -> Tensor:
    """Cross-entropy of a softmax over each ``cell x cell`` window of the logits plus a "none" class.

    The "none" class has a fixed logit of 0, so the detection logits keep an absolute meaning: a pixel
    whose logit is above 0 beats "no keypoint here".

    Args:
        logits: ``(B, 1, H, W)`` detection logits, ``H`` and ``W`` multiples of ``cell``.
        targets: ``(B, H / cell, W / cell)`` from :func:`keypoint_cell_targets`.
        cell: the window side.

    Returns:
        Scalar mean cross-entropy over cells.
    """
    batch, _, _height, _width = logits.shape
    windows = F.unfold(logits, cell, stride=cell)  # (B, cell^2, cells)
    windows = torch.cat([windows, windows.new_zeros(batch, 1, windows.shape[-1])], 1)
    return F.cross_entropy(windows, targets.flatten(1))
