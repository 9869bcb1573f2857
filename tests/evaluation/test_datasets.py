"""Benchmark dataset loaders: the real Oxford and Middlebury data, and fakes made in tmp_path."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tiepoint.errors import DatasetError
from tiepoint.evaluation.datasets import (
    Dataset,
    Pair,
    dataset_task,
    hpatches,
    load_dataset,
    middlebury,
    oxford_affine,
    pairs_file,
    synthetic,
)
from tiepoint.geometry.accuracy import fundamental_from_pose, symmetric_epipolar_distance


def project(H: np.ndarray, point) -> np.ndarray:
    x = H @ np.array([point[0], point[1], 1.0])
    return x[:2] / x[2]


# --- Oxford ---------------------------------------------------------------------------------------------


def test_oxford_has_40_pairs_named_and_grouped_by_sequence(oxford_root):
    dataset = oxford_affine(oxford_root)
    assert dataset.task == "homography" and len(dataset) == 40
    names = [pair.name for pair in dataset]
    assert names[:5] == ["bark/1-2", "bark/1-3", "bark/1-4", "bark/1-5", "bark/1-6"]
    assert len(set(names)) == 40
    assert {pair.group for pair in dataset} == {
        "bark",
        "bikes",
        "boat",
        "graf",
        "leuven",
        "trees",
        "ubc",
        "wall",
    }
    assert all(pair.H[2, 2] == 1.0 for pair in dataset)


def test_oxford_graf_1_3_maps_a_point_as_the_file_says(oxford_root):
    pair = oxford_affine(oxford_root).subset(["graf/1-3"]).pairs[0]
    # graf/H1to3p: 7.6285898e-01 -2.9922929e-01 2.2567123e+02 / 3.3443473e-01 1.0143901e+00 -7.6999973e+01 /
    #              3.4663091e-04 -1.4364524e-05 1.0
    x, y = 100.0, 200.0
    w = 3.4663091e-04 * x - 1.4364524e-05 * y + 1.0
    expected = [
        (7.6285898e-01 * x - 2.9922929e-01 * y + 2.2567123e02) / w,
        (3.3443473e-01 * x + 1.0143901e00 * y - 7.6999973e01) / w,
    ]
    np.testing.assert_allclose(project(pair.H, (x, y)), expected, rtol=1e-9)
    assert pair.path0.name == "img1.png" and pair.path1.name == "img3.png"


def test_oxford_negative_scale_is_normalised_and_images_load(oxford_root):
    dataset = oxford_affine(oxford_root)
    leuven = dataset.subset(["leuven/1-5"]).pairs[0]
    assert np.linalg.det(leuven.H) > 0
    corners = np.array([[0, 0, 1], [899, 0, 1], [899, 599, 1], [0, 599, 1]], float)
    assert np.all((corners @ leuven.H.T)[:, 2] > 0)  # every corner in front after normalising
    image0, image1 = dataset.subset(["wall/1-2"]).pairs[0].load()
    assert image0.shape == (700, 1000, 3) and image1.shape == (680, 880, 3) and image0.dtype == np.uint8
    boat0, _ = dataset.subset(["boat/1-2"]).pairs[0].load()  # greyscale file -> 3 equal channels
    assert boat0.shape[2] == 3 and np.array_equal(boat0[..., 0], boat0[..., 2])


def test_oxford_layout_errors_name_the_path(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        oxford_affine(tmp_path / "absent")
    with pytest.raises(DatasetError, match="sequence folders"):
        oxford_affine(tmp_path)
    for sequence in ("bark", "bikes", "boat", "graf", "leuven", "trees", "ubc"):
        (tmp_path / sequence).mkdir()
    with pytest.raises(DatasetError, match="missing sequence folder.*wall"):
        oxford_affine(tmp_path)
    (tmp_path / "wall").mkdir()
    with pytest.raises(DatasetError, match=r"img1\.png not found in .*bark"):
        oxford_affine(tmp_path)


# --- Middlebury -----------------------------------------------------------------------------------------


def read_par(path: Path) -> dict[str, np.ndarray]:
    """The projection matrices P = K [R | t] of a Middlebury *_par.txt, parsed independently of the loader."""
    projections = {}
    for line in path.read_text().splitlines()[1:]:
        fields = line.split()
        values = np.array(fields[1:], float)
        K, R, t = values[:9].reshape(3, 3), values[9:18].reshape(3, 3), values[18:]
        projections[fields[0]] = K @ np.hstack([R, t[:, None]])
    return projections


def test_middlebury_ring_has_16_neighbouring_pairs(temple_root):
    dataset = middlebury(temple_root)
    assert dataset.task == "relative_pose" and len(dataset) == 16
    assert dataset.pairs[0].name == "templeSR0001-templeSR0002"
    assert dataset.pairs[-1].name == "templeSR0016-templeSR0001"  # wraps around
    assert middlebury(temple_root, step=3).pairs[-1].name == "templeSR0016-templeSR0003"
    pair = dataset.pairs[0]
    assert (pair.camera0.width, pair.camera0.height) == (640, 480)
    assert pair.camera0.fx == 1520.4 and pair.camera0.cy == 246.87
    np.testing.assert_allclose(pair.R @ pair.R.T, np.eye(3), atol=1e-9)
    with pytest.raises(DatasetError, match="step"):
        middlebury(temple_root, step=0)


def test_middlebury_with_several_ring_distances(temple_root):
    both = load_dataset("middlebury:1,2", root=temple_root)
    assert both.name == "middlebury:1,2" and len(both) == 32
    names = [pair.name for pair in both]
    assert names[:16] == [pair.name for pair in middlebury(temple_root)]
    assert names[16:] == [pair.name for pair in middlebury(temple_root, step=2)] and len(set(names)) == 32
    assert dataset_task("middlebury:1,2") == "relative_pose"
    with pytest.raises(DatasetError, match="ring distances"):
        load_dataset("middlebury:two", root=temple_root)
    with pytest.raises(DatasetError, match="step"):
        middlebury(temple_root, step=[1, True])


def test_middlebury_relative_pose_satisfies_the_epipolar_constraint(temple_root):
    projections = read_par(temple_root / "templeSR_par.txt")
    low, high = np.array([-0.073568, 0.021728, -0.012445]), np.array([0.028855, 0.181892, 0.062736])
    # the bounding box's centre and corners (README.txt), in homogeneous world coordinates
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float)
    points = np.vstack([(low + high) / 2, low + corners * (high - low)])
    points = np.hstack([points, np.ones((len(points), 1))])
    for step in (1, 2):
        for pair in middlebury(temple_root, step=step):
            x0 = points @ projections[pair.path0.name].T
            x1 = points @ projections[pair.path1.name].T
            x0, x1 = x0[:, :2] / x0[:, 2:], x1[:, :2] / x1[:, 2:]
            F = fundamental_from_pose(pair.R, pair.t, pair.camera0.K, pair.camera1.K)
            distance = symmetric_epipolar_distance(F, x0, x1)
            assert distance.max() < 1e-6, pair.name
            # a point moved off its epipolar line is not accepted: the check can fail
            shifted = [
                symmetric_epipolar_distance(F, x0, x1 + shift) for shift in ([[5.0, 0.0]], [[0.0, 5.0]])
            ]
            assert np.maximum(*shifted).min() > 0.5


def test_middlebury_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"_par\.txt"):
        middlebury(tmp_path)
    (tmp_path / "x_par.txt").write_text("2\na.png 1 0 0 0 1 0 0 0 1\n")
    with pytest.raises(DatasetError, match="says 2 views"):
        middlebury(tmp_path)


# --- HPatches (fake) --------------------------------------------------------------------------------------


def make_hpatches(root: Path, rng: np.random.Generator) -> None:
    for sequence in ("i_fake", "v_fake"):
        folder = root / sequence
        folder.mkdir(parents=True)
        for index in range(1, 7):
            image = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
            cv2.imwrite(str(folder / f"{index}.ppm"), image)
        for k in range(2, 7):
            H = 2.0 * np.array(
                [[1.0, 0.01 * k, k], [0.0, 1.0, -k], [1e-4, 0.0, 1.0]]
            )  # scaled: must be normalised
            np.savetxt(folder / f"H_1_{k}", H)
    (root / "README").write_text("not a sequence\n")


def test_hpatches_layout(tmp_path):
    make_hpatches(tmp_path, np.random.default_rng(0))
    dataset = hpatches(tmp_path)
    assert dataset.task == "homography" and len(dataset) == 10
    assert [p.name for p in dataset][:2] == ["i_fake/1-2", "i_fake/1-3"]
    assert {p.info["subset"] for p in dataset if p.group == "i_fake"} == {"illumination"}
    assert {p.info["subset"] for p in dataset if p.group == "v_fake"} == {"viewpoint"}
    np.testing.assert_allclose(dataset.pairs[2].H, [[1.0, 0.04, 4.0], [0.0, 1.0, -4.0], [1e-4, 0.0, 1.0]])
    image0, _ = dataset.pairs[0].load()
    assert image0.shape == (40, 50, 3)
    assert load_dataset("hpatches", root=tmp_path).pairs[0].name == "i_fake/1-2"
    (tmp_path / "v_fake" / "H_1_4").unlink()
    with pytest.raises(DatasetError, match=r"H_1_4"):
        hpatches(tmp_path)


def test_hpatches_errors(tmp_path):
    with pytest.raises(DatasetError, match="i_"):
        hpatches(tmp_path)
    (tmp_path / "v_x").mkdir()
    with pytest.raises(DatasetError, match=r"1\.ppm not found"):
        hpatches(tmp_path)


# --- pairs files --------------------------------------------------------------------------------------------


def rotation(axis, angle):
    return cv2.Rodrigues(np.asarray(axis, float) * angle)[0]


def test_pairs_file_parses_both_formats_and_reads_sizes(tmp_path):
    (tmp_path / "scene").mkdir()
    cv2.imwrite(str(tmp_path / "scene" / "a.png"), np.zeros((48, 64, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "scene" / "b.png"), np.zeros((60, 80, 3), np.uint8))
    K0 = np.array([[50.0, 0, 30], [0, 55, 20], [0, 0, 1]])
    K1 = np.array([[60.0, 0, 40], [0, 60, 30], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = rotation([0, 1, 0], 0.2), [1.0, 0.1, -0.2]
    numbers = " ".join(f"{v:.17g}" for v in [*K0.ravel(), *K1.ravel(), *T.ravel()])
    (tmp_path / "pairs.txt").write_text(
        f"# a comment\nscene/a.png scene/b.png 0 0 {numbers}\n\n"
        f"scene/b.png scene/a.png {numbers}  # no rotations\n"
    )
    dataset = pairs_file(tmp_path / "pairs.txt")
    assert dataset.task == "relative_pose" and len(dataset) == 2
    first, second = dataset.pairs
    assert first.name == "scene/a.png scene/b.png" and first.group == "scene"
    assert (first.camera0.width, first.camera0.height, first.camera1.width) == (64, 48, 80)
    assert (second.camera0.width, second.camera1.width) == (80, 64)
    np.testing.assert_allclose(first.camera1.K, K1)
    np.testing.assert_allclose(first.R, T[:3, :3])
    np.testing.assert_allclose(first.t, T[:3, 3])
    assert first.load()[1].shape == (60, 80, 3)
    assert load_dataset("pairs:" + str(tmp_path / "pairs.txt")).name == "pairs:pairs.txt"


@pytest.mark.parametrize("rot0, rot1", [(1, 0), (0, 3), (2, 1)])
def test_pairs_file_rotations_turn_images_cameras_and_pose_together(tmp_path, rot0, rot1):
    width0, height0, width1, height1 = 64, 48, 80, 60
    K0 = np.array([[50.0, 0, 30.5], [0, 55, 20.25], [0, 0, 1]])
    K1 = np.array([[60.0, 0, 40], [0, 62, 29], [0, 0, 1]])
    R, t = rotation([0.1, 1, 0.2], 0.3), np.array([0.5, -0.1, 0.2])
    # a point that lands on the integer pixel (10, 30) of image 0, marked by a bright pixel there
    X0 = np.linalg.inv(K0) @ np.array([10.0, 30.0, 1.0]) * 3.0
    image0 = np.zeros((height0, width0, 3), np.uint8)
    image0[30, 10] = 255
    cv2.imwrite(str(tmp_path / "a.png"), image0)
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((height1, width1, 3), np.uint8))
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    numbers = " ".join(f"{v:.17g}" for v in [*K0.ravel(), *K1.ravel(), *T.ravel()])
    (tmp_path / "pairs.txt").write_text(f"a.png b.png {rot0} {rot1} {numbers}\n")
    pair = pairs_file(tmp_path / "pairs.txt").pairs[0]

    turned0, turned1 = pair.load()
    assert turned0.shape[:2] == ((width0, height0) if rot0 % 2 else (height0, width0))
    assert (pair.camera0.width, pair.camera0.height) == (turned0.shape[1], turned0.shape[0])
    assert (pair.camera1.width, pair.camera1.height) == (turned1.shape[1], turned1.shape[0])
    y, x = np.argwhere(turned0[..., 0] == 255)[0]
    # where the rotated images put the point in each image, compared with the rotated cameras and pose
    x1 = K1 @ (R @ X0 + t)
    x1 = x1[:2] / x1[2]
    for _ in range(rot1):  # np.rot90 once maps (x, y) to (y, width - 1 - x)
        x1 = np.array([x1[1], width1 - 1 - x1[0]])
        width1, height1 = height1, width1
    F = fundamental_from_pose(pair.R, pair.t, pair.camera0.K, pair.camera1.K)
    assert symmetric_epipolar_distance(F, np.array([[x, y]], float), x1[None])[0] < 1e-9
    # and the depth of the point is the same in the rotated frame (only in-plane turns)
    assert np.linalg.norm(pair.t) == pytest.approx(np.linalg.norm(t))


def test_pairs_file_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        pairs_file(tmp_path / "absent.txt")
    (tmp_path / "p.txt").write_text("a.png b.png 1 2 3\n")
    with pytest.raises(DatasetError, match="line 1: expected 38 fields"):
        pairs_file(tmp_path / "p.txt")
    numbers = " ".join(["1"] * 18 + [f"{v:g}" for v in np.eye(4).ravel()])
    (tmp_path / "p.txt").write_text(f"a.png b.png {numbers}\n")
    with pytest.raises(DatasetError, match=r"a\.png"):
        pairs_file(tmp_path / "p.txt")


# --- synthetic ----------------------------------------------------------------------------------------------


def write_texture(path: Path, size=(800, 600), seed=0) -> None:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    cv2.imwrite(str(path), cv2.resize(small, size, interpolation=cv2.INTER_CUBIC))


def test_synthetic_same_seed_gives_identical_pairs(tmp_path):
    write_texture(tmp_path / "one.png", seed=1)
    write_texture(tmp_path / "two.jpg", (600, 900), seed=2)
    first = synthetic(tmp_path, num_pairs=4, seed=7)
    second = synthetic(tmp_path, num_pairs=4, seed=7)
    other = synthetic(tmp_path, num_pairs=4, seed=8)
    assert first.task == "homography" and len(first) == 4
    assert [p.name for p in first] == [p.name for p in second]
    for a, b, c in zip(first, second, other, strict=True):
        np.testing.assert_array_equal(a.H, b.H)
        assert not np.allclose(a.H, c.H)
        image0, image1 = a.load()
        again0, again1 = b.load()
        np.testing.assert_array_equal(image0, again0)
        np.testing.assert_array_equal(image1, again1)  # photometric noise is seeded too
        assert max(image0.shape[:2]) == 640 and image0.shape == image1.shape
    assert {p.group for p in first} <= {"one", "two"}


def test_synthetic_ground_truth_maps_a_bright_dot(tmp_path):
    # a 1280x960 black photo with a Gaussian dot at (600, 500); after resizing to 640x480 the dot sits at
    # ((600 + 0.5) / 2 - 0.5, (500 + 0.5) / 2 - 0.5) in image 0 (pixel-centre convention)
    yy, xx = np.mgrid[0:960, 0:1280]
    dot = np.exp(-((xx - 600.0) ** 2 + (yy - 500.0) ** 2) / (2 * 8.0**2))
    cv2.imwrite(str(tmp_path / "dot.png"), np.round(255 * dot).astype(np.uint8))
    expected0 = np.array([299.75, 249.75])

    def centroid(image):
        weight = image[..., 0].astype(float)
        weight[weight < 10] = 0
        ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
        return np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()

    dataset = synthetic(tmp_path, num_pairs=5, seed=3, max_rotation_deg=180, photometric=0.0)
    for pair in dataset:
        image0, image1 = pair.load()
        assert image0.shape == (480, 640, 3)
        np.testing.assert_allclose(centroid(image0), expected0, atol=0.05)
        np.testing.assert_allclose(centroid(image1), project(pair.H, expected0), atol=0.3)


def test_synthetic_errors(tmp_path):
    with pytest.raises(DatasetError, match="no photos"):
        synthetic(tmp_path, num_pairs=2)
    with pytest.raises(DatasetError, match="not found"):
        synthetic(tmp_path / "absent")


# --- by name ------------------------------------------------------------------------------------------------


def test_load_dataset_by_name(tmp_path, monkeypatch):
    with pytest.raises(DatasetError, match="unknown dataset 'nope'"):
        load_dataset("nope")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIEPOINT_DATA", raising=False)
    with pytest.raises(DatasetError, match="--root.*TIEPOINT_DATA"):
        load_dataset("oxford")
    make_hpatches(tmp_path / "data" / "hpatches-sequences-release", np.random.default_rng(1))
    monkeypatch.setenv("TIEPOINT_DATA", str(tmp_path / "data"))
    assert len(load_dataset("hpatches")) == 10
    write_texture(tmp_path / "photos.png")
    dataset = load_dataset(f"synthetic:{tmp_path}", num_pairs=3, seed=1)
    assert len(dataset) == 3 and dataset.name.startswith("synthetic:")
    with pytest.raises(DatasetError, match="num_pair"):
        load_dataset(f"synthetic:{tmp_path}", num_pair=3)
    assert load_dataset(dataset) is dataset


def test_load_dataset_finds_the_shared_data(monkeypatch, data_root, oxford_root, temple_root):
    monkeypatch.setenv("TIEPOINT_DATA", str(data_root))
    assert len(load_dataset("oxford")) == 40
    assert len(load_dataset("middlebury")) == 16
    assert len(load_dataset("oxford", root=oxford_root)) == 40  # the dataset folder itself
    assert len(load_dataset("middlebury", root=data_root)) == 16  # or a folder holding it


def test_dataset_subset_and_validation():
    H = np.eye(3)
    pairs = [Pair(f"p{i}", loader=lambda: None, H=H) for i in range(3)]
    dataset = Dataset("d", "homography", pairs)
    assert [p.name for p in dataset.subset(["p2", 0])] == ["p2", "p0"]
    assert [p.name for p in dataset.subset(lambda p: p.name != "p1")] == ["p0", "p2"]
    with pytest.raises(DatasetError, match="no pair named 'p9'"):
        dataset.subset(["p9"])
    with pytest.raises(ValueError, match="relative_pose"):
        Dataset("d", "relative_pose", pairs)


def test_synthetic_skips_unreadable_and_tiny_photos(tmp_path, caplog):
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "good.png"), rng.integers(0, 255, (200, 300, 3), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((10, 15), np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    dataset = synthetic(tmp_path, num_pairs=4, seed=1)
    assert {pair.info["photo"] for pair in dataset} == {str(tmp_path / "good.png")}
    assert "tiny.png" in caplog.text and "broken.jpg" in caplog.text
    (tmp_path / "good.png").unlink()
    with pytest.raises(DatasetError, match="no photos .* that can be read"):
        synthetic(tmp_path, num_pairs=1)
