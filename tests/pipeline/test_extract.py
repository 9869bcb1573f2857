"""extract_features: folders and lists of images, resuming, interruptions and bad images."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from tiepoint import registry
from tiepoint.errors import CorruptFileError, OptionError
from tiepoint.io.h5 import list_feature_names, read_features, write_features
from tiepoint.pipeline import NoImagesError, extract_features, find_images


def write_image(path: Path, seed: int, size: tuple[int, int] = (80, 64)) -> Path:
    """A random textured greyscale image of ``size`` (width, height), written with OpenCV."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (size[1] // 4, size[0] // 4), dtype=np.uint8)
    image = cv2.resize(coarse, size, interpolation=cv2.INTER_CUBIC)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "images"
    write_image(root / "b.png", 0)
    write_image(root / "a.jpg", 1)
    write_image(root / "seq" / "c.png", 2)
    (root / "notes.txt").write_text("not an image")
    return root


def test_extracts_a_folder(folder, tmp_path):
    output = tmp_path / "features.h5"
    summary = extract_features(folder, output, max_keypoints=50, progress=False)
    assert summary.extracted == ["a.jpg", "b.png", "seq/c.png"]
    assert summary.skipped == [] and summary.failed == []
    assert summary.output == output and summary.image_root == folder and summary.seconds > 0
    assert list_feature_names(output) == ["a.jpg", "b.png", "seq/c.png"]
    features = read_features(output, "seq/c.png")
    assert 0 < len(features) <= 50 and features.descriptors.shape[1] == 128
    assert features.image_size == (80, 64)
    with h5py.File(output, "r") as file:
        method = json.loads(file["b.png"].attrs["method"])
    assert method["name"] == "sift" and method["config"]["max_keypoints"] == 50
    assert not output.with_name("features.h5.partial").exists()


def test_resumes_with_only_new_images(folder, tmp_path):
    output = tmp_path / "features.h5"
    extract_features(folder, output, progress=False)
    before = read_features(output, "b.png")
    write_image(folder / "d.png", 3)
    summary = extract_features(folder, output, progress=False)
    assert summary.extracted == ["d.png"]
    assert summary.skipped == ["a.jpg", "b.png", "seq/c.png"]
    assert list_feature_names(output) == ["a.jpg", "b.png", "d.png", "seq/c.png"]
    np.testing.assert_array_equal(read_features(output, "b.png").keypoints, before.keypoints)
    again = extract_features(folder, output, overwrite=True, progress=False)
    assert len(again.extracted) == 4 and again.skipped == []


def test_refuses_to_mix_configurations(folder, tmp_path):
    output = tmp_path / "features.h5"
    extract_features(folder, output, max_keypoints=50, progress=False)
    with pytest.raises(OptionError, match="overwrite=True"):
        extract_features(folder, output, max_keypoints=60, progress=False)
    assert list_feature_names(output) == ["a.jpg", "b.png", "seq/c.png"]


def test_resumes_a_killed_run(folder, tmp_path):
    output = tmp_path / "features.h5"
    kept = extract_features(folder / "a.jpg", tmp_path / "first.h5", progress=False)
    assert kept.extracted == ["a.jpg"]
    with h5py.File(tmp_path / "first.h5", "r") as file:
        method = file["a.jpg"].attrs["method"]
    with h5py.File(output.with_name("features.h5.partial"), "w") as file:
        write_features(file, "a.jpg", read_features(tmp_path / "first.h5", "a.jpg"), attrs={"method": method})
        group = file.create_group("b.png")  # cut short: no `complete` attribute
        group.create_dataset("keypoints", data=np.zeros((2, 2), np.float32))
    summary = extract_features(folder, output, progress=False)
    assert summary.skipped == ["a.jpg"]
    assert summary.extracted == ["b.png", "seq/c.png"]
    assert len(read_features(output, "b.png")) > 2
    assert not output.with_name("features.h5.partial").exists()


def test_discards_a_corrupt_partial(folder, tmp_path):
    output = tmp_path / "features.h5"
    output.with_name("features.h5.partial").write_bytes(np.random.default_rng(0).bytes(4096))
    summary = extract_features(folder, output, progress=False)
    assert summary.extracted == ["a.jpg", "b.png", "seq/c.png"]
    assert list_feature_names(output) == summary.extracted


def test_interrupted_run_keeps_finished_images(folder, tmp_path, monkeypatch):
    real_get_extractor = registry.get_extractor

    class Interrupting:
        """Extracts like the real extractor, but is interrupted (Ctrl-C) on the second image."""

        def __init__(self, extractor):
            self.extractor, self.config, self.calls = extractor, extractor.config, 0

        def extract(self, image):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt
            return self.extractor.extract(image)

    monkeypatch.setattr(registry, "get_extractor", lambda *a, **o: Interrupting(real_get_extractor(*a, **o)))
    output = tmp_path / "features.h5"
    with pytest.raises(KeyboardInterrupt):
        extract_features(folder, output, progress=False)
    assert list_feature_names(output) == ["a.jpg"]
    assert not output.with_name("features.h5.partial").exists()

    monkeypatch.setattr(registry, "get_extractor", real_get_extractor)
    summary = extract_features(folder, output, progress=False)
    assert summary.skipped == ["a.jpg"] and summary.extracted == ["b.png", "seq/c.png"]


def test_bad_images_are_reported_not_fatal(folder, tmp_path, caplog):
    (folder / "corrupt.png").write_bytes(np.random.default_rng(0).bytes(500))
    (folder / "empty.jpg").write_bytes(b"")
    write_image(folder / "tiny.png", 4, size=(8, 8))
    output = tmp_path / "features.h5"
    with caplog.at_level("WARNING", logger="tiepoint"):
        summary = extract_features(folder, output, progress=False)
    assert summary.extracted == ["a.jpg", "b.png", "seq/c.png"]
    assert [name for name, _ in summary.failed] == ["corrupt.png", "empty.jpg", "tiny.png"]
    assert all(reason for _, reason in summary.failed)
    assert "corrupt.png" in caplog.text
    assert list_feature_names(output) == ["a.jpg", "b.png", "seq/c.png"]
    assert "failed 3" in str(summary)


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NoImagesError, match="no images found"):
        extract_features(tmp_path / "empty", tmp_path / "features.h5", progress=False)
    assert not (tmp_path / "features.h5").exists()
    with pytest.raises(FileNotFoundError, match="missing"):
        extract_features(tmp_path / "missing", tmp_path / "features.h5", progress=False)


def test_image_list_file(folder, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("# images to extract\nseq/c.png\n\nb.png\n")
    root, names = find_images(listing, image_root=folder)
    assert root == folder and names == ["seq/c.png", "b.png"]
    (folder / "list.txt").write_text("b.png\nseq/c.png\n")
    summary = extract_features(folder / "list.txt", tmp_path / "features.h5", progress=False)
    assert summary.extracted == ["b.png", "seq/c.png"]


def test_sequence_of_paths(folder, tmp_path):
    paths = [folder / "seq" / "c.png", str(folder / "b.png"), folder / "b.png"]
    root, names = find_images(paths)
    assert root == folder and names == ["seq/c.png", "b.png"]
    assert find_images([folder / "seq" / "c.png"]) == (folder / "seq", ["c.png"])
    with pytest.raises(ValueError, match="not inside the image root"):
        find_images(paths, image_root=folder / "seq")
    summary = extract_features(paths, tmp_path / "f.h5", method="orb+ratio", as_half=True, progress=False)
    assert summary.extracted == ["seq/c.png", "b.png"]
    assert read_features(tmp_path / "f.h5", "b.png").descriptors.dtype == np.uint8
    with pytest.raises(NoImagesError):
        find_images([])


def test_a_text_file_that_is_not_an_image_list_is_refused(tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# a title\nsome prose that names no file\nmore prose\n")
    with pytest.raises(NoImagesError, match="none of its 2 entries"):
        find_images(notes)
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(NoImagesError, match="neither an image nor a readable image list"):
        find_images(binary)


def test_a_replaced_image_is_extracted_again(folder, tmp_path):
    output = tmp_path / "features.h5"
    extract_features(folder, output, method="orb", progress=False)
    with h5py.File(output, "r") as file:
        attrs = dict(file["b.png"].attrs)
    assert attrs["source_size"] == (folder / "b.png").stat().st_size
    assert (
        attrs["source_mtime_ns"] == (folder / "b.png").stat().st_mtime_ns
        and len(attrs["source_blake2b"]) == 32
    )
    before = read_features(output, "b.png")

    write_image(folder / "b.png", 7)  # another image under the same name
    stat = (folder / "b.png").stat()
    os.utime(folder / "b.png", ns=(stat.st_atime_ns, attrs["source_mtime_ns"] + 10**9))
    touched = (folder / "a.jpg").stat()  # the same bytes with a new time: not extracted again
    os.utime(folder / "a.jpg", ns=(touched.st_atime_ns, touched.st_mtime_ns + 10**9))
    summary = extract_features(folder, output, method="orb", progress=False)
    assert summary.changed == ["b.png"] and summary.extracted == ["b.png"] and summary.invalid == []
    assert summary.skipped == ["a.jpg", "seq/c.png"]
    assert "redone: 1 image changed" in str(summary)
    after = read_features(output, "b.png")
    assert not np.array_equal(after.keypoints, before.keypoints)
    with h5py.File(output, "r") as file:
        assert file["a.jpg"].attrs["source_mtime_ns"] == (folder / "a.jpg").stat().st_mtime_ns
    again = extract_features(folder, output, method="orb", progress=False)
    assert again.extracted == [] and again.changed == []


def test_a_changed_image_that_fails_loses_its_old_features(folder, tmp_path):
    output = tmp_path / "features.h5"
    extract_features(folder, output, method="orb", progress=False)
    (folder / "b.png").write_bytes(b"not an image any more")
    summary = extract_features(folder, output, method="orb", progress=False)
    assert summary.changed == ["b.png"] and [name for name, _ in summary.failed] == ["b.png"]
    assert list_feature_names(output) == ["a.jpg", "seq/c.png"]


def test_garbage_in_a_dataset_is_detected_and_extracted_again(folder, tmp_path, caplog):
    output = tmp_path / "features.h5"
    extract_features(folder, output, method="sift", max_keypoints=50, progress=False)
    with h5py.File(output, "r") as file:
        offset, size = (
            file["b.png/descriptors"].id.get_offset(),
            file["b.png/descriptors"].id.get_storage_size(),
        )
    assert offset is not None and size > 0
    with open(output, "r+b") as raw:  # garbage bytes over the stored descriptors
        raw.seek(offset)
        raw.write(np.random.default_rng(0).bytes(size))
    with pytest.raises(CorruptFileError, match=r"features\.h5.*b\.png.*descriptors.*non-finite.*--overwrite"):
        read_features(output, "b.png")
    with caplog.at_level("WARNING", logger="tiepoint"):
        summary = extract_features(folder, output, method="sift", max_keypoints=50, progress=False)
    assert summary.invalid == ["b.png"] and summary.extracted == ["b.png"]
    assert "b.png" in caplog.text
    assert np.isfinite(read_features(output, "b.png").descriptors).all()


def test_overwrite_replaces_a_truncated_file(folder, tmp_path):
    output = tmp_path / "features.h5"
    extract_features(folder, output, method="orb", progress=False)
    data = output.read_bytes()
    output.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="--overwrite"):
        extract_features(folder, output, method="orb", progress=False)
    assert output.read_bytes() == data[: len(data) // 2]  # left as it was
    summary = extract_features(folder, output, method="orb", overwrite=True, progress=False)
    assert summary.extracted == ["a.jpg", "b.png", "seq/c.png"]
    assert list_feature_names(output) == summary.extracted


def test_feature_groups_carry_a_fingerprint_of_their_datasets(folder, tmp_path):
    from tiepoint.io.h5 import FINGERPRINT, feature_fingerprint, group_fingerprint

    output = tmp_path / "features.h5"
    extract_features(folder, output, method="sift", max_keypoints=50, as_half=True, progress=False)
    with h5py.File(output, "r+") as file:
        stored = {name: file[name].attrs[FINGERPRINT] for name in ("a.jpg", "b.png", "seq/c.png")}
        assert len(set(stored.values())) == 3 and all(len(value) == 32 for value in stored.values())
        for name, value in stored.items():  # what a reader computes from the datasets is what was stored
            del file[name].attrs[FINGERPRINT]
            assert group_fingerprint(file[name]) == value
    # a rerun gives the groups without one (hloc's, an older tiepoint's) their fingerprint
    summary = extract_features(folder, output, method="sift", max_keypoints=50, as_half=True, progress=False)
    assert summary.extracted == []
    assert {name: feature_fingerprint(output, name) for name in stored} == stored
    with h5py.File(output, "r") as file:
        assert all(FINGERPRINT in file[name].attrs for name in stored)
    # extracting the same image again gives the same fingerprint; another image another one
    again = extract_features(
        folder, output, method="sift", max_keypoints=50, as_half=True, overwrite=True, progress=False
    )
    assert again.extracted and {name: feature_fingerprint(output, name) for name in stored} == stored
    write_image(folder / "b.png", 7)
    extract_features(folder, output, method="sift", max_keypoints=50, as_half=True, progress=False)
    assert feature_fingerprint(output, "b.png") != stored["b.png"]


def test_a_missing_file_in_an_image_list_is_named_as_missing(tmp_path, textured_image):
    cv2.imwrite(str(tmp_path / "a.png"), textured_image)
    missing = tmp_path.parent / "elsewhere" / "gone.png"  # absolute and outside the list's folder
    listing = tmp_path / "list.txt"
    listing.write_text(f"a.png\n{missing}\n")
    with pytest.raises(FileNotFoundError, match="gone.png not found"):
        find_images(listing)


def test_an_image_list_line_starting_with_hash_is_a_name_when_the_file_exists(tmp_path, textured_image):
    for name in ("a.png", "#b.png"):
        cv2.imwrite(str(tmp_path / name), textured_image)
    listing = tmp_path / "list.txt"
    listing.write_text("# a comment, as in hloc's image lists\na.png\n#b.png\n")
    assert find_images(listing)[1] == ["a.png", "#b.png"]
