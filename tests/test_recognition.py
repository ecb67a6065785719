"""Batched face classification, per-face smoothing across frames, and the frame recognizer."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from helpers.video_material import detectable_sample_faces, frame_with_faces, save_tiny_model

from fer_utils import config
from fer_utils.data.labels import FER2013_CLASSES
from fer_utils.video import tflite
from fer_utils.video.face_detection import FaceDetector
from fer_utils.video.recognition import (
    EmotionRecognizer,
    FaceClassifier,
    KerasFaceClassifier,
    ProbabilitySmoother,
    box_iou,
    load_face_classifier,
    match_boxes,
)
from fer_utils.video.tflite import TFLiteFaceClassifier


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> KerasFaceClassifier:
    return KerasFaceClassifier.from_file(save_tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras"))


@pytest.fixture(scope="module")
def sample_faces() -> np.ndarray:
    return detectable_sample_faces(3)[0]


class CountingClassifier:
    """Records each call's batch, so tests can see that a frame costs one batched call."""

    class_names = ("Happy", "Sad")

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        self.batches.append(len(faces))
        happy = faces.reshape(len(faces), -1).mean(axis=1) / 255.0
        return np.stack([happy, 1 - happy], axis=1).astype(np.float32)


def test_keras_classifier_matches_the_model_and_follows_the_protocol(classifier) -> None:
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48, 1), dtype=np.uint8)
    probabilities = classifier(faces)
    assert isinstance(classifier, FaceClassifier)
    assert classifier.class_names == FER2013_CLASSES
    assert probabilities.shape == (5, 7) and probabilities.dtype == np.float32
    np.testing.assert_allclose(
        probabilities, classifier.model.predict(faces.astype(np.float32), verbose=0), atol=1e-5
    )
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert classifier(faces[:0]).shape == (0, 7)
    with pytest.raises(ValueError, match=r"\(N, 48, 48, 1\)"):
        classifier(faces[..., 0])


def test_class_names_must_fit_the_model(classifier) -> None:
    with pytest.raises(ValueError, match="3 class names for a model with 7 outputs"):
        KerasFaceClassifier(classifier.model, ["a", "b", "c"])


def test_litert_runs_the_cached_conversion_with_the_models_probabilities(tmp_path, monkeypatch) -> None:
    model_path = save_tiny_model(tmp_path / "tiny.keras")
    monkeypatch.setattr(config, "TFLITE_CACHE_DIR", tmp_path / "cache")
    faces = np.random.default_rng(1).integers(0, 256, (4, 48, 48, 1), dtype=np.uint8)
    on_litert = load_face_classifier(model_path, runtime="litert")
    assert isinstance(on_litert, TFLiteFaceClassifier) and on_litert.class_names == FER2013_CLASSES
    np.testing.assert_allclose(on_litert(faces), load_face_classifier(model_path)(faces), atol=1e-5)
    cached = list((tmp_path / "cache").glob("*.tflite"))
    assert [path.name.startswith("tiny-") for path in cached] == [True]

    def no_second_conversion(model):
        raise AssertionError("converted again although the conversion is cached")

    monkeypatch.setattr(tflite, "keras_model_as_tflite", no_second_conversion)
    assert load_face_classifier(model_path, runtime="litert").path == cached[0]


def test_a_broken_cached_conversion_is_rebuilt_and_a_retrained_model_converts_again(
    tmp_path, monkeypatch
) -> None:
    model_path = save_tiny_model(tmp_path / "tiny.keras")
    monkeypatch.setattr(config, "TFLITE_CACHE_DIR", tmp_path / "cache")
    cached = load_face_classifier(model_path, runtime="litert").path
    cached.write_bytes(b"half a file")
    assert load_face_classifier(model_path, runtime="litert").path == cached
    assert cached.stat().st_size > 1000
    save_tiny_model(model_path, seed=7)  # retrained: same name, other weights
    assert load_face_classifier(model_path, runtime="litert").path != cached
    assert len(list((tmp_path / "cache").glob("tiny-*.tflite"))) == 2


def test_a_model_litert_cannot_run_falls_back_to_keras_with_a_warning(tmp_path, monkeypatch) -> None:
    model_path = save_tiny_model(tmp_path / "tiny.keras")
    monkeypatch.setattr(config, "TFLITE_CACHE_DIR", tmp_path / "cache")

    def failing_conversion(model):
        raise RuntimeError("op not supported")

    monkeypatch.setattr(tflite, "keras_model_as_tflite", failing_conversion)
    with pytest.warns(RuntimeWarning, match=r"tiny.keras: cannot run on LiteRT .*op not supported.*in Keras"):
        classifier = load_face_classifier(model_path, runtime="litert")
    assert isinstance(classifier, KerasFaceClassifier)
    with pytest.raises(ValueError, match="Unknown runtime 'onnx'; expected one of litert, keras"):
        load_face_classifier(model_path, runtime="onnx")


def test_converting_for_litert_logs_no_tensorflow_info_lines(tmp_path, monkeypatch, caplog) -> None:
    model_path = save_tiny_model(tmp_path / "tiny.keras")
    monkeypatch.setattr(config, "TFLITE_CACHE_DIR", tmp_path / "cache")
    caplog.set_level(logging.INFO)  # as in a notebook whose root logger shows INFO
    caplog.set_level(logging.INFO, logger="tensorflow")
    load_face_classifier(model_path, runtime="litert")
    assert not [record.getMessage() for record in caplog.records if record.name == "tensorflow"]
    assert logging.getLogger("tensorflow").level == logging.INFO  # restored after the conversion


def test_the_litert_fallback_warning_keeps_one_line_of_a_long_converter_error(tmp_path, monkeypatch) -> None:
    model_path = save_tiny_model(tmp_path / "tiny.keras")
    monkeypatch.setattr(config, "TFLITE_CACHE_DIR", tmp_path / "cache")
    mlir_dump = "x" * 5000

    def failing_conversion(model):
        raise RuntimeError(
            f"Could not translate MLIR. {mlir_dump} 'tf.Foo' op is neither a custom op\n{mlir_dump}"
        )

    monkeypatch.setattr(tflite, "keras_model_as_tflite", failing_conversion)
    with pytest.warns(RuntimeWarning) as caught:
        load_face_classifier(model_path, runtime="litert")
    message = str(caught[0].message)
    assert "Could not translate MLIR" in message and "'tf.Foo' op is neither a custom op" in message
    assert "\n" not in message and len(message) < 600


def test_a_tflite_model_for_other_inputs_is_refused_when_loaded(tmp_path) -> None:
    import keras

    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(7, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inputs))
    path = tmp_path / "colour_32.tflite"
    path.write_bytes(tflite.keras_model_as_tflite(keras.Model(inputs, outputs)))
    with pytest.raises(ValueError, match=r"colour_32.tflite: takes inputs shaped \(1, 32, 32, 3\)"):
        TFLiteFaceClassifier(path, FER2013_CLASSES)


def test_iou_and_matching() -> None:
    a = np.array([[0, 0, 10, 10], [100, 100, 10, 10]])
    b = np.array([[100, 100, 10, 10], [5, 0, 10, 10], [500, 500, 5, 5]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    assert iou[1, 0] == 1.0 and iou[0, 1] == pytest.approx(50 / 150) and iou[0, 2] == 0.0
    assert sorted(match_boxes(a, b, 0.3)) == [(0, 1), (1, 0)]
    assert match_boxes(a, b, 0.5) == [(1, 0)]
    assert match_boxes(a[:0], b, 0.3) == []


def test_smoother_averages_per_face_following_boxes() -> None:
    smoother = ProbabilitySmoother(alpha=0.5)
    left, right = [10, 10, 50, 50], [300, 10, 50, 50]
    _, ids = smoother.update(np.array([left, right]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    # next frame: the faces are listed in the other order and moved a little
    smoothed, ids2 = smoother.update(
        np.array([[302, 12, 50, 50], [12, 10, 50, 50]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    )
    np.testing.assert_allclose(smoothed, [[0.5, 0.5], [0.5, 0.5]])
    assert ids2.tolist() == [ids[1], ids[0]]
    # a new face far away starts its own track with its own probabilities
    smoothed, ids3 = smoother.update(
        np.array([[12, 10, 50, 50], [500, 300, 60, 60]]), np.array([[0.0, 1.0], [0.2, 0.8]])
    )
    assert ids3[0] == ids[0] and ids3[1] not in ids.tolist()
    np.testing.assert_allclose(smoothed, [[0.25, 0.75], [0.2, 0.8]])


def test_smoother_forgets_faces_gone_for_too_long() -> None:
    smoother = ProbabilitySmoother(alpha=0.5, max_missed_frames=1)
    box = np.array([[10, 10, 50, 50]])
    _, first = smoother.update(box, np.array([[1.0, 0.0]]))
    smoother.update(box[:0], np.zeros((0, 2)))  # missed once: kept
    _, again = smoother.update(box, np.array([[0.0, 1.0]]))
    assert again[0] == first[0]
    smoother.update(box[:0], np.zeros((0, 2)))
    smoother.update(box[:0], np.zeros((0, 2)))  # missed twice: forgotten
    smoothed, new = smoother.update(box, np.array([[0.0, 1.0]]))
    assert new[0] != first[0] and smoothed.tolist() == [[0.0, 1.0]]
    with pytest.raises(ValueError, match="alpha"):
        ProbabilitySmoother(alpha=0.0)


@pytest.mark.parametrize("n_faces", [0, 1, 3])
def test_recognizer_batches_all_faces_of_a_frame(sample_faces, n_faces) -> None:
    positions = [(20, 40), (240, 300), (460, 100)][:n_faces]
    frame, pasted = frame_with_faces(list(sample_faces[:n_faces]), positions)
    counting = CountingClassifier()
    results = EmotionRecognizer(counting, FaceDetector()).recognize(frame)
    assert len(results) == n_faces
    assert counting.batches == ([n_faces] if n_faces else [])  # one call per frame, none without faces
    assert [r.box[0] for r in results] == sorted(r.box[0] for r in results)  # left to right
    assert [r.face_index for r in results] == list(range(n_faces))
    for result in results:
        assert set(result.probabilities) == {"Happy", "Sad"}
        assert result.label == max(result.probabilities, key=result.probabilities.get)
        assert box_iou(np.array([result.box]), pasted).max() > 0.3


class CountingDetector(FaceDetector):
    """The real detector, counting how often it runs."""

    calls = 0

    def detect(self, frame_bgr: np.ndarray) -> np.ndarray:
        self.calls += 1
        return super().detect(frame_bgr)


def test_detect_every_n_frames_keeps_the_boxes_in_between(sample_faces) -> None:
    frame, pasted = frame_with_faces(list(sample_faces[:2]), [(20, 40), (460, 100)])
    detector = CountingDetector()
    recognizer = EmotionRecognizer(CountingClassifier(), detector, detect_every=3)
    results = [recognizer.recognize(frame) for _ in range(7)]
    assert detector.calls == 3  # frames 0, 3 and 6
    assert all([r.box for r in frame_results] == [r.box for r in results[0]] for frame_results in results)
    assert len(results[0]) == 2
    with pytest.raises(ValueError, match="detect_every"):
        EmotionRecognizer(CountingClassifier(), detector, detect_every=0)


def test_a_changed_frame_is_detected_at_once_between_scheduled_detections(sample_faces) -> None:
    before, _ = frame_with_faces(list(sample_faces[:1]), [(20, 40)])
    after, _ = frame_with_faces(list(sample_faces[1:3]), [(300, 60), (460, 200)])
    detector = CountingDetector()
    recognizer = EmotionRecognizer(CountingClassifier(), detector, detect_every=3)
    results = [recognizer.recognize(frame) for frame in (before, before, after, after, after, after)]
    assert detector.calls == 3  # frame 0; frame 2, which changed; frame 5, three frames later
    assert len(results[1]) == 1 and len(results[2]) == 2
    assert recognizer.detections == detector.calls


@pytest.mark.parametrize("classify_every_frame, classified", [(False, [2, 2, 2]), (True, [2] * 7)])
def test_faces_are_classified_when_detected_unless_every_frame_is_asked(
    sample_faces, classify_every_frame, classified
) -> None:
    frame, _ = frame_with_faces(list(sample_faces[:2]), [(20, 40), (460, 100)])
    counting = CountingClassifier()
    recognizer = EmotionRecognizer(
        counting, FaceDetector(), detect_every=3, classify_every_frame=classify_every_frame
    )
    results = [recognizer.recognize(frame) for _ in range(7)]
    assert counting.batches == classified  # kept: classified on frames 0, 3 and 6 only
    assert all(frame_results == results[0] for frame_results in results)


def test_with_smoothing_every_frame_is_classified(sample_faces) -> None:
    frame, _ = frame_with_faces(list(sample_faces[:2]), [(20, 40), (460, 100)])
    counting = CountingClassifier()
    smoother = ProbabilitySmoother(alpha=0.5)
    recognizer = EmotionRecognizer(counting, FaceDetector(), smoother, detect_every=3)
    for _ in range(4):
        recognizer.recognize(frame)
    assert counting.batches == [2, 2, 2, 2]  # alpha weighs frames, as measured


def test_a_changed_frame_is_classified_afresh(sample_faces) -> None:
    before, _ = frame_with_faces(list(sample_faces[:1]), [(20, 40)])
    after, _ = frame_with_faces(list(sample_faces[1:3]), [(300, 60), (460, 200)])
    counting = CountingClassifier()
    recognizer = EmotionRecognizer(counting, FaceDetector(), detect_every=3)
    results = [recognizer.recognize(frame) for frame in (before, before, after, after)]
    assert counting.batches == [1, 2]
    assert results[1] == results[0] and results[3] == results[2] and len(results[2]) == 2


def test_recognizer_with_a_keras_model_and_smoothing_keeps_ids(classifier, sample_faces) -> None:
    frame, _ = frame_with_faces(list(sample_faces[:2]), [(20, 40), (400, 200)])
    recognizer = EmotionRecognizer(classifier, FaceDetector(), ProbabilitySmoother(alpha=0.3))
    first = recognizer.recognize(frame)
    second = recognizer.recognize(frame.copy())
    assert [r.face_index for r in first] == [r.face_index for r in second] == [0, 1]
    assert all(r.label in FER2013_CLASSES for r in second)
    assert sum(second[0].probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_reset_forgets_boxes_labels_and_tracks_of_the_last_video(sample_faces) -> None:
    frame, _ = frame_with_faces(list(sample_faces[:2]), [(20, 40), (460, 100)])
    detector, counting = CountingDetector(), CountingClassifier()
    recognizer = EmotionRecognizer(counting, detector, ProbabilitySmoother(alpha=0.5), detect_every=3)
    first_video = [recognizer.recognize(frame) for _ in range(2)]
    recognizer.reset()
    second_video_first_frame = recognizer.recognize(frame)
    assert detector.calls == 2  # without the reset, frame 2 would have kept frame 0's boxes
    assert recognizer.detections == 1  # counted per video
    assert [r.face_index for r in first_video[1]] == [0, 1]
    assert [r.face_index for r in second_video_first_frame] == [0, 1]  # tracks start afresh
    assert second_video_first_frame == first_video[0]  # no probabilities carried across videos
