"""Edge exports: every format written, each giving the Keras model's answers, frozen-graph names, CLI codes.

One tiny model (preprocessing, convolution, batch norm, dense softmax) is exported once per module
to every format. Its dense layer has large weights so its probabilities are peaked and change with
the face: a format that mangled its input (wrong scale, wrong dtype) would disagree with Keras.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from fer_utils import cli, config
from fer_utils.data.labels import FER2013_CLASSES
from fer_utils.data.preprocessing import preprocessing_layer
from fer_utils.edge import export as export_module
from fer_utils.edge.evaluation import export_table, format_table, int8_check, load_classifier
from fer_utils.edge.export import (
    ExportError,
    calibration_faces,
    export_all,
    export_tflite,
    frozen_graph_info_path,
    read_frozen_graph_info,
)
from fer_utils.edge.formats import FORMATS, default_output_dir, validate_formats
from fer_utils.edge.inference import TFLiteFaceClassifier, as_face_batch
from fer_utils.edge.optimizer_ops import DEEPLENS_TENSORFLOW_LAYERS, unsupported_operations
from fer_utils.models.saving import save_model_with_metadata, sidecar_path
from fer_utils.video.recognition import FaceClassifier
from fer_utils.video.stream import DEFAULT_MODEL_NAMES

N_CLASSES = 7


def synthetic_faces(n: int, seed: int) -> np.ndarray:
    """Faces of varied brightness and contrast, spanning the full 0-255 range (like real crops)."""
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0, 1, 48, dtype=np.float32)
    faces = []
    for _ in range(n):
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * gradient[None, :] + np.sin(angle) * gradient[:, None]
        face = rng.uniform(40, 200) + rng.uniform(60, 160) * ramp + rng.normal(0, 25, (48, 48))
        faces.append(np.clip(np.round(face), 0, 255))
    faces = np.stack(faces).astype(np.uint8)
    faces[0, 0, 0], faces[0, 0, 1] = 0, 255
    return faces


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(1)
    inputs = keras.Input((48, 48, 1), name="pixels")
    x = preprocessing_layer()(inputs)
    x = keras.layers.Conv2D(4, 5, strides=4, name="conv")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Flatten()(x)
    dense_init = keras.initializers.RandomNormal(stddev=1.5, seed=2)
    outputs = keras.layers.Dense(
        N_CLASSES, activation="softmax", kernel_initializer=dense_init, name="predictions"
    )(x)
    return keras.Model(inputs, outputs, name="tiny")


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    return save_model_with_metadata(
        tiny_model(), tmp_path_factory.mktemp("model") / "tiny.keras", {"experiment": "tiny"}
    )


@pytest.fixture(scope="module")
def exports(tiny_model_path, tmp_path_factory):
    return export_all(tiny_model_path, tmp_path_factory.mktemp("exports"), synthetic_faces(64, seed=0))


@pytest.fixture(scope="module")
def test_faces():
    return synthetic_faces(24, seed=1)


@pytest.fixture(scope="module")
def keras_probabilities(tiny_model_path, test_faces):
    return keras.models.load_model(tiny_model_path).predict(test_faces.astype(np.float32), verbose=0)


def by_format(results):
    return {result.format: result for result in results}


def test_every_format_is_written_with_its_size_and_a_manifest(exports):
    assert [result.format for result in exports] == ["keras", *FORMATS]
    for result in exports:
        assert result.path.exists() and result.size_bytes > 0 and result.class_names == FER2013_CLASSES
    sizes = {result.format: result.size_bytes for result in exports}
    assert sizes["tflite_int8"] < sizes["tflite_float16"] < sizes["tflite_float32"]
    manifest = json.loads((exports[1].path.parent / "exports.json").read_text())
    assert [entry["format"] for entry in manifest["exports"]] == ["keras", *FORMATS]
    assert manifest["class_names"] == list(FER2013_CLASSES)
    assert not list(exports[1].path.parent.glob("*.partial*"))


@pytest.mark.parametrize(
    ("export_format", "tolerance"),
    [
        ("saved_model", 1e-5),
        ("frozen_graph", 1e-5),
        ("tflite_float32", 1e-5),
        ("tflite_float16", 5e-3),
    ],
)
def test_float_exports_give_the_keras_probabilities(
    exports, export_format, tolerance, test_faces, keras_probabilities
):
    classifier = load_classifier(by_format(exports)[export_format], num_threads=1)
    assert isinstance(classifier, FaceClassifier) and classifier.class_names == FER2013_CLASSES
    probabilities = classifier(test_faces)
    assert probabilities.dtype == np.float32 and probabilities.shape == (len(test_faces), N_CLASSES)
    np.testing.assert_allclose(probabilities, keras_probabilities, atol=tolerance)


def test_int8_export_takes_raw_uint8_pixels_and_roughly_agrees(exports, test_faces, keras_probabilities):
    int8 = by_format(exports)["tflite_int8"]
    assert int8.details["input_dtype"] == "uint8"
    assert (int8.details["input_scale"], int8.details["input_zero_point"]) == (1.0, 0)
    probabilities = load_classifier(int8, num_threads=1)(test_faces)
    # The test means something only if the model is confident and its answer depends on the face.
    assert keras_probabilities.max(axis=1).mean() > 0.6 and len(set(keras_probabilities.argmax(1))) >= 4
    assert np.abs(probabilities - keras_probabilities).max() < 0.1
    assert np.mean(probabilities.argmax(1) == keras_probabilities.argmax(1)) >= 0.9


def test_tflite_classifier_resizes_for_any_batch(exports, test_faces):
    path = by_format(exports)["tflite_int8"].path
    classifier = TFLiteFaceClassifier(path, FER2013_CLASSES, num_threads=1, batch_size=5)
    all_at_once = classifier(test_faces)
    one_by_one = np.concatenate([classifier(face[np.newaxis]) for face in test_faces[:6]])
    np.testing.assert_allclose(all_at_once[:6], one_by_one, atol=1e-6)
    np.testing.assert_allclose(classifier(test_faces[..., np.newaxis]), all_at_once, atol=1e-6)
    assert classifier(test_faces[:0]).shape == (0, N_CLASSES)
    np.testing.assert_allclose(all_at_once.sum(axis=1), 1.0, atol=0.02)


def test_tflite_classifier_rejects_bad_files_and_faces(exports, tmp_path):
    path = by_format(exports)["tflite_float32"].path
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        TFLiteFaceClassifier(tmp_path / "missing.tflite", FER2013_CLASSES)
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a flatbuffer")
    with pytest.raises(ValueError, match="garbage.tflite"):
        TFLiteFaceClassifier(garbage, FER2013_CLASSES)
    with pytest.raises(ValueError, match="7 outputs but 6 class names"):
        TFLiteFaceClassifier(path, FER2013_CLASSES[:6])
    classifier = TFLiteFaceClassifier(path, FER2013_CLASSES)
    with pytest.raises(ValueError, match=r"\(N, 48, 48"):
        classifier(np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="whole numbers 0-255"):
        classifier(np.full((1, 48, 48), 0.5, np.float32))


def test_tflite_classifier_falls_back_to_tensorflow_without_litert(exports, test_faces, monkeypatch):
    path = by_format(exports)["tflite_int8"].path
    expected = TFLiteFaceClassifier(path, FER2013_CLASSES, num_threads=1)(test_faces)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import now raises ImportError
    with pytest.warns(UserWarning, match="deprecated"):
        fallback = TFLiteFaceClassifier(path, FER2013_CLASSES, num_threads=1)
    np.testing.assert_allclose(fallback(test_faces), expected, atol=1e-6)


def test_float_faces_holding_grey_levels_are_accepted():
    faces = np.array([[0.0, 255.0]] * 24 * 48, np.float32).reshape(1, 48, 48)
    assert as_face_batch(faces).dtype == np.uint8 and as_face_batch(faces).shape == (1, 48, 48, 1)


def test_frozen_graph_has_named_input_and_output_and_tf1_ops(exports):
    result = by_format(exports)["frozen_graph"]
    info = read_frozen_graph_info(result.path)
    assert (info["input"], info["output"]) == ("pixels:0", "probabilities:0")
    assert frozen_graph_info_path(result.path).name == "frozen_graph.json"
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(result.path.read_bytes())
    nodes = {node.name: node.op for node in graph_def.node}
    assert (
        nodes["pixels"] == "Placeholder"
        and "probabilities" in nodes
        and info["input_shape"] == [1, 48, 48, 1]
    )
    assert not {"AddV2", "NoOp", "VarHandleOp", "ReadVariableOp"} & set(nodes.values())
    # Dense is a MatMul, which the DeepLens page does not list; the rest (Flatten a constant Reshape) is.
    assert info["undocumented_for_deeplens"] == unsupported_operations(graph_def) == {"MatMul": 1}


def test_unsupported_operations_flags_a_deliberately_unsupported_op():
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def graph_with_erf(x):
        return tf.nn.relu(tf.math.erf(x) * 2.0)

    graph_def = graph_with_erf.get_concrete_function().graph.as_graph_def()
    assert unsupported_operations(graph_def) == {"Erf": 1}
    assert (
        unsupported_operations(
            graph_def, supported={"Erf", "Mul", "Relu", "Const", "Placeholder", "Identity"}
        )
        == {}
    )
    assert len(DEEPLENS_TENSORFLOW_LAYERS) == 30 and "Conv2D" in DEEPLENS_TENSORFLOW_LAYERS
    assert "AddV2" not in DEEPLENS_TENSORFLOW_LAYERS


def test_export_table_compares_every_format_with_keras(exports, test_faces, keras_probabilities):
    labels = keras_probabilities.argmax(axis=1)
    labels[::3] = (labels[::3] + 1) % N_CLASSES  # keras is right on two thirds
    sets = {"PublicTest": (test_faces[:12], labels[:12]), "PrivateTest": (test_faces[12:], labels[12:])}
    table = export_table(exports, sets, latency_repeats=3, num_threads=1)
    assert list(table.index) == ["keras", *FORMATS]
    assert table.loc["keras", "PublicTest accuracy %"] == pytest.approx(100 * 8 / 12)
    assert table.loc["keras", "PrivateTest Δ pts"] == 0 and table.loc["keras", "agreement %"] == 100
    assert table.loc["tflite_float32", "PublicTest Δ pts"] == pytest.approx(0)
    assert (
        (table["size_kib"] > 0).all()
        and (table["latency_ms"] > 0).all()
        and (table["throughput_faces_per_s"] > 0).all()
    )
    assert "PrivateTest Δ pts" in format_table(table)
    assert int8_check(table).startswith("int8 vs keras: PublicTest")


def test_a_failed_conversion_leaves_the_existing_file_alone(exports, monkeypatch):
    existing = by_format(exports)["tflite_int8"].path
    saved_model = by_format(exports)["saved_model"].path
    before = existing.read_bytes()
    with pytest.raises(ValueError, match="representative faces"):
        export_tflite(saved_model, existing, "int8", representative_faces=None)
    with pytest.raises(FileNotFoundError, match="no_such_saved_model is not a SavedModel"):
        export_tflite(existing.parent / "no_such_saved_model", existing, "float32")

    class BrokenConverter:
        def convert(self):
            raise RuntimeError("op not supported")

    monkeypatch.setattr(export_module, "tflite_converter", lambda *args: BrokenConverter())
    with pytest.raises(ExportError, match="float32 conversion of .* failed: op not supported"):
        export_tflite(saved_model, existing, "float32")
    assert existing.read_bytes() == before


def test_formats_output_dir_and_calibration_faces(make_rows):
    assert validate_formats(["frozen_graph", "saved_model"]) == ("saved_model", "frozen_graph")
    with pytest.raises(ValueError, match="onnx"):
        validate_formats(["onnx"])
    assert default_output_dir("models/phase1_cnn.keras") == config.EXPORTS_DIR / "phase1_cnn"
    data = make_rows(30, usage=["Training"] * 20 + ["PublicTest"] * 10)
    chosen = calibration_faces(data, count=8)
    assert chosen.shape == (8, 48, 48)
    training_images = {image.tobytes() for image in data.split("Training").images}
    assert all(face.tobytes() in training_images for face in chosen)
    with pytest.raises(ValueError, match="no Training rows"):
        calibration_faces(make_rows(5, usage="PublicTest"))


def test_cli_export_writes_the_files_and_prints_json(tiny_model_path, tmp_path, capsys):
    code = cli.main(
        [
            "export",
            str(tiny_model_path),
            "--formats",
            "tflite_float32",
            "frozen_graph",
            "--output-dir",
            str(tmp_path / "out"),
            "--csv",
            str(config.SAMPLE_FER2013_CSV),
            "--calibration-faces",
            "20",
            "--latency-repeats",
            "2",
            "--json",
        ]
    )
    assert code == cli.EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert [row["format"] for row in report["table"]] == ["keras", "tflite_float32", "frozen_graph"]
    assert report["table"][1]["PublicTest Δ pts"] == pytest.approx(0)
    assert (tmp_path / "out" / "frozen_graph.pb").is_file() and (
        tmp_path / "out" / "export_table.csv"
    ).is_file()


def test_cli_export_without_a_model_exports_the_video_commands_default(
    tiny_model_path, tmp_path, monkeypatch, capsys
):
    models = tmp_path / "models"
    models.mkdir()
    for source in (tiny_model_path, sidecar_path(tiny_model_path)):
        shutil.copy(source, models / Path(DEFAULT_MODEL_NAMES[0]).with_suffix(source.suffix))
    monkeypatch.setattr(config, "MODELS_DIR", models)
    arguments = ["export", "--formats", "tflite_float32", "--output-dir", str(tmp_path / "out")]
    arguments += ["--csv", str(config.SAMPLE_FER2013_CSV), "--latency-repeats", "1", "--json"]
    assert cli.main(arguments) == cli.EXIT_OK
    assert json.loads(capsys.readouterr().out)["model"] == str(models / DEFAULT_MODEL_NAMES[0])


def test_cli_export_bad_input_exits_2_with_one_error_line(tiny_model_path, tmp_path, capsys):
    assert cli.main(["export", str(tmp_path / "nope.keras")]) == cli.EXIT_BAD_INPUT
    assert capsys.readouterr().err.strip() == f"error: Model file {tmp_path / 'nope.keras'} does not exist"
    assert cli.main(["export", str(tiny_model_path), "--formats", "onnx"]) == cli.EXIT_BAD_INPUT
    assert "Unknown export format" in capsys.readouterr().err
    assert (
        cli.main(["export", str(tiny_model_path), "--csv", str(tmp_path / "none.csv")]) == cli.EXIT_BAD_INPUT
    )
    assert "none.csv" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
