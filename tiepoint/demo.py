"""The main job on bundled defaults: match a real stereo pair with ground truth and score the result.

The pair is "Motorcycle" from the Middlebury 2014 stereo benchmark (Scharstein et al., GCPR 2014), as shipped
inside the scikit-image wheel (``skimage/data/motorcycle_{left,right}.png`` and ``motorcycle_disp.npz``:
images downsampled by 4 to 741×500, with a ground-truth disparity map and the calibration below, all taken
from ``skimage.data.stereo_motorcycle``). The images are rectified, so the true relative pose is a pure
sideways translation: ``R = I`` and ``t`` along ``-x``. The disparity map gives the true position in the
right image of every left pixel: ``x1 = x0 - d(x0, y0)``, ``y1 = y0``.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import api
from .geometry.accuracy import pose_error, rotation_error, translation_error
from .io.image import image_size, load_image
from .types import Camera, Geometry, Matches
from .viz import plot_matches

# Calibration of the downsampled pair, from the docstring of skimage.data.stereo_motorcycle.
_FOCAL = 994.978
_CX, _CY = 311.193, 254.877
_CX_OFFSET = 31.086  # principal point of the right camera is shifted by this in x (Middlebury's doffs)
_BASELINE_MM = 193.001


@dataclass
class StereoPair:
    """A rectified stereo pair with ground truth.

    Attributes:
        image0, image1: ``(H, W, 3)`` uint8 left and right images.
        path0, path1: where they were read from.
        disparity: ``(H, W)`` float32 left-image disparity in pixels (NaN where unknown).
        camera0, camera1: the two pinhole cameras.
        R, t: ground-truth relative pose (``X1 = R X0 + t``, unit ``t``).
    """

    image0: np.ndarray
    image1: np.ndarray
    path0: Path
    path1: Path
    disparity: np.ndarray
    camera0: Camera
    camera1: Camera
    R: np.ndarray
    t: np.ndarray

    def true_positions(self, keypoints0: np.ndarray) -> np.ndarray:
        """Ground-truth positions in image 1 of ``(M, 2)`` points of image 0; NaN where the disparity is
        unknown.

        The disparity is interpolated bilinearly and only where all four neighbouring pixels have one.
        """
        height, width = self.disparity.shape
        x, y = keypoints0[:, 0].astype(np.float64), keypoints0[:, 1].astype(np.float64)
        x0 = np.clip(np.floor(x).astype(int), 0, width - 2)
        y0 = np.clip(np.floor(y).astype(int), 0, height - 2)
        fx, fy = np.clip(x - x0, 0, 1), np.clip(y - y0, 0, 1)
        d = self.disparity
        disparity = (
            d[y0, x0] * (1 - fx) * (1 - fy)
            + d[y0, x0 + 1] * fx * (1 - fy)
            + d[y0 + 1, x0] * (1 - fx) * fy
            + d[y0 + 1, x0 + 1] * fx * fy
        )
        return np.stack([x - disparity, y], axis=1)


def motorcycle_pair() -> StereoPair:
    """Load the bundled Middlebury 2014 "Motorcycle" pair from the installed scikit-image wheel."""
    data = importlib.resources.files("skimage") / "data"
    path0, path1 = Path(str(data / "motorcycle_left.png")), Path(str(data / "motorcycle_right.png"))
    with np.load(str(data / "motorcycle_disp.npz")) as archive:
        disparity = archive["arr_0"].astype(np.float32)
    disparity[~np.isfinite(disparity)] = np.nan  # the file marks unknown disparity with inf
    image0, image1 = load_image(path0), load_image(path1)
    width, height = image_size(image0)
    camera0 = Camera(_FOCAL, _FOCAL, _CX, _CY, width, height)
    camera1 = Camera(_FOCAL, _FOCAL, _CX + _CX_OFFSET, _CY, width, height)
    return StereoPair(
        image0, image1, path0, path1, disparity, camera0, camera1, np.eye(3), np.array([-1.0, 0, 0])
    )


@dataclass
class DemoResult:
    """What :func:`run_demo` measured.

    Attributes:
        matches: the matches found.
        geometry: the estimated relative pose.
        rotation_error, translation_error, pose_error: degrees, against the ground truth.
        match_errors: ``(M,)`` pixel distance of each match to its true position (NaN without ground truth).
        figure: path of the PNG figure.
    """

    matches: Matches
    geometry: Geometry
    rotation_error: float
    translation_error: float
    pose_error: float
    match_errors: np.ndarray
    figure: Path

    def accuracy(self, threshold: float) -> float:
        """Fraction of matches with ground truth whose error is at most ``threshold`` pixels."""
        known = self.match_errors[np.isfinite(self.match_errors)]
        return float(np.mean(known <= threshold)) if len(known) else 0.0

    def summary(self) -> str:
        """A human-readable report of the run."""
        m, g = self.matches, self.geometry
        n0 = len(m.features0) if m.features0 is not None else "-"
        n1 = len(m.features1) if m.features1 is not None else "-"
        extract_ms = 500 * (m.timings.get("extract0", 0) + m.timings.get("extract1", 0))
        known = int(np.isfinite(self.match_errors).sum())
        np.set_printoptions(precision=4, suppress=True)
        return "\n".join(
            [
                (
                    f"pair: Middlebury 2014 'Motorcycle' stereo, {m.image_size0[0]}x{m.image_size0[1]} "
                    "(bundled in scikit-image)"
                ),
                (
                    f"method: {m.method}  keypoints: {n0} / {n1}  matches: {len(m)}  "
                    f"(extract {extract_ms:.0f} ms/image, match {1000 * m.timings.get('match', 0):.0f} ms)"
                ),
                f"relative pose ({g.estimator}, {g.threshold:g} px): {g.num_inliers} inliers of {len(m)}",
                f"R =\n{g.R}\nt = {g.t}",
                (
                    f"error vs ground truth: rotation {self.rotation_error:.3f} deg, translation direction "
                    f"{self.translation_error:.3f} deg, pose error (max) {self.pose_error:.3f} deg"
                ),
                (
                    f"matches vs ground-truth disparity ({known} with ground truth): "
                    f"{100 * self.accuracy(1):.1f}% within 1 px, {100 * self.accuracy(3):.1f}% within 3 px"
                ),
                f"figure: {self.figure}",
            ]
        )


def run_demo(
    method: str = api.DEFAULT_METHOD,
    output_dir: str | Path = "outputs/demo",
    estimator: str = "poselib",
    threshold: float = 1.0,
) -> DemoResult:
    """Match the bundled pair, estimate the relative pose, score both against the ground truth, draw a figure.

    The pair is matched twice and the second match is kept, so that its printed times leave out one-time costs
    (loading the model, building the fused CLIDD sampler on a machine's first use, about 30 s).

    Args:
        method: a registered method name.
        output_dir: where ``matches.png`` is written.
        estimator: robust estimator for the relative pose.
        threshold: its inlier threshold in pixels.
    """
    pair = motorcycle_pair()
    api.match(pair.path0, pair.path1, method=method)  # warm-up
    matches = api.match(pair.path0, pair.path1, method=method)
    geometry = api.estimate(
        matches, "relative_pose", pair.camera0, pair.camera1, threshold=threshold, estimator=estimator
    )
    errors = np.linalg.norm(pair.true_positions(matches.keypoints0) - matches.keypoints1, axis=1)
    figure = Path(output_dir) / "matches.png"
    plot_matches(
        pair.image0,
        pair.image1,
        matches.keypoints0,
        matches.keypoints1,
        inliers=geometry.inliers,
        path=figure,
        title=f"{matches.method}, relative pose",
    )
    return DemoResult(
        matches=matches,
        geometry=geometry,
        rotation_error=rotation_error(geometry.R, pair.R),
        translation_error=translation_error(geometry.t, pair.t),
        pose_error=pose_error(geometry.R, geometry.t, pair.R, pair.t),
        match_errors=errors,
        figure=figure,
    )
