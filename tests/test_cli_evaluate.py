"""``python -m fer_utils evaluate``: numbers, label mapping for 6-class models, clear errors."""

import json

import numpy as np
import pytest

from fer_utils import cli, config
from fer_utils.analysis.evaluation import evaluate_split, labels_for_model
from fer_utils.data.fer2013 import load_fer2013
from fer_utils.data.labels import FER2013_CLASSES, MERGED_CLASSES
from fer_utils.models.architectures import build_model
from fer_utils.models.saving import ModelFileError, load_model_with_metadata, save_model_with_metadata


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    seven = save_model_with_metadata(
        build_model("mini_xception", 7), folder / "seven.keras", {"experiment": "t7"}
    )
    six = save_model_with_metadata(
        build_model("mini_xception", 6), folder / "six.keras", {"experiment": "t6"}
    )
    return seven, six


def test_sidecar_records_classes_input_contract_and_parameters(saved_models):
    _, metadata = load_model_with_metadata(saved_models[1])
    assert metadata["class_names"] == list(MERGED_CLASSES)
    assert metadata["input"]["shape"] == [48, 48, 1]
    assert metadata["parameters"]["total"] == 57_270


def test_evaluate_json_matches_the_library_evaluation(saved_models, capsys):
    code = cli.main(["evaluate", str(saved_models[0]), "--csv", str(config.SAMPLE_FER2013_CSV), "--json"])
    assert code == cli.EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert set(report["splits"]) == {"Training", "PublicTest"}
    model, _ = load_model_with_metadata(saved_models[0])
    data = load_fer2013(config.SAMPLE_FER2013_CSV).split("PublicTest")
    expected = evaluate_split(model, data, FER2013_CLASSES, "PublicTest")
    assert report["splits"]["PublicTest"]["accuracy"] == round(expected.accuracy, 6)
    assert report["splits"]["PublicTest"]["n_images"] == 140


def test_six_class_model_gets_merged_labels(saved_models, capsys):
    assert cli.main(["evaluate", str(saved_models[1]), "--csv", str(config.SAMPLE_FER2013_CSV)]) == 0
    out = capsys.readouterr().out
    assert "6 classes" in out and "Disgust" not in out
    data = load_fer2013(config.SAMPLE_FER2013_CSV)
    merged = labels_for_model(data, MERGED_CLASSES)
    assert merged.max() == 5 and np.array_equal(merged[data.labels == 1], np.zeros((data.labels == 1).sum()))


def test_missing_model_and_missing_csv_exit_2_with_a_clear_message(saved_models, tmp_path, capsys):
    assert cli.main(["evaluate", str(tmp_path / "nope.keras")]) == cli.EXIT_BAD_INPUT
    assert "nope.keras does not exist" in capsys.readouterr().err
    assert (
        cli.main(["evaluate", str(saved_models[0]), "--csv", str(tmp_path / "none.csv")])
        == cli.EXIT_BAD_INPUT
    )
    assert "none.csv" in capsys.readouterr().err


def test_unreadable_model_exits_2(tmp_path, capsys):
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"this is not a zip file")
    with pytest.raises(ModelFileError):
        load_model_with_metadata(garbage)
    assert cli.main(["evaluate", str(garbage), "--csv", str(config.SAMPLE_FER2013_CSV)]) == cli.EXIT_BAD_INPUT
    assert "not a readable Keras model" in capsys.readouterr().err


def test_evaluate_on_an_image_folder(saved_models, tmp_path, capsys):
    import cv2

    data = load_fer2013(config.SAMPLE_FER2013_CSV)
    for name, label in (("happy", 3), ("sadness", 4), ("contempt", 0)):
        (tmp_path / name).mkdir()
        for i, face in enumerate(data.images[data.labels == label][:3]):
            cv2.imwrite(str(tmp_path / name / f"{i}.png"), cv2.resize(face, (96, 96)))
    assert cli.main(["evaluate", str(saved_models[0]), "--images", str(tmp_path), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["splits"]["images"]["n_images"] == 6
    assert "contempt" in captured.err
