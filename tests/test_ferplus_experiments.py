"""FER+ experiments: relabelled splits, the images each mode trains on, recorded metrics, evaluate."""

import json
from dataclasses import replace

import numpy as np
import pytest
from helpers.tiny_models import tiny_cnn

from fer_utils import cli, config
from fer_utils.analysis.evaluation import evaluate_split
from fer_utils.data.fer2013 import load_fer2013
from fer_utils.data.ferplus import (
    FERPlusFormatError,
    ferplus_targets,
    ferplus_training_set,
    load_ferplus,
    load_ferplus_for,
    majority_labels,
    with_ferplus_labels,
)
from fer_utils.data.labels import FER2013_CLASSES, FERPLUS_CLASSES
from fer_utils.models import architectures
from fer_utils.models.saving import load_model_with_metadata, save_model_with_metadata
from fer_utils.training.experiments import (
    EXPERIMENTS,
    Experiment,
    get_experiment,
    prepare_splits,
    record_results,
    run_experiment,
    training_set,
)
from fer_utils.training.loop import TrainingConfig

#: Counts of the committed sample (data/sample), by mode: images kept per split.
SAMPLE_TRAINING, SAMPLE_PUBLIC = 420, 140
MAJORITY_KEPT = {"Training": 332, "PublicTest": 121}
CROSSENTROPY_TRAINING_KEPT = 404


@pytest.fixture(scope="module")
def sample():
    return load_fer2013(config.SAMPLE_FER2013_CSV, cache=False)


@pytest.fixture(scope="module")
def sample_votes():
    return load_ferplus(config.SAMPLE_FERPLUS_CSV)


# --------------------------------------------------------------------------------------------
# FER2013 images under FER+ labels
# --------------------------------------------------------------------------------------------


def test_with_ferplus_labels_keeps_images_with_a_majority(sample, sample_votes):
    public = sample.split("PublicTest")
    relabelled = with_ferplus_labels(public, sample_votes)
    majority = majority_labels(sample_votes.aligned_with(public).votes)
    assert relabelled.class_names == FERPLUS_CLASSES
    assert len(relabelled) == MAJORITY_KEPT["PublicTest"] == int((majority >= 0).sum())
    np.testing.assert_array_equal(relabelled.labels, majority[majority >= 0])
    np.testing.assert_array_equal(relabelled.images, public.images[majority >= 0])
    np.testing.assert_array_equal(relabelled.row_index, public.row_index[majority >= 0])
    assert "19 of 140 images without a majority left out" in relabelled.notes[-1]


def test_with_ferplus_labels_on_the_whole_file_keeps_the_splits(sample, sample_votes):
    relabelled = with_ferplus_labels(sample, sample_votes)
    assert {usage: len(relabelled.split(usage)) for usage in relabelled.splits_present} == MAJORITY_KEPT


@pytest.mark.parametrize(
    "mode, kept", [("majority", MAJORITY_KEPT["Training"]), ("crossentropy", CROSSENTROPY_TRAINING_KEPT)]
)
def test_ferplus_training_set_keeps_the_images_of_its_mode(sample, sample_votes, mode, kept):
    train = sample.split("Training")
    images, targets = ferplus_training_set(train, sample_votes, mode)
    assert len(images) == kept and targets.shape == (kept, 8)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(images.labels, targets.argmax(axis=1))
    expected, keep = ferplus_targets(sample_votes.aligned_with(train).votes, mode)
    np.testing.assert_array_equal(targets, expected[keep])
    if mode == "crossentropy":
        assert (targets.max(axis=1) < 1).any()  # real distributions, not one-hot


def test_load_ferplus_for_the_sample(sample):
    votes = load_ferplus_for(sample)
    assert votes.source == config.SAMPLE_FERPLUS_CSV and len(votes) == len(sample)


def test_real_fer2013_with_only_the_sample_votes_is_refused(make_rows, no_conventional_data):
    real_looking = make_rows(10)  # is_sample False, like the real file
    with pytest.raises(FileNotFoundError, match="No FER\\+ label file.*FERPLUS_CSV"):
        load_ferplus_for(real_looking)


def test_misaligned_votes_name_the_row(make_rows, tmp_path):
    data = make_rows(3, usage=["Training", "PublicTest", "PublicTest"])
    path = tmp_path / "fer2013new.csv"
    path.write_text(
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
        + "Training,a.png,10,0,0,0,0,0,0,0,0,0\n" * 3
    )
    with pytest.raises(FERPlusFormatError, match="row 2.*not aligned"):
        load_ferplus_for(data, path)


# --------------------------------------------------------------------------------------------
# Experiments
# --------------------------------------------------------------------------------------------


def test_registered_ferplus_experiments():
    for name, kind in (
        ("ferplus_majority", "ferplus_majority"),
        ("ferplus_crossentropy", "ferplus_crossentropy"),
    ):
        experiment = get_experiment(name)
        assert experiment.targets == kind and experiment.num_classes == 8
        assert experiment.class_names == FERPLUS_CLASSES and experiment.uses_ferplus
        assert architectures.build_model(experiment.architecture, experiment.num_classes).output_shape == (
            None,
            8,
        )


def test_phase_experiments_are_unchanged():
    for name in ("phase1_cnn", "phase2_cnn", "phase3_mini_xception_6", "phase3_mini_xception_7"):
        experiment = EXPERIMENTS[name]
        assert (
            experiment.targets == "fer2013"
            and experiment.distillation is None
            and not experiment.uses_ferplus
        )
    assert EXPERIMENTS["phase1_cnn"].class_names == FER2013_CLASSES


def test_experiment_settings_are_checked():
    with pytest.raises(ValueError, match="unknown targets 'votes'"):
        Experiment("x", "x", "mini_xception", 8, TrainingConfig(epochs=1), targets="votes")
    with pytest.raises(ValueError, match="8 classes, not 7"):
        Experiment("x", "x", "mini_xception", 7, TrainingConfig(epochs=1), targets="ferplus_majority")


def test_prepare_splits_of_a_ferplus_experiment(sample):
    splits = prepare_splits(get_experiment("ferplus_crossentropy"), sample)
    assert splits.train.class_names == splits.validation.class_names == FERPLUS_CLASSES
    assert splits.describe() == {
        "train": MAJORITY_KEPT["Training"],
        "validation": MAJORITY_KEPT["PublicTest"],
    }
    plain = prepare_splits(get_experiment("phase1_cnn"), sample)
    assert plain.describe() == {"train": SAMPLE_TRAINING, "validation": SAMPLE_PUBLIC}


def test_training_set_needs_votes_for_ferplus(sample):
    with pytest.raises(ValueError, match="FER\\+ votes"):
        training_set(get_experiment("ferplus_majority"), sample.split("Training"))
    train, targets = training_set(get_experiment("phase1_cnn"), sample.split("Training"))
    assert targets is None and len(train) == SAMPLE_TRAINING


@pytest.fixture
def tiny_architecture(monkeypatch):
    monkeypatch.setitem(architectures.MODEL_BUILDERS, "tiny", tiny_cnn)


@pytest.mark.slow
def test_ferplus_run_records_metrics_on_majority_labels_that_evaluate_reproduces(
    sample, tiny_architecture, tmp_path, capsys
):
    experiment = Experiment(
        "tiny_ferplus",
        "tiny FER+ run",
        "tiny",
        8,
        TrainingConfig(epochs=1, batch_size=128, augment=False, verbose=0),
        targets="ferplus_crossentropy",
    )
    result, splits = run_experiment(experiment, sample, run_dir=tmp_path / "run")
    assert result.epochs_run == 1
    paths = config.artifact_paths(tmp_path / "artifacts").ensure()
    recorded = record_results(experiment, result, splits, sample, paths)
    assert recorded["splits"]["PublicTest"]["n_images"] == MAJORITY_KEPT["PublicTest"]
    assert recorded["splits"]["Training"]["n_images"] == MAJORITY_KEPT["Training"]
    assert (
        recorded["labels"].startswith("FER+ majority labels")
        and recorded["training_targets"] == "ferplus_crossentropy"
    )
    assert recorded["ferplus_file"] == config.SAMPLE_FERPLUS_CSV.name
    _, sidecar = load_model_with_metadata(paths.models / "tiny_ferplus.keras")
    assert sidecar["class_names"] == list(FERPLUS_CLASSES) and sidecar["labels"] == recorded["labels"]

    capsys.readouterr()
    code = cli.main(
        [
            "evaluate",
            str(paths.models / "tiny_ferplus.keras"),
            "--csv",
            str(config.SAMPLE_FER2013_CSV),
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == cli.EXIT_OK, captured.err
    assert "FER+ majority vote" in captured.err
    assert json.loads(captured.out)["splits"] == recorded["splits"]


@pytest.fixture(scope="module")
def ferplus_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("ferplus") / "fp.keras"
    return save_model_with_metadata(
        tiny_cnn(8), path, {"experiment": "fp", "class_names": list(FERPLUS_CLASSES)}
    )


def test_evaluate_ferplus_model_on_majority_labels(ferplus_model, sample, sample_votes, capsys):
    code = cli.main(["evaluate", str(ferplus_model), "--csv", str(config.SAMPLE_FER2013_CSV), "--json"])
    assert code == cli.EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["class_names"] == list(FERPLUS_CLASSES)
    model, _ = load_model_with_metadata(ferplus_model)
    public = with_ferplus_labels(sample.split("PublicTest"), sample_votes)
    expected = evaluate_split(model, public, FERPLUS_CLASSES, "PublicTest")
    assert report["splits"]["PublicTest"]["n_images"] == MAJORITY_KEPT["PublicTest"]
    assert report["splits"]["PublicTest"]["accuracy"] == round(expected.accuracy, 6)


def test_evaluate_ferplus_model_without_a_ferplus_file_exits_2(
    ferplus_model, sample, write_csv, no_conventional_data, capsys
):
    copy = write_csv(sample, name="my_fer2013.csv")  # not the committed sample: its votes do not apply
    code = cli.main(["evaluate", str(ferplus_model), "--csv", str(copy)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_BAD_INPUT
    assert err.startswith("error: No FER+ label file for") and "my_fer2013.csv" in err and "--ferplus" in err
    assert (
        cli.main(
            [
                "evaluate",
                str(ferplus_model),
                "--csv",
                str(copy),
                "--ferplus",
                str(config.SAMPLE_FERPLUS_CSV),
                "--json",
            ]
        )
        == cli.EXIT_OK
    )  # the same votes, named explicitly, line up with the copy
    capsys.readouterr()
    missing = copy.parent / "absent_fer2013new.csv"
    assert (
        cli.main(["evaluate", str(ferplus_model), "--csv", str(copy), "--ferplus", str(missing)])
        == cli.EXIT_BAD_INPUT
    )
    assert "absent_fer2013new.csv" in capsys.readouterr().err


def test_with_epochs_keeps_the_targets():
    shortened = get_experiment("ferplus_majority").with_epochs(3)
    assert shortened.targets == "ferplus_majority" and shortened.training.epochs == 3
    assert replace(shortened, targets="fer2013", num_classes=7).class_names == FER2013_CLASSES
