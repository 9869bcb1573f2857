"""Ray-cast scene pairs: renders, depth-based ground truth, cameras and the dataset."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from tiepoint.errors import OptionError
from tiepoint_lab.data.scenes import (
    KINDS,
    Quad,
    Scene,
    ScenePairs,
    Texture,
    TexturePyramid,
    flow_and_visibility,
    make_scene,
    project_with_depth,
    relative_angle_deg,
    render_view,
    sample_cameras,
)

SIZE = (72, 96)  # (height, width)


@pytest.fixture(scope="module")
def textures(tmp_path_factory) -> list:
    """Four small colourful photos: smooth random colour noise, two of them with a coarse checker."""
    folder = tmp_path_factory.mktemp("textures")
    rng = np.random.default_rng(0)
    paths = []
    for index in range(4):
        coarse = rng.random((12, 16, 3)).astype(np.float32)
        image = cv2.resize(coarse, (128, 96), interpolation=cv2.INTER_CUBIC)
        if index % 2:
            checker = (np.indices((96, 128)) // 16).sum(0) % 2
            image = 0.6 * image + 0.4 * checker[:, :, None]
        path = folder / f"texture{index}.png"
        Image.fromarray(np.clip(image * 255, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def pairs(textures) -> dict:
    """Three rendered pairs of every scene kind."""
    return {
        kind: [ScenePairs(textures, size=SIZE, seed=7, length=3, kinds=(kind,)).pair(i) for i in range(3)]
        for kind in KINDS
    }


def _tensors(pair) -> tuple:
    cameras = pair.cameras
    return (
        torch.from_numpy(pair.view0.depth),
        torch.from_numpy(pair.view1.depth),
        torch.tensor(cameras.K0, dtype=torch.float32),
        torch.tensor(cameras.K1, dtype=torch.float32),
        torch.tensor(cameras.T_0to1, dtype=torch.float32),
    )


def _interior(surface: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood shows a single surface."""
    s = surface.astype(np.float32)
    kernel = np.ones((3, 3), np.uint8)
    return cv2.erode(s, kernel) == cv2.dilate(s, kernel)


def _wall_scene(occluder: bool = True, texture: Texture | None = None) -> Scene:
    """A 20 m square at z = 10 facing the origin, and optionally a 1 m square at z = 5 in front of it."""
    texture = texture or Texture(0, np.array([[0.2, 0.0, 0.0], [0.0, 0.2, 0.0]]))
    quads = [Quad(np.array([-10.0, -10, 10]), np.array([20.0, 0, 0]), np.array([0.0, 20, 0]), texture)]
    if occluder:
        quads.append(Quad(np.array([-0.5, -0.5, 5]), np.array([1.0, 0, 0]), np.array([0.0, 1, 0]), texture))
    return Scene("wall", quads)


def _camera(f: float, size: tuple[int, int]) -> np.ndarray:
    return np.array([[f, 0, (size[1] - 1) / 2], [0, f, (size[0] - 1) / 2], [0, 0, 1.0]])


def _translation(x: float) -> np.ndarray:
    T = np.eye(4)
    T[0, 3] = -x  # camera centre at (x, 0, 0), axes as the world's
    return T


# ----------------------------------------------------------------------------------------------------------
# ground truth


def test_visible_points_land_on_the_same_surface(pairs):
    agree = total = 0
    for kind, items in pairs.items():
        for pair in items:
            flow, visible = flow_and_visibility(*_tensors(pair))
            keep = visible.numpy() & _interior(pair.view0.surface)
            ys, xs = np.nonzero(keep)
            points1 = flow.numpy()[ys, xs]
            ix = np.clip(np.floor(points1[:, 0] + 0.5).astype(int), 0, SIZE[1] - 1)
            iy = np.clip(np.floor(points1[:, 1] + 0.5).astype(int), 0, SIZE[0] - 1)
            same = pair.view0.surface[ys, xs] == pair.view1.surface[iy, ix]
            agree, total = agree + same.sum(), total + len(same)
            assert len(same) > 0.05 * SIZE[0] * SIZE[1], f"{kind}: almost nothing visible"
    assert agree / total >= 0.99


def test_round_trip_through_both_depth_maps(pairs):
    errors = []
    for items in pairs.values():
        for pair in items:
            depth0, depth1, K0, K1, T = _tensors(pair)
            flow, visible = flow_and_visibility(depth0, depth1, K0, K1, T)
            ys, xs = torch.nonzero(visible, as_tuple=True)
            back, seen = project_with_depth(flow[ys, xs], depth1, depth0, K1, K0, torch.linalg.inv(T))
            errors.append((back - torch.stack([xs, ys], 1).float()).norm(dim=1)[seen].numpy())
    errors = np.concatenate(errors)
    # the way back reads image 1's depth at the nearest pixel of a subpixel point, which is exact only on
    # surfaces parallel to the image: a small error on slanted surfaces is expected
    assert np.median(errors) < 0.1
    assert np.mean(errors < 1.0) > 0.95


def test_translation_over_a_plane_is_exact():
    size = (48, 64)
    K = _camera(50.0, size)
    scene = _wall_scene(occluder=False)
    textures = [np.full((8, 8, 3), 128, np.uint8)]
    view0 = render_view(scene, textures, K, np.eye(4), size)
    view1 = render_view(scene, textures, K, _translation(2.0), size)
    np.testing.assert_allclose(view0.depth, 10.0, rtol=1e-5)
    np.testing.assert_allclose(view0.normals, np.broadcast_to([0, 0, -1.0], (*size, 3)), atol=1e-6)
    T = torch.tensor(_translation(2.0), dtype=torch.float32)
    Kt = torch.tensor(K, dtype=torch.float32)
    flow, visible = flow_and_visibility(
        torch.from_numpy(view0.depth), torch.from_numpy(view1.depth), Kt, Kt, T
    )
    xs = torch.arange(size[1], dtype=torch.float32)
    np.testing.assert_allclose(flow[..., 0], (xs - 50.0 * 2.0 / 10.0).expand(size), atol=1e-4)
    np.testing.assert_allclose(flow[..., 1], torch.arange(size[0]).float()[:, None].expand(size), atol=1e-4)
    assert visible[:, 10:].all() and not visible[:, :9].any()  # x1 = x0 - 10 leaves image 1 on the left
    points = torch.tensor([[20.3, 11.7], [40.25, 30.5]])
    points1, seen = project_with_depth(
        points, *(torch.from_numpy(v.depth) for v in (view0, view1)), Kt, Kt, T
    )
    back, _ = project_with_depth(
        points1, torch.from_numpy(view1.depth), torch.from_numpy(view0.depth), Kt, Kt, T.inverse()
    )
    assert seen.all()
    np.testing.assert_allclose(back, points, atol=1e-3)


def test_a_point_hidden_in_view_1_is_not_visible():
    size = (48, 64)
    K = _camera(50.0, size)
    scene = _wall_scene()
    textures = [np.full((8, 8, 3), 128, np.uint8)]
    view0 = render_view(scene, textures, K, np.eye(4), size)
    view1 = render_view(scene, textures, K, _translation(2.0), size)
    # world points: (-2, 0, 10) on the wall, hidden from (2, 0, 0) by the small square at z = 5;
    # (2, 0, 10) on the wall and (0, 0, 5) on the square are seen by both cameras
    world = np.array([[-2.0, 0, 10], [2.0, 0, 10], [0.0, 0, 5]])
    points0 = torch.tensor(world[:, :2] / world[:, 2:] * 50.0 + [31.5, 23.5], dtype=torch.float32)
    Kt = torch.tensor(K, dtype=torch.float32)
    T = torch.tensor(_translation(2.0), dtype=torch.float32)
    points1, visible = project_with_depth(
        points0, torch.from_numpy(view0.depth), torch.from_numpy(view1.depth), Kt, Kt, T
    )
    assert visible.tolist() == [False, True, True]
    expected = (world - [2.0, 0, 0])[:, :2] / world[:, 2:] * 50.0 + [31.5, 23.5]
    np.testing.assert_allclose(points1, expected, atol=1e-3)
    assert view0.surface[23, 21] == 0 and view1.surface[23, 12] == 1  # the square hides the wall in view 1


def test_batched_projection_matches_single(pairs):
    items = [pairs["room"][0], pairs["street"][0]]
    stacked = [torch.stack(values) for values in zip(*(_tensors(pair) for pair in items))]
    points = torch.rand(2, 50, 2) * torch.tensor([SIZE[1] - 1, SIZE[0] - 1])
    batch1, batch_visible = project_with_depth(points, *stacked)
    for b, pair in enumerate(items):
        single1, single_visible = project_with_depth(points[b], *_tensors(pair))
        torch.testing.assert_close(batch1[b], single1)
        assert torch.equal(batch_visible[b], single_visible)
    flow, visible = flow_and_visibility(*stacked)
    assert flow.shape == (2, *SIZE, 2) and visible.shape == (2, *SIZE)


# ----------------------------------------------------------------------------------------------------------
# rendering


def test_colours_agree_at_correspondences(pairs):
    matched, random = [], []
    rng = np.random.default_rng(0)
    for kind in ("objects", "street"):
        for pair in pairs[kind]:
            flow, visible = flow_and_visibility(*_tensors(pair))
            photo = pair.scene.arrays.photo[pair.view0.surface] >= 0
            keep = visible.numpy() & _interior(pair.view0.surface) & photo
            ys, xs = np.nonzero(keep)
            if not len(ys):
                continue
            p1 = flow.numpy()[ys, xs].astype(np.float32)
            image1 = pair.view1.image
            colour1 = cv2.remap(
                image1, p1[:, :1], p1[:, 1:], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            matched.append(np.abs(colour1[:, 0] - pair.view0.image[ys, xs]).mean(1))
            other = rng.permutation(len(ys))
            random.append(np.abs(image1[ys[other], xs[other]] - pair.view0.image[ys, xs]).mean(1))
    matched, random = np.concatenate(matched), np.concatenate(random)
    assert np.median(matched) < 0.012  # a systematic shift of one texel doubles it
    assert np.median(random) > 3 * np.median(matched) and np.median(random) > 0.05


def test_depth_surface_and_normals_are_consistent(pairs):
    for kind, items in pairs.items():
        for pair in items:
            for view, K in ((pair.view0, pair.cameras.K0), (pair.view1, pair.cameras.K1)):
                assert view.image.shape == (*SIZE, 3) and view.image.dtype == np.float32
                assert 0 <= view.image.min() and view.image.max() <= 1
                assert np.array_equal(view.depth == 0, view.surface == -1), kind
                hit = view.surface >= 0
                np.testing.assert_allclose(np.linalg.norm(view.normals[hit], axis=1), 1, atol=1e-5)
                assert not view.normals[~hit].any()
                ys, xs = np.nonzero(hit)
                rays = np.stack([(xs - K[0, 2]) / K[0, 0], (ys - K[1, 2]) / K[1, 1], np.ones(len(xs))], 1)
                assert np.all((rays * view.normals[hit]).sum(1) < 1e-6), f"{kind}: a normal faces away"
            if kind in ("room", "corridor"):
                assert (pair.view0.depth > 0).all(), f"{kind}: an indoor ray escaped"


def test_textures_are_anti_aliased():
    """A 1-pixel checker seen about nine times smaller renders as flat grey, not as moire."""
    checker = ((np.indices((64, 64)).sum(0) % 2) * 255).astype(np.uint8)
    texture = Texture(0, np.array([[1.0, 0.0, 0.13], [0.0, 1.0, 0.37]]))  # 64 texels per metre
    scene = _wall_scene(occluder=False, texture=texture)
    size = (32, 32)
    K = _camera(73.0, size)  # 10 m away: 8.8 texels per pixel
    view = render_view(scene, [TexturePyramid(np.repeat(checker[:, :, None], 3, 2))], K, np.eye(4), size)
    assert abs(view.image.mean() - 0.5) < 0.05
    assert view.image.std() < 0.05


# ----------------------------------------------------------------------------------------------------------
# scenes and cameras


@pytest.mark.parametrize("kind", KINDS)
def test_scene_kinds_build_and_cameras_respect_the_rotation_limit(kind):
    rng = np.random.default_rng(3)
    scene = make_scene(kind, rng, n_photos=4)
    photos = scene.arrays.photo
    assert scene.kind == kind and len(scene.quads) >= 6
    assert photos.max() < 4 and (photos >= 0).any() and (photos < 0).any()
    angles = []
    for _ in range(20):
        cameras = sample_cameras(scene, rng, SIZE, max_rotation_deg=35.0, roll_deg=0.0)
        angles.append(relative_angle_deg(cameras.T_0to1))
        for T in (cameras.world_to_camera0, cameras.world_to_camera1):
            centre = -T[:3, :3].T @ T[:3, 3]
            assert np.all(centre >= scene.camera_box[0] - 1e-9) and np.all(
                centre <= scene.camera_box[1] + 1e-9
            )
    assert max(angles) <= 35.0 + 1e-6 and max(angles) > 10
    rolled = [relative_angle_deg(sample_cameras(scene, rng, SIZE, 35.0, 180.0).T_0to1) for _ in range(20)]
    assert max(rolled) <= 35.0 + 180.0 and max(rolled) > 60


def test_relative_angle():
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.array([0.0, 0.0, np.radians(30)]))[0]
    assert relative_angle_deg(T) == pytest.approx(30.0)
    assert relative_angle_deg(torch.eye(4)) == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------------------------------------------
# the dataset


def test_items_are_deterministic_per_seed_epoch_and_index(textures):
    a = ScenePairs(textures, size=(32, 48), seed=3, length=4)
    b = ScenePairs(textures, size=(32, 48), seed=3, length=4)
    first, again = a[2], b[2]
    for key in ("image0", "image1", "depth0", "depth1", "K0", "K1", "T_0to1"):
        assert torch.equal(first[key], again[key]), key
    assert first["kind"] == again["kind"] and first["overlap"] == again["overlap"]
    assert not torch.equal(a[1]["image0"], first["image0"])
    b.set_epoch(1)
    assert not torch.equal(b[2]["image0"], first["image0"])


def test_items_and_default_collate(textures):
    pairs = ScenePairs(textures, size=(32, 48), seed=0, length=4, max_rotation_deg=40.0, roll_deg=20.0)
    item = pairs[0]
    assert item["image0"].shape == (3, 32, 48) and item["image0"].dtype == torch.float32
    assert item["depth1"].shape == (32, 48) and item["K0"].shape == (3, 3) and item["T_0to1"].shape == (4, 4)
    assert item["kind"] in KINDS and item["index"] == 0
    assert item["angle_deg"] == pytest.approx(relative_angle_deg(item["T_0to1"]), abs=1e-3)
    assert item["angle_deg"] <= 60.0 + 1e-3 and 0 <= item["overlap"] <= 1
    batch = next(iter(torch.utils.data.DataLoader(pairs, batch_size=2)))
    assert batch["image1"].shape == (2, 3, 32, 48) and len(batch["kind"]) == 2
    assert batch["angle_deg"].shape == (2,) and batch["index"].tolist() == [0, 1]


def test_overlap_is_reached(textures):
    pairs = ScenePairs(textures, size=(32, 48), seed=1, length=6, min_overlap=0.4)
    overlaps = [pairs.pair(i).overlap for i in range(6)]
    assert np.mean(np.array(overlaps) >= 0.35) >= 5 / 6  # checked on small depth maps first


def test_appearance_is_called_per_view(textures):
    calls = []

    def appearance(image, rng, normals=None, valid=None, view=0):
        calls.append((view, normals.shape, valid.dtype, isinstance(rng, np.random.Generator)))
        return image * 0.5

    pairs = ScenePairs(textures, size=(32, 48), seed=2, length=2, appearance=appearance)
    item = pairs[1]
    plain = pairs.pair(1)
    assert [call[0] for call in calls] == [0, 1]
    assert calls[0][1:] == ((32, 48, 3), np.dtype(bool), True)
    np.testing.assert_allclose(item["image0"].numpy(), plain.view0.image.transpose(2, 0, 1) * 0.5, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"size": (8, 8)}, "size"),
        ({"kinds": ("cave",)}, "kinds"),
        ({"max_rotation_deg": -1}, "max_rotation_deg"),
        ({"roll_deg": 200}, "roll_deg"),
        ({"scale": (0, 1)}, "scale"),
        ({"fov_deg": (30, 190)}, "fov_deg"),
        ({"min_overlap": 1.5}, "min_overlap"),
        ({"appearance": 3}, "appearance"),
        ({"length": -1}, "length"),
    ],
)
def test_bad_options_are_refused(textures, options, name):
    with pytest.raises(OptionError, match=name):
        ScenePairs(textures, **options)


def test_other_bad_input_is_refused():
    with pytest.raises(OptionError, match="photos"):
        ScenePairs([])
    with pytest.raises(OptionError, match="kind"):
        make_scene("cave", np.random.default_rng(0), 3)
    with pytest.raises(OptionError, match="K"):
        render_view(_wall_scene(), [np.zeros((4, 4, 3), np.uint8)], np.zeros((3, 3)), np.eye(4), (8, 8))
    with pytest.raises(OptionError, match="photos_or_textures"):
        render_view(_wall_scene(), [], _camera(10.0, (8, 8)), np.eye(4), (8, 8))


def test_an_upright_scene_benchmark_records_its_roll_and_keeps_cameras_upright(textures, tmp_path):
    import json

    from tiepoint_lab.data.benchmarks import BANDS, write_scene_benchmark

    out = tmp_path / "upright"
    pairs = write_scene_benchmark(textures, out, per_band=1, size=(48, 64), roll_deg=10.0)
    assert len(pairs.read_text().splitlines()) == 2 * len(BANDS)  # plain and changed per band
    record = json.loads((out / "benchmark.json").read_text())
    assert record["settings"]["roll_deg"] == 10.0
    # camera 0 rolls by at most 10 degrees, camera 1 by at most 10 more than its turn
    assert all(p["angle_deg"] <= BANDS["hard"][1] + 20.0 for p in record["pairs"])
    with pytest.raises(OptionError, match="other settings"):
        write_scene_benchmark(textures, out, per_band=1, size=(48, 64))
