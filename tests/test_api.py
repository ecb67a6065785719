"""``EmotionRecognizer`` and ``fer-utils classify``: photos in, faces and emotions out."""

from __future__ import annotations

import doctest
import json

import cv2
import numpy as np
import pytest
from PIL import Image

import fer_utils
from fer_utils import api, cli, config
from fer_utils.video.tflite import TFLiteFaceClassifier


@pytest.fixture(scope="module")
def recognizer() -> api.EmotionRecognizer:
    return api.EmotionRecognizer()


@pytest.fixture(scope="module")
def photo_bgr() -> np.ndarray:
    grey = cv2.imread(str(config.BUNDLED_SAMPLE_FACE), cv2.IMREAD_GRAYSCALE)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


def test_the_docstring_example_runs() -> None:
    assert doctest.testmod(api, raise_on_error=True).attempted > 0


def test_the_public_names_are_at_the_top_of_the_package() -> None:
    assert fer_utils.EmotionRecognizer is api.EmotionRecognizer and fer_utils.analyze is api.analyze


def test_a_face_has_box_label_probabilities_and_detection_score(recognizer) -> None:
    (face,) = recognizer.analyze(config.BUNDLED_SAMPLE_FACE)
    assert set(face.probabilities) == set(recognizer.class_names)
    assert face.label == max(face.probabilities, key=face.probabilities.get)
    assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    x, y, width, height = face.box
    assert width > 48 and height > 48 and face.detection_score > 0


def test_every_kind_of_image_gives_the_same_answer(recognizer, photo_bgr) -> None:
    rgb = cv2.cvtColor(photo_bgr, cv2.COLOR_BGR2RGB)
    answers = [
        recognizer.analyze(str(config.BUNDLED_SAMPLE_FACE)),
        recognizer.analyze(photo_bgr),
        recognizer.analyze(rgb, channel_order="rgb"),
        recognizer.analyze(photo_bgr[:, :, 0]),
        recognizer.analyze(Image.fromarray(rgb)),
        recognizer.analyze(Image.fromarray(photo_bgr[:, :, 0].astype(np.uint16) * 257)),  # 16-bit grey
        recognizer.analyze(Image.fromarray(photo_bgr[:, :, 0].astype(np.float32) / 255)),  # float grey
    ]
    labels = [[face.label for face in faces] for faces in answers]
    assert all(found == labels[0] for found in labels) and len(labels[0]) == 1


def test_a_list_gives_one_list_per_image(recognizer, photo_bgr) -> None:
    results = recognizer.analyze([photo_bgr, np.full((100, 100), 128, np.uint8)])
    assert [len(faces) for faces in results] == [1, 0]


def test_a_bad_image_in_a_list_is_named_by_its_position(recognizer, photo_bgr) -> None:
    with pytest.raises(api.ImageReadError, match=r"image 1 of the list: .*\(4, 4, 2\)"):
        recognizer.analyze([photo_bgr, np.zeros((4, 4, 2), np.uint8)])


def test_a_face_crop_can_be_classified_whole() -> None:
    (face,) = api.analyze(np.full((48, 48), 100, np.uint8), detect=False)
    assert face.box == (0, 0, 48, 48) and face.detection_score is None


@pytest.mark.parametrize(
    "bad, words",
    [("missing.png", "no such image file"), (np.zeros((4, 4, 2), np.uint8), "(4, 4, 2)")],
)
def test_bad_images_are_named(recognizer, bad, words) -> None:
    with pytest.raises(api.ImageReadError, match=words.replace("(", r"\(").replace(")", r"\)")):
        recognizer.analyze(bad)


def test_classify_walks_directories_and_goes_on_after_an_unreadable_file(tmp_path, capsys) -> None:
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    (folder / "nested" / "face.png").write_bytes(config.BUNDLED_SAMPLE_FACE.read_bytes())
    (folder / "broken.jpg").write_text("not an image")
    (folder / "notes.txt").write_text("skipped: not an image suffix")
    code = cli.main(["classify", str(folder), "--json", "--annotate", str(tmp_path / "annotated")])
    captured = capsys.readouterr()
    assert code == cli.EXIT_FAILURE
    assert "broken.jpg" in captured.err and "notes.txt" not in captured.err
    (record,) = [json.loads(line) for line in captured.out.splitlines()]
    assert record["file"].endswith("face.png") and record["face"] == 0 and len(record["box"]) == 4
    assert (tmp_path / "annotated" / "face_annotated.png").is_file()


def test_classify_with_no_images_to_read_says_so(tmp_path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("not an image suffix")
    assert cli.main(["classify", str(tmp_path)]) == cli.EXIT_BAD_INPUT
    assert f"no images in {tmp_path} (looked for .jpg" in capsys.readouterr().err


def test_classify_prints_one_line_per_face(capsys) -> None:
    assert cli.main(["classify", str(config.BUNDLED_SAMPLE_FACE)]) == cli.EXIT_OK
    (line,) = capsys.readouterr().out.splitlines()
    file, face, box, label, probability = line.split("\t")
    assert file.endswith("sample_face.png") and face == "face 0" and box.startswith("box ")
    assert 0 < float(probability) <= 1


def test_the_usage_line_names_the_console_script(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: fer-utils")


def test_the_bundled_model_carries_its_class_names() -> None:
    from fer_utils.models.saving import embedded_class_names

    assert embedded_class_names(config.BUNDLED_MODEL) == list(api.EmotionRecognizer().class_names)


def test_a_tflite_export_and_litert_find_the_same_faces_and_labels_as_keras(recognizer, photo_bgr, tmp_path):
    from fer_utils.edge.export import export_all

    export_all(config.BUNDLED_MODEL, tmp_path, np.zeros((4, 48, 48), np.uint8), ["tflite_float32"])
    expected = [(face.box, face.label) for face in recognizer.analyze(photo_bgr)]
    for other in (
        api.EmotionRecognizer(model=tmp_path / "model_float32.tflite"),
        api.EmotionRecognizer(runtime="litert"),
    ):
        assert isinstance(other.classifier, TFLiteFaceClassifier)
        assert other.class_names == recognizer.class_names
        assert [(face.box, face.label) for face in other.analyze(photo_bgr)] == expected
