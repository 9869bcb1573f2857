"""Feature and match files: round trips, hloc's layout, errors and resumable output."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tiepoint.errors import TiepointError
from tiepoint.io.h5 import (
    CorruptFileError,
    has_matches,
    list_feature_names,
    open_for_update,
    pair_key,
    read_features,
    read_matches,
    write_features,
    write_matches,
)
from tiepoint.types import Features


def make_features(n: int = 7, binary: bool = False, covariances: bool = False, seed: int = 0) -> Features:
    rng = np.random.default_rng(seed)
    if binary:
        descriptors = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    else:
        descriptors = rng.normal(size=(n, 128)).astype(np.float32)
        descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
    cov = None
    if covariances:
        a = rng.normal(size=(n, 2, 2)).astype(np.float32)
        cov = a @ a.transpose(0, 2, 1)
    return Features(
        keypoints=(rng.random((n, 2)) * [80, 64]).astype(np.float32),
        scores=rng.random(n).astype(np.float32),
        descriptors=descriptors,
        image_size=(80, 64),
        covariances=cov,
    )


def assert_same_features(a: Features, b: Features, atol: float = 0.0) -> None:
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.descriptors.shape == b.descriptors.shape and a.descriptors.dtype == b.descriptors.dtype
    np.testing.assert_allclose(a.descriptors, b.descriptors, atol=atol)
    assert a.image_size == b.image_size
    if a.covariances is None:
        assert b.covariances is None
    else:
        np.testing.assert_array_equal(a.covariances, b.covariances)


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("covariances", [False, True])
def test_features_round_trip(tmp_path, binary, covariances):
    features = make_features(binary=binary, covariances=covariances)
    path = tmp_path / "features.h5"
    with h5py.File(path, "w") as file:
        write_features(file, "img.png", features, attrs={"method": {"name": "sift"}})
    read = read_features(path, "img.png")
    assert_same_features(features, read)
    assert read.keypoints.dtype == np.float32 and read.scores.dtype == np.float32
    with h5py.File(path, "r") as file:
        assert file["img.png"].attrs["method"] == '{"name": "sift"}'
        assert file["img.png"].attrs["complete"]


def test_features_half_precision(tmp_path):
    features = make_features()
    path = tmp_path / "features.h5"
    with h5py.File(path, "w") as file:
        write_features(file, "img.png", features, as_half=True)
        assert file["img.png/descriptors"].dtype == np.float16
        assert file["img.png/keypoints"].dtype == np.float32  # keypoints keep full precision
    read = read_features(path, "img.png")
    assert read.descriptors.dtype == np.float32
    np.testing.assert_allclose(read.descriptors, features.descriptors, atol=1e-3)
    np.testing.assert_array_equal(read.keypoints, features.keypoints)


def test_binary_descriptors_ignore_half(tmp_path):
    features = make_features(binary=True)
    with h5py.File(tmp_path / "f.h5", "w") as file:
        write_features(file, "a.png", features, as_half=True)
        assert file["a.png/descriptors"].dtype == np.uint8
    assert_same_features(features, read_features(tmp_path / "f.h5", "a.png"))


def test_zero_features_round_trip(tmp_path):
    features = make_features(n=0)
    with h5py.File(tmp_path / "f.h5", "w") as file:
        write_features(file, "empty.png", features)
    read = read_features(tmp_path / "f.h5", "empty.png")
    assert read.keypoints.shape == (0, 2) and read.descriptors.shape == (0, 128)


def test_hloc_feature_layout(tmp_path):
    features = make_features(n=5)
    path = tmp_path / "features.h5"
    with h5py.File(path, "w") as file:
        write_features(file, "seq/img1.png", features)
    with h5py.File(path, "r") as file:
        assert isinstance(file["seq"], h5py.Group)  # nested groups for '/'
        group = file["seq"]["img1.png"]
        assert group["keypoints"].shape == (5, 2) and group["keypoints"].dtype == np.float32
        assert group["descriptors"].shape == (128, 5)  # transposed, as hloc stores them
        np.testing.assert_array_equal(group["descriptors"][()], features.descriptors.T)
        assert group["scores"].shape == (5,)
        np.testing.assert_array_equal(group["image_size"][()], [80, 64])  # (width, height)


def test_reads_file_written_like_hloc(tmp_path):
    """A group without the `complete` attribute, as hloc writes it, is readable and listed."""
    rng = np.random.default_rng(1)
    path = tmp_path / "hloc.h5"
    with h5py.File(path, "w") as file:
        group = file.create_group("db/a.jpg")
        group.create_dataset("keypoints", data=rng.random((4, 2)).astype(np.float16))
        group.create_dataset("descriptors", data=rng.random((256, 4)).astype(np.float16))
        group.create_dataset("image_size", data=np.array([640, 480]))
    assert list_feature_names(path) == ["db/a.jpg"]
    features = read_features(path, "db/a.jpg")
    assert features.descriptors.shape == (4, 256) and features.descriptors.dtype == np.float32
    assert features.image_size == (640, 480)
    np.testing.assert_array_equal(features.scores, np.ones(4, np.float32))


def test_list_feature_names_descends_nested_groups(tmp_path):
    path = tmp_path / "features.h5"
    names = ["b.png", "seq/img1.png", "seq/deeper/img2.png", "a.png"]
    with h5py.File(path, "w") as file:
        for i, name in enumerate(names):
            write_features(file, name, make_features(seed=i))
        file.create_group("cut_short.png").attrs["complete"] = False
    assert list_feature_names(path) == sorted(names)
    with h5py.File(path, "r") as file:
        assert list_feature_names(file) == sorted(names)
    for i, name in enumerate(names):
        assert_same_features(make_features(seed=i), read_features(path, name))


def test_write_features_replaces_existing(tmp_path):
    with h5py.File(tmp_path / "f.h5", "w") as file:
        write_features(file, "a.png", make_features(n=3))
        write_features(file, "a.png", make_features(n=9, seed=5))
    assert len(read_features(tmp_path / "f.h5", "a.png")) == 9


def test_pair_key_matches_hloc():
    assert pair_key("seq/a.png", "other/b.png") == "seq-a.png/other-b.png"
    assert pair_key("a.png", "b.png") == "a.png/b.png"


def test_matches_round_trip_and_layout(tmp_path):
    path = tmp_path / "matches.h5"
    indices = np.array([[0, 3], [2, 0], [5, 1]])
    scores = np.array([0.9, 0.5, 0.25], np.float32)
    with h5py.File(path, "w") as file:
        write_matches(file, "seq/a.png", "b.png", indices, scores, num_keypoints0=6)
    with h5py.File(path, "r") as file:
        group = file["seq-a.png"]["b.png"]
        np.testing.assert_array_equal(group["matches0"][()], [3, -1, 0, -1, -1, 1])
        assert group["matches0"].dtype == np.int32
        np.testing.assert_array_equal(group["matching_scores0"][()], np.float32([0.9, 0, 0.5, 0, 0, 0.25]))
    read_indices, read_scores = read_matches(path, "seq/a.png", "b.png")
    assert read_indices.dtype == np.int64 and read_scores.dtype == np.float32
    np.testing.assert_array_equal(read_indices, indices)
    np.testing.assert_array_equal(read_scores, scores)
    # the pair read the other way round gives swapped indices
    reverse_indices, _ = read_matches(path, "b.png", "seq/a.png")
    np.testing.assert_array_equal(reverse_indices, indices[:, ::-1])
    assert has_matches(path, "b.png", "seq/a.png") and not has_matches(path, "a.png", "b.png")


def test_matches_half_and_empty(tmp_path):
    path = tmp_path / "matches.h5"
    with h5py.File(path, "w") as file:
        write_matches(file, "a", "b", np.array([[1, 1]]), np.array([0.5]), 3, as_half=True)
        write_matches(file, "a", "c", np.zeros((0, 2), np.int64), np.zeros(0), 4)
        assert file["a/b/matching_scores0"].dtype == np.float16
    indices, scores = read_matches(path, "a", "c")
    assert indices.shape == (0, 2) and scores.shape == (0,)
    np.testing.assert_array_equal(read_matches(path, "a", "b")[0], [[1, 1]])


def test_write_matches_rejects_bad_indices(tmp_path):
    with h5py.File(tmp_path / "m.h5", "w") as file:
        with pytest.raises(ValueError, match="out of range"):
            write_matches(file, "a", "b", np.array([[4, 0]]), np.array([1.0]), 4)
        with pytest.raises(ValueError, match="matched twice"):
            write_matches(file, "a", "b", np.array([[1, 0], [1, 2]]), np.array([1.0, 1.0]), 4)
        with pytest.raises(ValueError, match="scores"):
            write_matches(file, "a", "b", np.array([[1, 0]]), np.array([1.0, 2.0]), 4)


def test_clear_errors(tmp_path):
    missing = tmp_path / "missing.h5"
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        read_features(missing, "a.png")
    path = tmp_path / "features.h5"
    with h5py.File(path, "w") as file:
        write_features(file, "a.png", make_features())
    with pytest.raises(KeyError, match=r"nope\.png.*features\.h5"):
        read_features(path, "nope.png")
    with pytest.raises(KeyError, match="features.h5"):
        read_matches(path, "a.png", "b.png")
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(CorruptFileError, match="corrupt.h5") as info:
        read_features(corrupt, "a.png")
    assert isinstance(info.value, TiepointError) and isinstance(info.value, OSError)


def test_incomplete_group_is_not_readable(tmp_path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as file:
        write_features(file, "a.png", make_features())
        file["a.png"].attrs["complete"] = False
    assert list_feature_names(path) == []
    with pytest.raises(KeyError, match="a.png"):
        read_features(path, "a.png")


# --- open_for_update ----------------------------------------------------------------------------------------


def test_open_for_update_creates_and_extends(tmp_path):
    path = tmp_path / "out" / "features.h5"
    with open_for_update(path) as file:
        write_features(file, "a.png", make_features())
        assert (tmp_path / "out" / "features.h5.partial").exists() and not path.exists()
    assert path.exists() and not (tmp_path / "out" / "features.h5.partial").exists()
    with open_for_update(path) as file:
        assert list_feature_names(file) == ["a.png"]
        write_features(file, "b.png", make_features(seed=1))
    assert list_feature_names(path) == ["a.png", "b.png"]


def test_open_for_update_keeps_work_on_exception(tmp_path):
    path = tmp_path / "features.h5"
    with pytest.raises(KeyboardInterrupt), open_for_update(path) as file:
        write_features(file, "a.png", make_features())
        group = file.create_group("b.png")  # cut short in the middle of a group
        group.attrs["complete"] = False
        group.create_dataset("keypoints", data=np.zeros((1, 2), np.float32))
        raise KeyboardInterrupt
    assert not (tmp_path / "features.h5.partial").exists()
    with h5py.File(path, "r") as file:
        assert list(file.keys()) == ["a.png"]


def write_killed_run_partial(partial):
    """A `.partial` as a killed run leaves it: complete groups and groups cut short."""
    with h5py.File(partial, "w") as file:
        write_features(file, "seq/done.png", make_features())
        group = file.create_group("seq/cut.png")  # no `complete` attribute, some datasets
        group.create_dataset("keypoints", data=np.zeros((3, 2), np.float32))
        flagged = file.create_group("flagged.png")
        flagged.attrs["complete"] = False
        flagged.create_dataset("keypoints", data=np.zeros((3, 2), np.float32))
        file.create_group("other/empty")  # cut short right after creation


def test_open_for_update_resumes_partial_and_drops_incomplete(tmp_path):
    path = tmp_path / "features.h5"
    write_killed_run_partial(tmp_path / "features.h5.partial")
    with open_for_update(path) as file:
        assert list(file.keys()) == ["seq"]
        assert list(file["seq"].keys()) == ["done.png"]
    with h5py.File(path, "r") as file:
        assert list(file.keys()) == ["seq"] and list(file["seq"].keys()) == ["done.png"]
    assert_same_features(make_features(), read_features(path, "seq/done.png"))


def test_open_for_update_discards_corrupt_partial(tmp_path):
    path = tmp_path / "features.h5"
    with h5py.File(path, "w") as file:
        write_features(file, "a.png", make_features())
    (tmp_path / "features.h5.partial").write_bytes(np.random.default_rng(0).bytes(4096))
    with open_for_update(path) as file:
        assert list_feature_names(file) == ["a.png"]
    assert list_feature_names(path) == ["a.png"]
    assert not (tmp_path / "features.h5.partial").exists()


def test_open_for_update_keeps_groups_written_by_hloc(tmp_path):
    """Groups of an existing file without the `complete` attribute are trusted, not dropped."""
    path = tmp_path / "hloc.h5"
    with h5py.File(path, "w") as file:
        group = file.create_group("a.jpg")
        for key, data in make_features().__dict__.items():
            if data is not None:
                group.create_dataset(key, data=np.asarray(data).T if key == "descriptors" else data)
    with open_for_update(path) as file:
        write_features(file, "b.jpg", make_features(seed=1))
    assert list_feature_names(path) == ["a.jpg", "b.jpg"]


def test_open_for_update_refuses_corrupt_output(tmp_path):
    path = tmp_path / "features.h5"
    data = np.random.default_rng(0).bytes(3000)
    path.write_bytes(data)
    with pytest.raises(CorruptFileError, match="features.h5"), open_for_update(path):
        pass
    assert path.read_bytes() == data  # left untouched
    assert not (tmp_path / "features.h5.partial").exists()


def test_open_for_update_replaces_a_corrupt_output_when_asked(tmp_path):
    path = tmp_path / "features.h5"
    with h5py.File(path, "w") as file:
        write_features(file, "a.png", make_features())
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    with pytest.raises(CorruptFileError, match="--overwrite"), open_for_update(path):
        pass
    with open_for_update(path, replace_corrupt=True) as file:
        assert list(file.keys()) == []
        write_features(file, "b.png", make_features())
    assert list_feature_names(path) == ["b.png"]


def test_a_partial_open_in_another_process_is_not_deleted(tmp_path):
    import os
    import subprocess
    import sys

    if os.environ.get("HDF5_USE_FILE_LOCKING", "").upper() == "FALSE":
        pytest.skip("HDF5 file locking is turned off")
    path = tmp_path / "features.h5"
    partial = tmp_path / "features.h5.partial"
    with h5py.File(partial, "w") as file:
        write_features(file, "a.png", make_features())
    code = "import sys, h5py; f = h5py.File(sys.argv[1], 'a'); print('open', flush=True); sys.stdin.read()"
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(partial)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(OSError, match="open in another process"), open_for_update(path):
            pass
        assert partial.exists()
    finally:
        holder.kill()
        holder.wait()
    assert list_feature_names(partial) == ["a.png"]


# --- validation on read -------------------------------------------------------------------------------------


def spoil(path, key, data):
    """Replace dataset ``key`` of ``path`` by ``data``."""
    with h5py.File(path, "r+") as file:
        del file[key]
        file[key] = data


@pytest.mark.parametrize(
    "key, data, problem",
    [
        ("a.png/keypoints", np.full((7, 2), np.nan, np.float32), "non-finite"),
        ("a.png/keypoints", np.zeros((7, 3), np.float32), r"shape \(7, 3\)"),
        ("a.png/keypoints", np.full((7, 2), 3e38, np.float32), "far outside the 80x64 image"),
        ("a.png/keypoints", np.zeros((7, 2), np.int32), "dtype int32"),
        ("a.png/scores", np.zeros(6, np.float32), r"shape \(6,\)"),
        ("a.png/descriptors", np.zeros((128, 6), np.float32), r"shape \(128, 6\), expected \(\*, 7\)"),
        ("a.png/descriptors", np.full((128, 7), np.inf, np.float32), "7 non-finite|896 non-finite"),
        ("a.png/image_size", np.array([80, -64]), "positive integers"),
        ("a.png/image_size", np.array([80, 64, 1]), "image_size"),
        ("a.png/covariances", np.zeros((7, 2), np.float32), "covariances"),
    ],
)
def test_invalid_features_are_refused_on_read(tmp_path, key, data, problem):
    path = tmp_path / "features.h5"
    with h5py.File(path, "w") as file:
        write_features(file, "a.png", make_features(covariances=True))
    spoil(path, key, data)
    with pytest.raises(CorruptFileError, match=problem) as info:
        read_features(path, "a.png")
    message = str(info.value)
    assert "features.h5" in message and "'/a.png'" in message and "--overwrite" in message


def test_invalid_matches_are_refused_on_read(tmp_path):
    path = tmp_path / "matches.h5"
    with h5py.File(path, "w") as file:
        write_matches(file, "a", "b", np.array([[0, 2], [3, 1]]), np.array([0.5, 0.9]), 5)
    assert len(read_matches(path, "a", "b", num_keypoints=(5, 3))[0]) == 2
    assert len(read_matches(path, "b", "a", num_keypoints=(3, 5))[0]) == 2  # the counts follow the order
    with pytest.raises(CorruptFileError, match="5 entries but image 0 has 6 keypoints"):
        read_matches(path, "a", "b", num_keypoints=(6, 3))
    with pytest.raises(CorruptFileError, match=r"indices from -1 to 2 \(image 1 has 2 keypoints\)"):
        read_matches(path, "a", "b", num_keypoints=(5, 2))
    spoil(path, "a/b/matches0", np.array([-7, 0, 1, 2, -1], np.int32))
    with pytest.raises(CorruptFileError, match="indices from -7"):
        read_matches(path, "a", "b")
    spoil(path, "a/b/matches0", np.array([-1, 0, 1, 2, -1], np.int32))
    spoil(path, "a/b/matching_scores0", np.array([0, np.nan, 1, 1, 0], np.float32))
    with pytest.raises(CorruptFileError, match="matching_scores0.*non-finite"):
        read_matches(path, "a", "b")
    spoil(path, "a/b/matches0", np.zeros(5, np.float32))
    with pytest.raises(CorruptFileError, match="dtype float32, expected integers"):
        read_matches(path, "a", "b")
