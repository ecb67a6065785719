"""Distillation: the teacher's softened probabilities as targets, computed once, cached, guarded."""

import numpy as np
import pytest
from helpers.tiny_models import tiny_cnn

from fer_utils import cli, config
from fer_utils.analysis.calibration import apply_temperature
from fer_utils.data.fer2013 import load_fer2013
from fer_utils.data.labels import FER2013_CLASSES, MERGED_CLASSES
from fer_utils.models import architectures
from fer_utils.models.saving import load_model_with_metadata, save_model_with_metadata
from fer_utils.training.distillation import (
    TARGETS_FILE,
    DistillationConfig,
    DistillationError,
    distillation_targets,
    mix_with_labels,
    read_targets_record,
    teacher_file_sha256,
    teacher_probabilities,
)
from fer_utils.training.experiments import Experiment, get_experiment, record_results, run_experiment
from fer_utils.training.loop import TrainingConfig


@pytest.fixture(scope="module")
def sample():
    return load_fer2013(config.SAMPLE_FER2013_CSV, cache=False)


@pytest.fixture(scope="module")
def train(sample):
    return sample.split("Training").subset(slice(0, 64))


@pytest.fixture
def teacher_file(tmp_path):
    return save_model_with_metadata(tiny_cnn(7), tmp_path / "teacher.keras", {"experiment": "teacher"})


def test_teacher_probabilities_softened_by_temperature(train):
    teacher = tiny_cnn(7)
    plain = teacher_probabilities(teacher, train.images)
    assert plain.shape == (64, 7) and plain.dtype == np.float32
    np.testing.assert_allclose(
        teacher_probabilities(teacher, train.images, 3.0), apply_temperature(plain, 3.0), atol=1e-6
    )
    softer = teacher_probabilities(teacher, train.images, 3.0)
    assert (softer.max(axis=1) <= plain.max(axis=1) + 1e-6).all()


def test_mix_with_labels_is_the_weighted_sum():
    soft = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]], dtype=np.float32)
    mixed = mix_with_labels(soft, np.array([1, 2]), 0.25)
    np.testing.assert_allclose(mixed, [[0.45, 0.475, 0.075], [0.15, 0.15, 0.7]], atol=1e-6)
    np.testing.assert_allclose(mix_with_labels(soft, np.array([1, 2]), 0.0), soft)


@pytest.mark.parametrize(
    "bad", [dict(temperature=0.0), dict(temperature=float("nan")), dict(hard_label_weight=1.5)]
)
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match="temperature|hard_label_weight"):
        DistillationConfig(**bad)


def test_relative_teacher_paths_start_at_the_project_root(tmp_path):
    assert DistillationConfig().teacher_path == config.PROJECT_ROOT / "models" / "own_model_7.keras"
    assert DistillationConfig(teacher=str(tmp_path / "t.keras")).teacher_path == tmp_path / "t.keras"


def test_targets_are_computed_once_and_reused(train, teacher_file, tmp_path):
    settings = DistillationConfig(teacher=str(teacher_file), temperature=2.0, hard_label_weight=0.2)
    run_dir = tmp_path / "run"
    targets = distillation_targets(run_dir, train, settings, FER2013_CLASSES)
    assert targets.shape == (64, 7)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-5)
    assert (run_dir / TARGETS_FILE).exists() and not list(run_dir.glob("*.partial*"))
    record = read_targets_record(run_dir)
    assert record == {
        "teacher_file": "teacher.keras",
        "teacher_weights_sha256": teacher_file_sha256(teacher_file),
        "temperature": 2.0,
        "hard_label_weight": 0.2,
    }
    teacher_file.unlink()  # a resumed run needs only the stored targets
    np.testing.assert_array_equal(distillation_targets(run_dir, train, settings, FER2013_CLASSES), targets)


def test_a_run_is_never_continued_with_other_targets(train, teacher_file, tmp_path):
    settings = DistillationConfig(teacher=str(teacher_file))
    run_dir = tmp_path / "run"
    distillation_targets(run_dir, train, settings, FER2013_CLASSES)
    with pytest.raises(DistillationError, match="temperature 2.0 \\(now 4.0\\)"):
        distillation_targets(
            run_dir, train, DistillationConfig(teacher=str(teacher_file), temperature=4.0), FER2013_CLASSES
        )
    with pytest.raises(DistillationError, match="other images"):
        distillation_targets(run_dir, train.subset(slice(0, 10)), settings, FER2013_CLASSES)
    same_teacher, metadata = load_model_with_metadata(teacher_file)
    save_model_with_metadata(same_teacher, teacher_file, metadata)  # saved again: new bytes, same weights
    np.testing.assert_array_equal(
        distillation_targets(run_dir, train, settings, FER2013_CLASSES).shape, (64, 7)
    )
    save_model_with_metadata(tiny_cnn(7), teacher_file, {"experiment": "another teacher"})
    with pytest.raises(DistillationError, match="another teacher"):
        distillation_targets(run_dir, train, settings, FER2013_CLASSES)


def test_missing_teacher_and_wrong_classes(train, tmp_path):
    missing = DistillationConfig(teacher=str(tmp_path / "own_model_7.keras"))
    with pytest.raises(FileNotFoundError, match="own_model_7.keras does not exist.*--teacher"):
        distillation_targets(tmp_path / "run", train, missing, FER2013_CLASSES)
    assert not (tmp_path / "run").exists()
    six = save_model_with_metadata(tiny_cnn(6), tmp_path / "six.keras", {"experiment": "six"})
    with pytest.raises(DistillationError, match="six.keras predicts"):
        distillation_targets(tmp_path / "run", train, DistillationConfig(teacher=str(six)), FER2013_CLASSES)
    merged = train.with_merged_disgust()
    assert distillation_targets(
        tmp_path / "run", merged, DistillationConfig(teacher=str(six)), MERGED_CLASSES
    ).shape == (64, 6)


def test_labels_outside_the_teachers_classes_are_refused():
    with pytest.raises(ValueError, match="Labels 0..6 do not index the teacher's 6 classes"):
        mix_with_labels(np.full((2, 6), 1 / 6, np.float32), np.array([0, 6]), 0.5)


def test_registered_distillation_experiment():
    experiment = get_experiment("distilled_mini_xception_7")
    assert experiment.architecture == "mini_xception" and experiment.num_classes == 7
    assert experiment.distillation.teacher == "models/own_model_7.keras"
    assert architectures.build_model(experiment.architecture, experiment.num_classes).count_params() == 58_423
    assert experiment.with_teacher("elsewhere.keras").distillation.teacher == "elsewhere.keras"
    with pytest.raises(ValueError, match="not a distillation experiment"):
        get_experiment("phase1_cnn").with_teacher("x.keras")


def test_train_command_with_a_missing_teacher_exits_2(tmp_path, capsys):
    code = cli.main(
        [
            "train",
            "distilled_mini_xception_7",
            "--csv",
            str(config.SAMPLE_FER2013_CSV),
            "--teacher",
            str(tmp_path / "absent.keras"),
            "--run-dir",
            str(tmp_path / "run"),
        ]
    )
    assert code == cli.EXIT_BAD_INPUT
    assert "absent.keras does not exist" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_distilled_run_records_its_teacher(sample, teacher_file, tmp_path, monkeypatch):
    monkeypatch.setitem(architectures.MODEL_BUILDERS, "tiny", tiny_cnn)
    experiment = Experiment(
        "tiny_student",
        "tiny student",
        "tiny",
        7,
        TrainingConfig(epochs=1, batch_size=128, augment=False, verbose=0),
        distillation=DistillationConfig(teacher=str(teacher_file)),
    )
    result, splits = run_experiment(experiment, sample, run_dir=tmp_path / "run")
    assert (tmp_path / "run" / TARGETS_FILE).exists() and result.epochs_run == 1
    recorded = record_results(
        experiment, result, splits, sample, config.artifact_paths(tmp_path / "artifacts").ensure()
    )
    assert recorded["distillation"]["teacher_weights_sha256"] == teacher_file_sha256(teacher_file)
    assert recorded["distillation"]["temperature"] == 2.0
    assert recorded["training_targets"].startswith("teacher") and recorded["labels"] == "FER2013 labels"
    assert recorded["splits"]["PublicTest"]["n_images"] == 140
