"""Classical features from OpenCV: SIFT (RootSIFT descriptors), ORB and AKAZE.

These are the baselines that every learned method in tiepoint is held against.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..io.image import image_size, to_gray
from ..types import Features
from .base import Extractor, top_k


def _keypoint_arrays(keypoints: tuple[cv2.KeyPoint, ...]) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV keypoints to ``(N, 2)`` float32 positions and ``(N,)`` float32 responses."""
    if not keypoints:
        return np.zeros((0, 2), np.float32), np.zeros((0,), np.float32)
    points = np.array([kp.pt for kp in keypoints], dtype=np.float32)
    responses = np.array([kp.response for kp in keypoints], dtype=np.float32)
    return points, responses


class _OpenCVExtractor(Extractor):
    """An OpenCV detector-descriptor: subclasses build the detector from their config in :meth:`_detector`."""

    def _detector(self) -> cv2.Feature2D:
        raise NotImplementedError

    def _normalise(self, descriptors: np.ndarray) -> np.ndarray:
        """The stored descriptors from OpenCV's (as they are, unless a subclass normalises them)."""
        return descriptors

    def _extract(self, image: np.ndarray) -> Features:
        detector = self._detector()
        keypoints, descriptors = detector.detectAndCompute(to_gray(image), None)
        points, responses = _keypoint_arrays(keypoints)
        if descriptors is None:
            descriptors = np.zeros((0, detector.descriptorSize()), np.uint8 if self.binary else np.float32)
        return Features(points, responses, self._normalise(descriptors), image_size(image))


class SIFT(_OpenCVExtractor):
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

    def _detector(self) -> cv2.Feature2D:
        c = self.config
        return cv2.SIFT_create(
            nfeatures=c.max_keypoints,
            nOctaveLayers=c.n_octave_layers,
            contrastThreshold=c.contrast_threshold,
            edgeThreshold=c.edge_threshold,
        )

    def _normalise(self, descriptors: np.ndarray) -> np.ndarray:
        descriptors = descriptors.astype(np.float32)
        if self.config.root:
            return np.sqrt(descriptors / np.maximum(descriptors.sum(1, keepdims=True), 1e-12))
        descriptors /= np.maximum(np.linalg.norm(descriptors, axis=1, keepdims=True), 1e-12)
        return descriptors


class ORB(_OpenCVExtractor):
    """OpenCV ORB: FAST keypoints on an image pyramid with 256-bit rotated BRIEF descriptors."""

    name = "orb"
    binary = True

    @dataclass
    class Config(Extractor.Config):
        scale_factor: float = 1.2
        n_levels: int = 8
        fast_threshold: int = 10

    def _detector(self) -> cv2.Feature2D:
        c = self.config
        return cv2.ORB_create(
            nfeatures=c.max_keypoints,
            scaleFactor=c.scale_factor,
            nlevels=c.n_levels,
            fastThreshold=c.fast_threshold,
        )


class AKAZE(_OpenCVExtractor):
    """OpenCV AKAZE: nonlinear-scale-space keypoints with 486-bit M-LDB descriptors."""

    name = "akaze"
    binary = True

    @dataclass
    class Config(Extractor.Config):
        threshold: float = 0.0005
        """Detector response threshold; lower finds more keypoints (the top ``max_keypoints`` are kept)."""
        n_octaves: int = 4
        n_octave_layers: int = 4

    def _detector(self) -> cv2.Feature2D:
        c = self.config
        return cv2.AKAZE_create(threshold=c.threshold, nOctaves=c.n_octaves, nOctaveLayers=c.n_octave_layers)


class ASIFT(SIFT):
    """ASIFT through OpenCV's ``cv2.AffineFeature``: SIFT on every simulated tilt view of the image (tilts
    ``sqrt(2) ** k`` up to ``sqrt(2) ** max_tilt``, longitudes every ``72 / t`` degrees), all views described
    up front; a peer of the on-demand view synthesis (:mod:`tiepoint.matchers.ondemand`). ``max_keypoints``
    bounds each view, as SIFT's does; ``max_total`` bounds the pooled set (the strongest kept), which a
    brute-force matcher compares in one matrix."""

    name = "asift"

    @dataclass
    class Config(SIFT.Config):
        max_tilt: int = 4
        """Largest tilt exponent: tilts up to ``sqrt(2) ** max_tilt`` (4: tilts up to 4, as ASIFT's paper)."""
        max_total: int = 8192
        """The most keypoints kept over all views, those with the highest responses."""

    def _detector(self) -> cv2.Feature2D:
        return cv2.AffineFeature.create(super()._detector(), maxTilt=self.config.max_tilt)

    def extract_resized(self, image: np.ndarray) -> Features:
        return top_k(self._extract(image), self.config.max_total)
