"""Cross-dataset faces from ROOT/<emotion>/<image> folder trees."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_utils.data.image_folders import (
    ImageFolderError,
    class_for_folder,
    load_face_image,
    load_image_folder,
    person_from_file_name,
)


def write_image(path: Path, shape: tuple[int, ...], seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Happy (2 colour PNG/JPG), anger (1 gray PNG), sadness (2 mixed), contempt (3, unmapped)."""
    root = tmp_path / "faces"
    write_image(root / "Happy" / "a.png", (80, 100, 3), seed=1)  # 100 wide, 80 high, colour
    write_image(root / "Happy" / "b.JPG", (48, 48, 3), seed=2)
    write_image(root / "anger" / "c.png", (48, 48), seed=3)  # already 48x48 gray
    write_image(root / "sadness" / "d.jpg", (120, 90), seed=4)
    write_image(root / "sadness" / "e.bmp", (30, 30), seed=5)  # smaller: upscaled
    (root / "sadness" / "notes.txt").write_text("not an image")
    for k in range(3):
        write_image(root / "contempt" / f"{k}.png", (48, 48), seed=10 + k)
    (root / "README.md").write_text("a file at the root is ignored")
    return root


def test_folders_map_case_insensitively(tree):
    loaded = load_image_folder(tree)
    names = [path.parent.name for path in loaded.paths]
    assert names == ["Happy", "Happy", "anger", "sadness", "sadness"]
    np.testing.assert_array_equal(loaded.dataset.labels, [3, 3, 0, 4, 4])


def test_unmapped_folders_are_reported_with_file_counts(tree):
    assert load_image_folder(tree).unmapped == {"contempt": 3}


def test_images_are_48x48_uint8(tree):
    dataset = load_image_folder(tree).dataset
    assert dataset.images.shape == (5, 48, 48)
    assert dataset.images.dtype == np.uint8
    assert len(dataset) == len(dataset.labels) == len(dataset.usage) == len(dataset.row_index) == 5


def test_gray_48x48_png_is_read_unchanged(tree):
    loaded = load_image_folder(tree)
    index = [path.name for path in loaded.paths].index("c.png")
    expected = np.random.default_rng(3).integers(0, 256, size=(48, 48), dtype=np.uint8)
    np.testing.assert_array_equal(loaded.dataset.images[index], expected)


def test_colour_image_is_converted_to_gray_and_resized(tmp_path):
    image = np.zeros((80, 100, 3), dtype=np.uint8)
    image[:] = (255, 255, 255)  # white in BGR
    path = tmp_path / "white.png"
    cv2.imwrite(str(path), image)
    face = load_face_image(path)
    assert face.shape == (48, 48) and face.dtype == np.uint8
    assert (face == 255).all()


def test_usage_and_metadata(tree):
    loaded = load_image_folder(tree, usage="JAFFE")
    assert set(loaded.dataset.usage) == {"JAFFE"}
    assert loaded.dataset.source == tree
    np.testing.assert_array_equal(loaded.dataset.row_index, [1, 2, 3, 4, 5])
    assert all(path.is_file() for path in loaded.paths)
    assert loaded.dataset.class_counts()["JAFFE"]["Happy"] == 2


@pytest.mark.parametrize(
    "name, label",
    [
        ("HAPPY", 3),
        (" Sad ", 4),
        ("surprised", 5),
        ("Neutral", 6),
        ("fearful", 2),
        ("disgust", 1),
        ("contempt", None),
        ("happy2", None),
    ],
)
def test_class_for_folder(name, label):
    assert class_for_folder(name) == label


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "nope")


def test_root_is_a_file(tmp_path):
    path = write_image(tmp_path / "face.png", (48, 48))
    with pytest.raises(FileNotFoundError):
        load_image_folder(path)


def test_corrupt_image_names_the_file(tree):
    bad = tree / "anger" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    with pytest.raises(ImageFolderError) as error:
        load_image_folder(tree)
    assert str(bad) in str(error.value)
    assert "not a readable image" in str(error.value)


def test_empty_image_file_names_the_file(tree):
    bad = tree / "Happy" / "zero.jpg"
    bad.write_bytes(b"")
    with pytest.raises(ImageFolderError, match="zero.jpg"):
        load_image_folder(tree)


def test_no_emotion_folders(tmp_path):
    write_image(tmp_path / "contempt" / "a.png", (48, 48))
    write_image(tmp_path / "misc" / "b.png", (48, 48))
    with pytest.raises(ImageFolderError) as error:
        load_image_folder(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message and "no images" in message
    assert "'contempt': 1" in message and "'misc': 1" in message


def test_empty_root(tmp_path):
    with pytest.raises(ImageFolderError, match="no images"):
        load_image_folder(tmp_path)


def test_emotion_folders_without_images(tmp_path):
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "readme.txt").write_text("nothing here")
    with pytest.raises(ImageFolderError, match="no images"):
        load_image_folder(tmp_path)


def test_the_person_is_the_file_name_before_its_first_underscore():
    assert person_from_file_name(Path("ckplus/happy/S010_03.png")) == "S010"
    assert person_from_file_name("face.png") == "face"
