"""Benchmark sets made here, written in layouts that ``tiepoint bench`` reads: held-out 3D scenes and relit
versions of the real evaluation pairs.

* :func:`write_scene_benchmark`: pairs of :class:`~tiepoint_lab.data.scenes.ScenePairs` textured with the
  *val* photos only (never seen in training), in three bands of viewpoint change, each pair rendered twice:
  under the same mild daylight in both views (``plain``) and with a strong appearance change of view 1
  (``changed``). Written as PNGs and a SuperGlue/LoFTR pairs file (``pairs.txt``; the folder of ``name0``,
  e.g. ``hard-changed``, is the pair's group): ``tiepoint bench --dataset pairs:OUT/pairs.txt``.
* :func:`write_relit_homographies`: a copy of an Oxford-layout dataset whose images 2-6 are relit by the
  appearance model, ground truth unchanged: ``tiepoint bench --dataset oxford --root OUT``.
* :func:`write_relit_pairs`: a relative-pose dataset (the temple ring) with image 1 of every pair relit, as
  a pairs file: ``tiepoint bench --dataset pairs:OUT/pairs.txt``.

Each folder holds ``benchmark.json``: how it was made (seed, appearance, photos, per-pair facts), so a rerun
with the same arguments writes the same images. Nothing here is tuned on these sets; they are results.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tiepoint.errors import OptionError
from tiepoint.evaluation.datasets import Dataset
from tiepoint.io.files import atomic_path, write_json
from tiepoint.io.image import load_image
from tiepoint_lab.data.mix import TwoLooks

__all__ = [
    "BANDS",
    "optical_axis_angle_deg",
    "relit_appearance",
    "write_relit_homographies",
    "write_relit_pairs",
    "write_scene_benchmark",
]

BANDS: dict[str, tuple[float, float]] = {"easy": (0.0, 20.0), "medium": (20.0, 40.0), "hard": (40.0, 75.0)}
"""Bands of viewpoint change: the angle between the two optical axes, degrees (in-plane roll excluded)."""


def relit_appearance() -> Any:
    """The appearance change of the relit and ``changed`` benchmark images, ``Appearance.benchmark()``: every
    draw relights the image; night (about a third of the draws), colour, season, blur and JPEG at full
    strength; no cross-sensor rendering, which is a test of its own."""
    from tiepoint_lab.data.appearance import Appearance

    return Appearance.benchmark()


def optical_axis_angle_deg(T_0to1: np.ndarray) -> float:
    """The angle between the optical axes of two cameras, degrees (a roll about the axis does not count)."""
    R = np.asarray(T_0to1, dtype=np.float64)[:3, :3]
    return float(np.degrees(np.arccos(np.clip(R[2, 2], -1.0, 1.0))))


def _write_png(path: Path, image: np.ndarray) -> None:
    """Write an RGB float image in [0, 1] or uint8 image as PNG, atomically."""
    if image.dtype != np.uint8:
        image = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    with atomic_path(path) as temporary:
        ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"could not encode {path}")
        temporary.write_bytes(data.tobytes())


def _pairs_line(name0: str, name1: str, K0: np.ndarray, K1: np.ndarray, T: np.ndarray) -> str:
    numbers = np.concatenate([np.ravel(K0), np.ravel(K1), np.ravel(T)])
    return f"{name0} {name1} " + " ".join(f"{value:.10g}" for value in numbers)


def _prepare(out: str | os.PathLike, record: dict[str, Any]) -> Path:
    """The output folder; refuses one made with other settings (delete it or choose another). The settings
    include the appearance model's."""
    record["appearance"] = json.loads(json.dumps(dataclasses.asdict(relit_appearance())))
    out = Path(out)
    existing = out / "benchmark.json"
    if existing.is_file():
        made = json.loads(existing.read_text())
        if made.get("settings") != record:
            raise OptionError(
                f"{out} holds a benchmark made with other settings; delete it or choose another"
            )
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_scene_benchmark(
    photos: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    per_band: int = 34,
    seed: int = 2027,
    size: tuple[int, int] = (480, 640),
    roll_deg: float = 180.0,
) -> Path:
    """Held-out scene pairs in :data:`BANDS`, each rendered ``plain`` and ``changed`` (see the module).

    Args:
        photos: the textures: the corpus' *val* photos (``list_photos(root, "val")``).
        out: the folder to write.
        per_band: geometric pairs per band; the benchmark has ``2 * 3 * per_band`` pairs.
        seed: the seed of the pairs.
        size: ``(H, W)`` of the images.
        roll_deg: largest roll of camera 1 about its optical axis; 10 makes upright pairs, as most
            photographs are (camera 0 always rolls by at most 10 degrees).

    Returns:
        ``out / "pairs.txt"``.
    """
    from tiepoint_lab.data.appearance import Appearance
    from tiepoint_lab.data.scenes import ScenePairs

    if per_band < 1:
        raise OptionError(f"per_band must be at least 1, got {per_band}")
    settings = {
        "kind": "scenes",
        "photos": [Path(p).name for p in photos],
        "per_band": per_band,
        "seed": seed,
    }
    settings["size"] = list(size)
    if roll_deg != 180.0:  # the default is left out, so that earlier benchmarks keep their settings
        settings["roll_deg"] = roll_deg
    out = _prepare(out, settings)
    looks = {
        "plain": TwoLooks(Appearance.mild(), Appearance.mild()),
        "changed": TwoLooks(Appearance.mild(), relit_appearance()),
    }
    renderers = {
        look: ScenePairs(
            photos,
            size=size,
            seed=seed,
            max_rotation_deg=BANDS["hard"][1],
            roll_deg=roll_deg,
            appearance=model,
            length=1 << 30,
        )
        for look, model in looks.items()
    }
    chosen: dict[str, list[int]] = {band: [] for band in BANDS}
    index = 0
    geometry = renderers["plain"]
    while any(len(v) < per_band for v in chosen.values()):
        item = geometry[index]
        angle = optical_axis_angle_deg(item["T_0to1"].numpy())
        for band, (low, high) in BANDS.items():
            if low <= angle < high and len(chosen[band]) < per_band:
                chosen[band].append(index)
        index += 1
        if index > 200 * per_band:
            raise OptionError(
                f"could not fill the bands after {index} pairs: { ({b: len(v) for b, v in chosen.items()}) }"
            )
    lines, facts = [], []
    for band, indices in chosen.items():
        for number, index in enumerate(indices):
            for look, renderer in renderers.items():
                item = renderer[index]
                folder = f"{band}-{look}"
                names = [f"{folder}/{number:03d}_{view}.png" for view in (0, 1)]
                for name, key in zip(names, ("image0", "image1"), strict=True):
                    _write_png(out / name, item[key].permute(1, 2, 0).numpy())
                K0, K1, T = (item[key].numpy().astype(np.float64) for key in ("K0", "K1", "T_0to1"))
                lines.append(_pairs_line(*names, K0, K1, T))
                facts.append(
                    {
                        "pair": f"{names[0]} {names[1]}",
                        "index": index,
                        "kind": item["kind"],
                        "axis_angle_deg": round(optical_axis_angle_deg(T), 2),
                        "angle_deg": round(float(item["angle_deg"]), 2),
                        "overlap": round(float(item["overlap"]), 3),
                    }
                )
    with atomic_path(out / "pairs.txt") as temporary:
        temporary.write_text("\n".join(lines) + "\n")
    write_json(out / "benchmark.json", {"settings": settings, "pairs": facts})
    return out / "pairs.txt"


def write_relit_homographies(root: str | os.PathLike, out: str | os.PathLike, seed: int = 7) -> Path:
    """Copy an Oxford-layout dataset (``SEQ/img1..6``, ``SEQ/H1to*p``) to ``out`` with images 2-6 relit.

    Returns:
        ``out``.
    """
    root = Path(root)
    sequences = sorted(p.parent for p in root.glob("*/H1to2p"))
    if not sequences:
        raise OptionError(f"{root} holds no Oxford-layout sequences (SEQ/H1to2p)")
    settings = {"kind": "relit-homographies", "root": root.name, "seed": seed}
    out = _prepare(out, settings)
    appearance = relit_appearance()
    facts = []
    for sequence in sequences:
        target = out / sequence.name
        target.mkdir(exist_ok=True)
        for path in sorted(sequence.iterdir()):
            if path.name.startswith("H1to"):
                shutil.copyfile(path, target / path.name)
            elif path.stem.startswith("img") and path.stem != "img1":
                rng = np.random.default_rng([seed, sum(map(ord, sequence.name)), int(path.stem[3:])])
                image = load_image(path).astype(np.float32) / 255.0
                params = appearance.draw(rng, view=1)
                _write_png(target / f"{path.stem}.png", appearance.apply(image, params))
                facts.append({"image": f"{sequence.name}/{path.stem}", "appearance": params})
            elif path.stem == "img1":
                _write_png(target / "img1.png", load_image(path))
    write_json(out / "benchmark.json", {"settings": settings, "images": facts})
    return out


def write_relit_pairs(dataset: Dataset, out: str | os.PathLike, seed: int = 7) -> Path:
    """Write a relative-pose ``dataset`` as a pairs file with image 1 of every pair relit (a copy per pair).

    Returns:
        ``out / "pairs.txt"``.
    """
    if dataset.task != "relative_pose":
        raise OptionError(f"write_relit_pairs takes a relative-pose dataset, got {dataset.task}")
    settings = {"kind": "relit-pairs", "dataset": dataset.name, "pairs": len(dataset), "seed": seed}
    out = _prepare(out, settings)
    appearance = relit_appearance()
    lines, facts = [], []
    for number, pair in enumerate(dataset):
        image0, image1 = pair.load()
        rng = np.random.default_rng([seed, number])
        params = appearance.draw(rng, view=1)
        relit = appearance.apply(image1.astype(np.float32) / 255.0, params)
        names = [f"images/{number:03d}_0.png", f"images/{number:03d}_1.png"]
        _write_png(out / names[0], image0)
        _write_png(out / names[1], relit)
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = pair.R, pair.t
        lines.append(_pairs_line(*names, pair.camera0.K, pair.camera1.K, T))
        facts.append({"pair": pair.name, "files": names, "appearance": params})
    with atomic_path(out / "pairs.txt") as temporary:
        temporary.write_text("\n".join(lines) + "\n")
    write_json(out / "benchmark.json", {"settings": settings, "pairs": facts})
    return out / "pairs.txt"
