"""Why an image is not in a reconstruction: one reason per unregistered image, for ``summary.json`` and the
printed report.

Three reasons, checked in this order:

* ``skipped``: the file could not be used (unreadable, no features); the reason is the stage's own;
* ``other model``: the mapper registered it, but in a smaller model than the largest (``sparse/1``, ...):
  too few verified matches link the two groups of images;
* ``no verified pair``: none of its pairs kept the mapper's ``min_num_matches`` verified inliers, so the
  mapper never sees it connected;
* ``disconnected``: its verified pairs link it only to images that are not in the largest model either;
* ``failed registration``: it has verified pairs with images of the model, yet the mapper could not
  register it (too few of its matches see triangulated points, or its pose failed the mapper's checks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def unregistered_reasons(
    models: Sequence[Any],
    names: Sequence[str],
    verified: Mapping[tuple[str, str], int],
    min_num_matches: int,
    skipped: Sequence[Mapping[str, str]] = (),
) -> list[dict[str, str]]:
    """One ``{"name", "kind", "reason"}`` per image that is not registered in the largest model.

    Args:
        models: ``pycolmap.Reconstruction`` objects, largest first (may be empty).
        names: the images that went into the database.
        verified: the verified inlier count of each pair
            (:func:`~tiepoint.io.colmap.database_verified_pairs`).
        min_num_matches: the mapper's fewest verified inliers for a pair to count.
        skipped: images left out before matching, each ``{"name", "reason"}``.

    Returns:
        The records sorted by name; ``kind`` is one of ``skipped``, ``other model``, ``no verified pair``,
        ``disconnected``, ``failed registration`` (see the module docstring).
    """
    registered = [{m.image(i).name for i in m.reg_image_ids()} for m in models]
    largest = registered[0] if registered else set()
    partners: dict[str, list[tuple[int, str]]] = {}
    for (name0, name1), count in verified.items():
        partners.setdefault(name0, []).append((count, name1))
        partners.setdefault(name1, []).append((count, name0))
    records = [
        {"name": s["name"], "kind": "skipped", "reason": f"skipped file: {s['reason']}"} for s in skipped
    ]
    for name in sorted(set(names) - largest):
        reason = _reason(name, registered, partners.get(name, []), min_num_matches)
        records.append({"name": name, **reason})
    return sorted(records, key=lambda r: r["name"])


def _reason(
    name: str, registered: list[set[str]], partners: list[tuple[int, str]], min_num_matches: int
) -> dict[str, str]:
    """The ``kind`` and ``reason`` of one unregistered image."""
    for index, members in enumerate(registered[1:], start=1):
        if name in members:
            return {
                "kind": "other model",
                "reason": f"registered in model {index} ({len(members)} images, sparse/{index}), apart from "
                f"the largest: too few verified matches link the two groups",
            }
    usable = sorted((p for p in partners if p[0] >= min_num_matches), reverse=True)
    if not usable:
        best = max(partners, default=None)
        detail = (
            f"best {best[0]} inliers, with {best[1]}" if best is not None and best[0] > 0 else "none verified"
        )
        return {
            "kind": "no verified pair",
            "reason": f"no verified pair: none of its {len(partners)} pair(s) kept {min_num_matches} "
            f"inliers ({detail})",
        }
    listed = ", ".join(f"{other} ({count})" for count, other in usable[:3])
    listed += " ..." if len(usable) > 3 else ""
    if not registered or not any(other in registered[0] for _, other in usable):
        return {
            "kind": "disconnected",
            "reason": f"disconnected: its {len(usable)} verified pair(s) (inliers: {listed}) link it only to "
            "images outside the model",
        }
    return {
        "kind": "failed registration",
        "reason": f"failed registration: {len(usable)} verified pair(s) (inliers: {listed}), but too few "
        "of its matches reach the model's points or its pose failed the mapper's checks",
    }
