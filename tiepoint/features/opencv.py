"""Classical features from OpenCV: SIFT (RootSIFT descriptors), ORB and AKAZE.

These are the baselines that every learned method in tiepoint is held against.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..io.image import image_size, to_gray
from ..types import Features
from .base import Extractor


def _keypoint_arrays(keypoints: tuple[cv2.KeyPoint, ...]) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV keypoints to ``(N, 2)`` float32 positions and ``(N,)`` float32 responses."""
    if not keypoints:
        return np.zeros((0, 2), np.float32), np.zeros((0,), np.float32)
    points = np.array([kp.pt for kp in keypoints], dtype=np.float32)
    responses = np.array([kp.response for kp in keypoints], dtype=np.float32)
    return points, responses


def _detect_and_describe(detector: cv2.Feature2D, image: np.ndarray, descriptor_bytes: int, binary: bool):
    """Run an OpenCV detector-descriptor; returns positions, responses and raw descriptors."""
    keypoints, descriptors = detector.detectAndCompute(to_gray(image), None)
    points, responses = _keypoint_arrays(keypoints)
    if descriptors is None:
        descriptors = np.zeros((0, descriptor_bytes), np.uint8 if binary else np.float32)
    return points, responses, descriptors


class SIFT(Extractor):
    """OpenCV SIFT keypoints with RootSIFT (or plain, L2-normalised) 128-d descriptors."""

    name = "sift"

    @dataclass
    class Config(Extractor.Config):
        contrast_threshold: float = 0.01
        """Lowe's DoG contrast threshold; lower finds more keypoints in low-contrast images."""
        edge_threshold: float = 10.0
        n_octave_layers: int = 3
        root: bool = True
        """RootSIFT (Hellinger kernel) descriptors; plain SIFT normalised to unit length when False."""

    def _extract(self, image: np.ndarray) -> Features:
        c = self.config
        detector = cv2.SIFT_create(
            nfeatures=c.max_keypoints,
            nOctaveLayers=c.n_octave_layers,
            contrastThreshold=c.contrast_threshold,
            edgeThreshold=c.edge_threshold,
        )
        points, responses, descriptors = _detect_and_describe(detector, image, 128, binary=False)
        descriptors = descriptors.astype(np.float32)
        if c.root:
            descriptors = np.sqrt(descriptors / np.maximum(descriptors.sum(1, keepdims=True), 1e-12))
        else:
            descriptors /= np.maximum(np.linalg.norm(descriptors, axis=1, keepdims=True), 1e-12)
        return Features(points, responses, descriptors, image_size(image))


class ORB(Extractor):
    """OpenCV ORB: FAST keypoints on an image pyramid with 256-bit rotated BRIEF descriptors."""

    name = "orb"
    binary = True

    @dataclass
    class Config(Extractor.Config):
        scale_factor: float = 1.2
        n_levels: int = 8
        fast_threshold: int = 10

    def _extract(self, image: np.ndarray) -> Features:
        c = self.config
        detector = cv2.ORB_create(
            nfeatures=c.max_keypoints,
            scaleFactor=c.scale_factor,
            nlevels=c.n_levels,
            fastThreshold=c.fast_threshold,
        )
        points, responses, descriptors = _detect_and_describe(detector, image, 32, binary=True)
        return Features(points, responses, descriptors, image_size(image))


class AKAZE(Extractor):
    """OpenCV AKAZE: nonlinear-scale-space keypoints with 486-bit M-LDB descriptors."""

    name = "akaze"
    binary = True

    @dataclass
    class Config(Extractor.Config):
        threshold: float = 0.0005
        """Detector response threshold; lower finds more keypoints (the top ``max_keypoints`` are kept)."""
        n_octaves: int = 4
        n_octave_layers: int = 4

    def _extract(self, image: np.ndarray) -> Features:
        c = self.config
        detector = cv2.AKAZE_create(threshold=c.threshold, nOctaves=c.n_octaves, nOctaveLayers=c.n_octave_layers)
        points, responses, descriptors = _detect_and_describe(detector, image, 61, binary=True)
        return Features(points, responses, descriptors, image_size(image))
