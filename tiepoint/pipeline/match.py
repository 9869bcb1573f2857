"""Match one pair of images and keep everything: geometry, a figure, feature and match files, a summary.

This is what ``tiepoint match A B`` runs. The HDF5 files follow the layout of :mod:`tiepoint.io.h5`, so
the result can be read back with :func:`~tiepoint.io.h5.read_features` and
:func:`~tiepoint.io.h5.read_matches`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .. import api
from ..errors import EstimationError
from ..geometry.reliability import NAMES
from ..io.files import atomic_path, write_json
from ..io.h5 import write_features, write_matches
from ..io.image import load_image
from ..types import Features, Geometry, Matches
from ..viz import plot_matches

ON_DEMAND_KEYS = ("stage", "solved", "verdict", "stages_tried", "views0", "views1")
"""What matching on demand (:mod:`~tiepoint.matchers.ondemand`) records in ``Matches.info``."""


def _on_demand_line(info: dict[str, Any]) -> str:
    """One line on how matching on demand went: the stage and the views that solved the pair, or why none
    did."""
    if not info["solved"]:
        tried = ", ".join(info["stages_tried"])
        return f"matching on demand: no stage solved the pair ({tried}): {info['verdict']}"
    views = "; ".join(
        f"image {image}: " + ", ".join(f"{label} ({count})" for label, count in info[f"views{image}"].items())
        for image in (0, 1)
    )
    return f"matching on demand: solved at stage {info['stage']} by the inliers of {views}"


@dataclass
class PairResult:
    """The outcome of :func:`match_pair`.

    Attributes:
        names: the names of the two images in the output files.
        matches: all matches.
        geometry: the estimated model, or ``None`` when none was asked for or none could be found; an
            estimated model may be unreliable (:attr:`Geometry.reliable <tiepoint.types.Geometry.reliable>`).
        failure: why no geometry was found, if so.
        files: the written files by kind (``figure``, ``features``, ``matches``, ``summary``).
    """

    names: tuple[str, str]
    matches: Matches
    geometry: Geometry | None
    failure: str | None
    files: dict[str, Path]
    orientation: str = "stored"
    """How the pixels were read: ``"stored"`` (as in the file) or ``"exif"`` (turned upright)."""

    @property
    def reliable(self) -> bool | None:
        """Whether a reliable model was found; ``None`` when no model was asked for."""
        if self.geometry is None:
            return None if self.failure is None else False
        return self.geometry.reliable

    @property
    def exit_status(self) -> int:
        """The exit status of ``tiepoint match``: 1 when a model was asked for and no reliable one was found
        (estimation failed, or the model's inliers could be chance), else 0."""
        return 1 if self.reliable is False else 0

    def to_dict(self) -> dict[str, Any]:
        m, g = self.matches, self.geometry
        return {
            "images": list(self.names),
            "method": m.method,
            "orientation": self.orientation,
            "num_keypoints": [None if f is None else len(f) for f in (m.features0, m.features1)],
            "num_matches": len(m),
            "rotation1_deg": m.info.get("rotation1_deg", 0),
            "zoom1": m.info.get("zoom1", 1.0),
            "aligned": m.info.get("aligned", False),
            **({"on_demand": {key: m.info[key] for key in ON_DEMAND_KEYS}} if "stage" in m.info else {}),
            "timings_s": m.timings,
            "geometry": None
            if g is None
            else {
                "model": g.model,
                "estimator": g.estimator,
                "threshold_px": g.threshold,
                "num_inliers": g.num_inliers,
                "matrix": g.matrix.tolist(),
                "reliable": g.reliable,
                "reason": g.reason,
                "log10_nfa": None if g.log10_nfa is None or not math.isfinite(g.log10_nfa) else g.log10_nfa,
            },
            "reliable": self.reliable,
            "failure": self.failure,
            "files": {kind: str(path) for kind, path in self.files.items()},
        }

    def summary(self) -> str:
        m, g = self.matches, self.geometry
        lines = [f"{self.names[0]} <-> {self.names[1]}: {len(m)} matches with {m.method}"]
        rotation1, zoom1 = m.info.get("rotation1_deg", 0), m.info.get("zoom1", 1.0)
        if rotation1:
            lines.append(f"image 1 matched turned {rotation1} degrees counter-clockwise (view search)")
        if zoom1 != 1:
            lines.append(f"matched with image 1 zoomed {zoom1:g}x relative to image 0 (view search)")
        if "stage" in m.info:
            lines.append(_on_demand_line(m.info))
        if m.info.get("aligned", False):
            lines.append("matched again with image 1 warped onto image 0 by the first homography (align)")
        if g is not None and not g.reliable:
            count, _, why = g.reason.partition(": ")
            name = NAMES.get(g.model, g.model).split(" ", 1)[-1]
            lines.append(f"no reliable {name} ({count})" + (f": {why}" if why else ""))
        elif g is not None:
            lines.append(f"{g.model} ({g.estimator}, {g.threshold:g} px): {g.num_inliers} inliers")
            lines.append(
                np.array2string(g.matrix / (g.matrix[2, 2] if g.model == "homography" else 1), precision=5)
            )
        elif self.failure:
            lines.append(f"no geometry: {self.failure}")
        lines += [f"{kind}: {path}" for kind, path in self.files.items()]
        return "\n".join(lines)


def image_names(path0: Path, path1: Path) -> tuple[str, str]:
    """Names for two image files: their paths relative to their deepest common folder."""
    path0, path1 = Path(path0).resolve(), Path(path1).resolve()
    common = Path(os.path.commonpath([path0.parent, path1.parent]))
    return path0.relative_to(common).as_posix(), path1.relative_to(common).as_posix()


def _features_of(matches: Matches, side: int) -> Features:
    """The features an image was matched with; for dense methods, its matched keypoints without
    descriptors."""
    features = matches.features0 if side == 0 else matches.features1
    if features is not None:
        return features
    keypoints = matches.keypoints0 if side == 0 else matches.keypoints1
    size = matches.image_size0 if side == 0 else matches.image_size1
    return Features(keypoints, matches.scores, np.zeros((len(keypoints), 0), np.float32), size)


def match_pair(
    image0: str | Path,
    image1: str | Path,
    method: str = api.DEFAULT_METHOD,
    model: str | None = "homography",
    estimator: str = "poselib",
    threshold: float | None = None,
    output_dir: str | Path | None = "outputs/match",
    orientation: str = "stored",
    **options: Any,
) -> PairResult:
    """Match two image files, estimate a model, and write the figure, HDF5 files and a JSON summary.

    Args:
        image0, image1: image files.
        method: a registered method name.
        model: ``"homography"``, ``"fundamental"`` or ``None`` for matches only.
        estimator: robust estimator name.
        threshold: inlier threshold in pixels (the model's default when ``None``).
        output_dir: folder for ``matches.png``, ``features.h5``, ``matches.h5``, ``summary.json``;
            ``None`` writes nothing.
        orientation: ``"stored"`` reads the pixels as the files store them (as COLMAP and hloc do);
            ``"exif"`` turns them as the EXIF orientation tag says (as an image viewer shows them). Keypoints
            refer to the pixels as read.
        **options: options of the method.
    """
    names = image_names(Path(image0), Path(image1))
    if orientation != "stored":
        image0, image1 = (load_image(path, orientation=orientation) for path in (image0, image1))
    matches = api.match(image0, image1, method=method, **options)
    geometry, failure = None, None
    if model is not None:
        try:
            geometry = api.estimate(matches, model, threshold=threshold, estimator=estimator)
        except EstimationError as error:
            failure = str(error)
    result = PairResult(names, matches, geometry, failure, {}, orientation)
    if output_dir is None:
        return result

    output_dir = Path(output_dir)
    title = matches.method + (f", {geometry.model}" if geometry else "")
    if geometry is not None and not geometry.reliable:
        title += " (not reliable)"
    result.files["figure"] = output_dir / "matches.png"
    plot_matches(
        image0,
        image1,
        matches.keypoints0,
        matches.keypoints1,
        inliers=None if geometry is None else geometry.inliers,
        path=result.files["figure"],
        title=title,
    )

    result.files["features"] = output_dir / "features.h5"
    with atomic_path(result.files["features"]) as tmp, h5py.File(tmp, "w") as file:
        for side, name in enumerate(names):
            write_features(file, name, _features_of(matches, side), attrs={"method": matches.method})

    result.files["matches"] = output_dir / "matches.h5"
    indices = (
        matches.indices if matches.indices is not None else np.repeat(np.arange(len(matches))[:, None], 2, 1)
    )
    with atomic_path(result.files["matches"]) as tmp, h5py.File(tmp, "w") as file:
        write_matches(file, names[0], names[1], indices, matches.scores, len(_features_of(matches, 0)))

    result.files["summary"] = output_dir / "summary.json"
    write_json(result.files["summary"], result.to_dict())
    return result
