"""unregistered_reasons: every image missing from the largest model gets one reason."""

from __future__ import annotations

from tiepoint.pipeline.unregistered import unregistered_reasons


class _Image:
    def __init__(self, name: str) -> None:
        self.name = name


class _Model:
    """The two calls of a ``pycolmap.Reconstruction`` that the reasons use."""

    def __init__(self, *names: str) -> None:
        self._images = {i: _Image(name) for i, name in enumerate(names, start=1)}

    def reg_image_ids(self) -> list[int]:
        return list(self._images)

    def image(self, image_id: int) -> _Image:
        return self._images[image_id]


def test_each_unregistered_image_gets_its_reason():
    models = [_Model("a", "b", "c"), _Model("d", "e", "f")]
    names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]
    verified = {
        ("a", "b"): 300,
        ("b", "c"): 200,
        ("c", "d"): 10,  # d, e, f: their own model
        ("d", "e"): 100,
        ("e", "f"): 100,
        ("g", "a"): 40,  # g: verified with a registered image, yet not registered
        ("h", "a"): 14,  # h: below min_num_matches everywhere
        ("h", "b"): 0,
        ("i", "j"): 80,  # i, j: verified only with each other
        ("k", "a"): 0,  # k: no inlier at all
    }
    skipped = [{"name": "broken.png", "reason": "cannot decode"}]
    records = {r["name"]: r for r in unregistered_reasons(models, names, verified, 15, skipped)}
    assert set(records) == {"broken.png", "d", "e", "f", "g", "h", "i", "j", "k"}
    assert records["broken.png"] == {
        "name": "broken.png",
        "kind": "skipped",
        "reason": "skipped file: cannot decode",
    }
    assert {records[n]["kind"] for n in "def"} == {"other model"}
    assert "model 1 (3 images, sparse/1)" in records["d"]["reason"]
    assert records["g"]["kind"] == "failed registration" and "a (40)" in records["g"]["reason"]
    assert records["h"]["kind"] == "no verified pair"
    assert "none of its 2 pair(s) kept 15 inliers (best 14 inliers, with a)" in records["h"]["reason"]
    assert records["i"]["kind"] == records["j"]["kind"] == "disconnected"
    assert "j (80)" in records["i"]["reason"]
    assert records["k"]["kind"] == "no verified pair" and "none verified" in records["k"]["reason"]


def test_without_a_model_every_image_is_named():
    records = unregistered_reasons([], ["a", "b"], {("a", "b"): 50}, 15)
    assert [(r["name"], r["kind"]) for r in records] == [("a", "disconnected"), ("b", "disconnected")]
