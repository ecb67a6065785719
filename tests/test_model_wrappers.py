"""Test-time augmentation and ensembles live inside one saved model: views, averages, files, evaluate."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers.tiny_models import tiny_cnn

from fer_utils import cli, config
from fer_utils.analysis.calibration import apply_temperature, with_temperature
from fer_utils.analysis.evaluation import evaluate_split
from fer_utils.data.fer2013 import load_fer2013
from fer_utils.data.labels import FER2013_CLASSES, MERGED_CLASSES
from fer_utils.models.saving import load_model_with_metadata, save_model_with_metadata
from fer_utils.models.wrappers import (
    CROP_44_ZOOM,
    MIRROR_VIEWS,
    FaceView,
    View,
    ensemble,
    ensemble_from_files,
    tta_metadata,
    tta_views,
    with_flip_tta,
    with_tta,
)


def faces(n: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 48, 48, 1)).astype(np.float32)


def predict(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Probabilities by a direct call: the same numbers as ``predict`` without tracing a function."""
    return np.asarray(model(images, training=False))


def show(view: View, images: np.ndarray) -> np.ndarray:
    return np.asarray(FaceView(**vars(view))(images))


# --------------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------------


def test_mirror_reverses_columns_exactly():
    images = faces(2)
    np.testing.assert_array_equal(show(View(mirror=True), images), images[:, :, ::-1])


def test_shift_moves_the_face_right_and_down_repeating_edges():
    image = np.zeros((1, 48, 48, 1), np.float32)
    image[0, 20, 10, 0] = 255.0
    shifted = show(View(shift_x=2, shift_y=-3), image)
    assert shifted[0, 17, 12, 0] == pytest.approx(255.0) and shifted.sum() == pytest.approx(255.0)
    ramp = np.tile(np.arange(48, dtype=np.float32), (48, 1))[np.newaxis, ..., np.newaxis]
    right = show(View(shift_x=3), ramp)[0, 0, :, 0]
    np.testing.assert_allclose(right[:3], 0.0)  # the left edge is repeated
    np.testing.assert_allclose(right[3:], np.arange(45), atol=1e-4)


def test_zoom_is_a_centre_crop_scaled_back():
    ramp = np.tile(np.arange(48, dtype=np.float32), (48, 1))[np.newaxis, ..., np.newaxis]
    zoomed = show(View(zoom=2.0), ramp)[0, 5, :, 0]
    np.testing.assert_allclose(zoomed, 23.5 + (np.arange(48) - 23.5) / 2, atol=1e-4)
    crop = show(View(zoom=CROP_44_ZOOM), ramp)[0, 5, :, 0]
    assert crop[0] == pytest.approx(2.0, abs=0.05) and crop[-1] == pytest.approx(45.0, abs=0.05)


def test_view_sets():
    assert tta_views() == MIRROR_VIEWS
    views = tta_views(shifts=[2], zooms=[CROP_44_ZOOM])
    assert len(views) == 12 and len(set(views)) == 12
    assert sum(view.mirror for view in views) == 6
    assert View(shift_x=-2) in views and View(mirror=True, zoom=CROP_44_ZOOM) in views
    assert len(tta_views(shifts=[1, 3], mirror=False)) == 9


@pytest.mark.parametrize("bad", [dict(zoom=0.2), dict(zoom=3.0), dict(shift_x=13), dict(shift_y=-20)])
def test_unreasonable_views_are_refused(bad):
    with pytest.raises(ValueError, match="zoom|shift"):
        View(**bad)


def test_shifts_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        tta_views(shifts=[-2])


# --------------------------------------------------------------------------------------------
# Test-time augmentation
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base():
    keras.utils.set_random_seed(3)
    return tiny_cnn(7)


def test_flip_tta_averages_the_face_and_its_mirror(base):
    images = faces()
    expected = (predict(base, images) + predict(base, images[:, :, ::-1])) / 2
    np.testing.assert_allclose(predict(with_flip_tta(base), images), expected, atol=1e-6)


def test_flip_tta_of_a_mirror_symmetric_face_equals_the_plain_model(base):
    half = faces()[:, :, :24]
    symmetric = np.concatenate([half, half[:, :, ::-1]], axis=2)
    np.testing.assert_array_equal(symmetric, symmetric[:, :, ::-1])
    np.testing.assert_allclose(predict(with_flip_tta(base), symmetric), predict(base, symmetric), atol=1e-6)


def test_tta_averages_every_view(base):
    views = tta_views(shifts=[2], zooms=[CROP_44_ZOOM])
    images = faces(4)
    expected = np.mean([predict(base, show(view, images)) for view in views], axis=0)
    wrapped = with_flip_tta(base, shifts=[2], zooms=[CROP_44_ZOOM])
    assert wrapped.count_params() == base.count_params()  # weights shared, not copied
    np.testing.assert_allclose(predict(wrapped, images), expected, atol=1e-6)


def test_tta_refuses_no_views_repeated_views_and_other_inputs(base):
    with pytest.raises(ValueError, match="at least one"):
        with_tta(base, [])
    with pytest.raises(ValueError, match="repeat"):
        with_tta(base, [View(), View()])
    inputs = keras.Input((64, 64, 1))
    other = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match=r"\(48, 48, 1\)"):
        with_flip_tta(other)


def test_tta_model_saves_with_sidecar_and_reloads_identically(base, tmp_path):
    views = tta_views(shifts=[1])
    wrapped = with_tta(base, views)
    path = save_model_with_metadata(
        wrapped, tmp_path / "tta.keras", {"experiment": "t", **tta_metadata(views)}
    )
    reloaded, metadata = load_model_with_metadata(path)
    assert metadata["class_names"] == list(FER2013_CLASSES)
    assert metadata["parameters"]["total"] == base.count_params()
    assert len(metadata["test_time_augmentation"]["views"]) == 10
    images = faces()
    np.testing.assert_array_equal(predict(reloaded, images), predict(wrapped, images))
    plain = keras.models.load_model(path)  # this module is imported, so the layer is registered
    np.testing.assert_array_equal(predict(plain, images), predict(wrapped, images))


def test_recording_an_unchanged_model_again_keeps_the_file_bytes(base, tmp_path):
    """Re-running a notebook must not add a new copy of each model to the history; a change must."""
    path = save_model_with_metadata(with_flip_tta(base), tmp_path / "m.keras", {"experiment": "first"})
    first_bytes = path.read_bytes()
    save_model_with_metadata(with_flip_tta(base), path, {"experiment": "second"})
    assert path.read_bytes() == first_bytes
    assert load_model_with_metadata(path)[1]["experiment"] == "second"
    save_model_with_metadata(with_tta(base, tta_views(shifts=[1])), path, {"experiment": "other views"})
    assert path.read_bytes() != first_bytes
    changed = keras.models.clone_model(base)
    changed.set_weights([weights + 1 for weights in base.get_weights()])
    before = path.read_bytes()
    save_model_with_metadata(with_tta(changed, tta_views(shifts=[1])), path, {"experiment": "other weights"})
    assert path.read_bytes() != before


def test_load_model_with_metadata_registers_the_custom_layers_itself(base, tmp_path):
    """A fresh interpreter that imports only model_io loads a model with TTA and a temperature."""
    tta = with_flip_tta(base)
    path = save_model_with_metadata(
        with_temperature(tta, 2.0), tmp_path / "calibrated_tta.keras", {"experiment": "t"}
    )
    images = faces(2)
    np.save(tmp_path / "faces.npy", images)
    np.save(tmp_path / "expected.npy", apply_temperature(predict(tta, images), 2.0))
    script = (
        "import sys, numpy as np\n"
        "from fer_utils.models.saving import load_model_with_metadata\n"
        "assert 'fer_utils.models.wrappers' not in sys.modules and 'fer_utils.analysis.calibration' not in sys.modules\n"
        f"model, _ = load_model_with_metadata({str(path)!r})\n"
        f"got = model.predict(np.load({str(tmp_path / 'faces.npy')!r}), verbose=0)\n"
        f"np.testing.assert_allclose(got, np.load({str(tmp_path / 'expected.npy')!r}), atol=1e-5)\n"
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]


# --------------------------------------------------------------------------------------------
# Ensembles
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def members():
    keras.utils.set_random_seed(4)
    return [tiny_cnn(7), tiny_cnn(7), with_flip_tta(tiny_cnn(7))]


def test_ensemble_averages_member_probabilities(members):
    images = faces()
    expected = np.mean([predict(member, images) for member in members], axis=0)
    combined = ensemble(members)
    np.testing.assert_allclose(predict(combined, images), expected, atol=1e-6)
    assert combined.count_params() == sum(member.count_params() for member in members)


def test_members_with_the_same_name_are_fine(tmp_path):
    first, second = tiny_cnn(7), tiny_cnn(7)
    second.name = first.name  # two runs of one architecture carry the same name
    path = save_model_with_metadata(ensemble([first, second]), tmp_path / "e.keras", {"experiment": "e"})
    reloaded, _ = load_model_with_metadata(path)
    images = faces(3)
    np.testing.assert_allclose(
        predict(reloaded, images), (predict(first, images) + predict(second, images)) / 2, atol=1e-6
    )


def test_ensemble_refuses_bad_members(members):
    with pytest.raises(ValueError, match="at least two"):
        ensemble(members[:1])
    with pytest.raises(ValueError, match="numbers of classes"):
        ensemble([members[0], tiny_cnn(6)])
    with pytest.raises(ValueError, match="share the weight"):
        ensemble([members[0], members[0]])
    with pytest.raises(ValueError, match="share the weight"):
        ensemble([members[0], with_flip_tta(members[0])])


def test_ensemble_from_files_checks_the_sidecars(members, tmp_path):
    paths = [
        save_model_with_metadata(model, tmp_path / f"m{i}.keras", {"experiment": f"m{i}"})
        for i, model in enumerate(members[:2])
    ]
    combined, metadata = ensemble_from_files(paths)
    assert metadata["class_names"] == list(FER2013_CLASSES)
    assert [member["file"] for member in metadata["members"]] == ["m0.keras", "m1.keras"]
    images = faces(3)
    np.testing.assert_allclose(
        predict(combined, images), (predict(members[0], images) + predict(members[1], images)) / 2, atol=1e-6
    )
    relabelled = save_model_with_metadata(
        tiny_cnn(7),
        tmp_path / "other.keras",
        {"experiment": "o", "class_names": list(reversed(FER2013_CLASSES))},
    )
    with pytest.raises(ValueError, match="other.keras.*class_names"):
        ensemble_from_files([paths[0], relabelled])
    with pytest.raises(FileNotFoundError, match="absent.keras"):
        ensemble_from_files([paths[0], tmp_path / "absent.keras"])


def optimizer_entries(path) -> list[str]:
    """Names of the optimizer variables stored in a ``.keras`` file, wherever they are nested."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as weights:
        names: list[str] = []
        weights.visit(names.append)
    return [name for name in names if "optimizer" in name.split("/")]


def test_composed_files_leave_out_the_members_optimizer_state(tmp_path):
    """A trained member carries its optimizer's state; an ensemble or TTA file built on it must not."""
    from fer_utils.data.splits import official_splits
    from fer_utils.training.experiments import record_with_tta

    paths = config.artifact_paths(tmp_path / "artifacts").ensure()
    member_paths = []
    for index in (1, 2):
        trained = tiny_cnn(7)
        trained.compile(optimizer=keras.optimizers.SGD(momentum=0.9), loss="sparse_categorical_crossentropy")
        trained.fit(faces(4), np.arange(4), verbose=0)
        member_paths.append(
            save_model_with_metadata(
                trained, paths.models / f"member{index}.keras", {"experiment": f"member{index}"}
            )
        )
    assert optimizer_entries(member_paths[0])  # the premise: a trained file holds its optimizer
    composed, _ = ensemble_from_files(member_paths)
    ensemble_path = save_model_with_metadata(
        composed, tmp_path / "ensemble.keras", {"experiment": "ensemble"}
    )
    assert optimizer_entries(ensemble_path) == []
    splits = official_splits(load_fer2013(config.SAMPLE_FER2013_CSV))
    record_with_tta("member1", MIRROR_VIEWS, splits, paths)
    assert optimizer_entries(paths.models / "member1_tta.keras") == []


# --------------------------------------------------------------------------------------------
# The evaluate command sees exactly what the wrapped model computes
# --------------------------------------------------------------------------------------------


def test_evaluate_command_on_tta_and_ensemble_files(members, tmp_path, capsys):
    data = load_fer2013(config.SAMPLE_FER2013_CSV).split("PublicTest")
    six_a, six_b = tiny_cnn(6), tiny_cnn(6)
    wrapped = {
        "tta.keras": (
            with_flip_tta(members[0]),
            FER2013_CLASSES,
            (predict(members[0], data.images[..., None]) + predict(members[0], data.images[:, :, ::-1, None]))
            / 2,
        ),
        "ensemble6.keras": (
            ensemble([six_a, six_b]),
            MERGED_CLASSES,
            (predict(six_a, data.images[..., None]) + predict(six_b, data.images[..., None])) / 2,
        ),
    }
    for name, (model, classes, expected_probabilities) in wrapped.items():
        path = save_model_with_metadata(model, tmp_path / name, {"experiment": name})
        code = cli.main(["evaluate", str(path), "--csv", str(config.SAMPLE_FER2013_CSV), "--json"])
        assert code == cli.EXIT_OK
        report = json.loads(capsys.readouterr().out)["splits"]["PublicTest"]
        reloaded, _ = load_model_with_metadata(path)
        library = evaluate_split(reloaded, data, classes, "PublicTest")
        assert report["accuracy"] == round(library.accuracy, 6) and report["loss"] == round(library.loss, 6)
        labels = library.labels
        assert library.accuracy == pytest.approx((expected_probabilities.argmax(axis=1) == labels).mean())


def test_record_model_on_an_ensemble_with_tta_matches_the_evaluate_command(tmp_path, capsys):
    """Notebook 08's saved model: members averaged over each face and its mirror, in one file."""
    from fer_utils.data.splits import official_splits
    from fer_utils.training.experiments import SPLIT_PROTOCOL, record_model

    data = load_fer2013(config.SAMPLE_FER2013_CSV)
    splits = official_splits(data)
    member_paths = [
        save_model_with_metadata(tiny_cnn(7), tmp_path / f"member{i}.keras", {"experiment": f"member{i}"})
        for i in (1, 2)
    ]
    composed, entries = ensemble_from_files(member_paths, name="own_model_test")
    paths = config.artifact_paths(tmp_path / "artifacts").ensure()
    recorded = record_model(
        "own_model_test",
        with_flip_tta(composed),
        {"experiment": "own_model_test", **entries, "split_protocol": SPLIT_PROTOCOL},
        splits,
        paths,
        architecture="ensemble + mirror",
        num_classes=7,
    )
    assert recorded["parameters"]["total"] == 2 * tiny_cnn(7).count_params()
    assert (paths.metrics / "own_model_test.json").exists() and "own_model_test" in (
        paths.root / "results.md"
    ).read_text()
    code = cli.main(
        [
            "evaluate",
            str(paths.models / "own_model_test.keras"),
            "--csv",
            str(config.SAMPLE_FER2013_CSV),
            "--json",
        ]
    )
    assert code == cli.EXIT_OK
    report = json.loads(capsys.readouterr().out)["splits"]["PublicTest"]
    assert report["accuracy"] == recorded["splits"]["PublicTest"]["accuracy"]
    assert report["loss"] == recorded["splits"]["PublicTest"]["loss"]


def test_recording_an_unchanged_model_again_reuses_its_training_metrics(tmp_path, monkeypatch):
    """Re-running a notebook measures the test splits again, not the long pass over Training."""
    from fer_utils.analysis import evaluation
    from fer_utils.data.splits import official_splits
    from fer_utils.training.experiments import record_model

    splits = official_splits(load_fer2013(config.SAMPLE_FER2013_CSV))
    paths = config.artifact_paths(tmp_path / "artifacts").ensure()
    model = with_flip_tta(tiny_cnn(7))
    record = {"splits": splits, "paths": paths, "architecture": "tiny", "num_classes": 7}
    first = record_model("m", model, {"experiment": "m", "data_sha256": "abc"}, **record)
    measured = []
    real_evaluate = evaluation.evaluate_split
    monkeypatch.setattr(
        evaluation, "evaluate_split", lambda *args: measured.append(args[-1]) or real_evaluate(*args)
    )
    again = record_model("m", model, {"experiment": "m", "data_sha256": "abc"}, **record)
    assert measured == ["PublicTest"] and again["splits"] == first["splits"]
    measured.clear()
    record_model("m", model, {"experiment": "m", "data_sha256": "other data"}, **record)
    assert measured == ["Training", "PublicTest"]


# --------------------------------------------------------------------------------------------
# Choosing a test-time augmentation and recording a model with it built in
# --------------------------------------------------------------------------------------------


def test_candidates_are_cheapest_first_and_shift_by_whole_pixels():
    from fer_utils.models.wrappers import TTA_CANDIDATES

    sizes = [0 if views is None else len(views) for views in TTA_CANDIDATES.values()]
    assert sizes == sorted(sizes) and sizes[0] == 0
    shifts = {
        abs(view.shift_x) + abs(view.shift_y) for views in TTA_CANDIDATES.values() if views for view in views
    }
    assert shifts == {0.0, 2.0}  # pixels, not fractions of the face


def test_the_tta_table_measures_every_candidate_and_ties_go_to_the_cheaper_one():
    import pandas as pd

    from fer_utils.data.splits import official_splits
    from fer_utils.training.ablation import best_views, tta_table

    splits = official_splits(load_fer2013(config.SAMPLE_FER2013_CSV))
    candidates = {"alone": None, "mirror": MIRROR_VIEWS}
    table = tta_table(tiny_cnn(7), splits, FER2013_CLASSES, candidates)
    assert list(table["row"]) == ["alone", "mirror"]
    tied = pd.DataFrame({"row": ["alone", "mirror"], "PublicTest accuracy": [0.5, 0.5]})
    assert best_views(tied, candidates) == ()
    better = pd.DataFrame({"row": ["alone", "mirror"], "PublicTest accuracy": [0.5, 0.51]})
    assert best_views(better, candidates) == MIRROR_VIEWS


def test_record_with_tta_keeps_the_provenance_and_matches_the_evaluate_command(tmp_path, capsys):
    from fer_utils.data.splits import official_splits
    from fer_utils.training.experiments import record_with_tta

    data = load_fer2013(config.SAMPLE_FER2013_CSV)
    splits = official_splits(data)
    paths = config.artifact_paths(tmp_path / "artifacts").ensure()
    save_model_with_metadata(
        tiny_cnn(7),
        paths.models / "base.keras",
        {"experiment": "base", "title": "Base", "epochs_run": 3, "temperature": 1.3},
    )
    recorded = record_with_tta("base", MIRROR_VIEWS, splits, paths)
    _, sidecar = load_model_with_metadata(paths.models / "base_tta.keras")
    assert sidecar["experiment"] == "base_tta" and sidecar["base_model"] == "base.keras"
    assert (
        sidecar["epochs_run"] == 3 and "temperature" not in sidecar
    )  # a single view's temperature does not carry over
    assert len(sidecar["test_time_augmentation"]["views"]) == 2
    assert (
        cli.main(
            [
                "evaluate",
                str(paths.models / "base_tta.keras"),
                "--csv",
                str(config.SAMPLE_FER2013_CSV),
                "--json",
            ]
        )
        == cli.EXIT_OK
    )
    assert (
        json.loads(capsys.readouterr().out)["splits"]["PublicTest"]["accuracy"]
        == recorded["splits"]["PublicTest"]["accuracy"]
    )
    with pytest.raises(FileNotFoundError, match="absent.keras"):
        record_with_tta("absent", MIRROR_VIEWS, splits, paths)
