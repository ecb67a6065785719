"""The experiments of this repository, by name: which model, which classes, how it is trained.

Notebooks, the command line and the pipeline all look experiments up here, so "phase 2" means the
same thing everywhere. The settings follow the 2019 report and Arriaga et al. (2017); the numbers
of epochs are those of the full runs (a notebook's papermill parameters can shorten them).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from fer_utils import config
from fer_utils.training import TrainingConfig


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    architecture: str
    num_classes: int
    training: TrainingConfig
    model_options: dict = field(default_factory=dict)

    @property
    def merge_disgust(self) -> bool:
        return self.num_classes == 6

    def run_dir(self, root=None):
        """Where this experiment's checkpoints and log live (``models/checkpoints/<name>``)."""
        return (root or config.CHECKPOINTS_DIR) / self.name

    def with_epochs(self, epochs: int) -> "Experiment":
        return replace(self, training=replace(self.training, epochs=epochs))


# Phase 1 follows the report: no augmentation (the report added it with mini-Xception). Phase 2
# trains the same network three times longer, which only pays with augmentation against overfitting.
_CNN_TRAINING = TrainingConfig(epochs=10, batch_size=64, learning_rate=1e-3, augment=False,
                               early_stopping_patience=10, reduce_lr_patience=3)
_XCEPTION_TRAINING = TrainingConfig(epochs=110, batch_size=32, learning_rate=1e-3,
                                    early_stopping_patience=50, reduce_lr_patience=12)

EXPERIMENTS: dict[str, Experiment] = {
    experiment.name: experiment
    for experiment in (
        Experiment("phase1_cnn", "Phase 1: 32-64-128 CNN, 10 epochs", "phase_cnn", 7, _CNN_TRAINING),
        Experiment("phase2_cnn", "Phase 2: the same CNN, 30 epochs with augmentation", "phase_cnn", 7,
                   replace(_CNN_TRAINING, epochs=30, augment=True)),
        Experiment("phase3_mini_xception_6", "Phase 3: mini-Xception, 6 classes (disgust merged)",
                   "mini_xception", 6, _XCEPTION_TRAINING),
        Experiment("phase3_mini_xception_7", "Phase 3: mini-Xception, 7 classes",
                   "mini_xception", 7, _XCEPTION_TRAINING),
    )
}


def get_experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise KeyError(f"Unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}") from None


def prepare_splits(experiment: Experiment, dataset, max_images_per_split: int | None = None, seed: int = 0):
    """Official splits of ``dataset`` in the experiment's label space, optionally subsampled.

    Subsampling (for the CI profile) is stratified-by-chance with a fixed seed, never the full run.
    """
    from fer_utils.splits import official_splits

    if experiment.merge_disgust:
        dataset = dataset.with_merged_disgust()
    splits = official_splits(dataset)
    if max_images_per_split is None:
        return splits
    return replace(
        splits,
        train=_first_shuffled(splits.train, max_images_per_split, seed),
        validation=_first_shuffled(splits.validation, max_images_per_split, seed),
        test=_first_shuffled(splits.test, max_images_per_split, seed) if splits.test is not None else None,
    )


def _first_shuffled(dataset, count: int, seed: int):
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(dataset))[:count]
    return dataset.subset(np.sort(order))


def run_experiment(experiment: Experiment, dataset, run_dir=None, max_images_per_split: int | None = None):
    """Train (resuming if interrupted, or reloading if finished) one experiment on ``dataset``."""
    from fer_utils.models import build_model
    from fer_utils.training import train_model

    splits = prepare_splits(experiment, dataset, max_images_per_split)
    result = train_model(
        lambda: build_model(experiment.architecture, experiment.num_classes, **experiment.model_options),
        splits.train,
        splits.validation,
        run_dir or experiment.run_dir(),
        experiment.training,
    )
    return result, splits


SPLIT_PROTOCOL = (
    "official: fit on Training, choose the epoch with the lowest PublicTest loss, "
    "report PrivateTest when the file has it"
)


def record_results(experiment: Experiment, result, splits, dataset, paths) -> dict:
    """Save the best model with its JSON sidecar, evaluate it on every split, write the metrics.

    The evaluation runs on the model file as saved, so ``python -m fer_utils evaluate`` on that
    file reproduces these numbers exactly. Returns the metrics dictionary (also in
    ``<metrics>/<experiment>.json``) with the per-split evaluations under ``"evaluations"``.
    """
    import keras
    import tensorflow as tf

    from fer_utils import reporting
    from fer_utils.evaluation import evaluate_split
    from fer_utils.labels import class_names_for
    from fer_utils.model_io import load_model_with_metadata, save_model_with_metadata, update_metadata

    class_names = class_names_for(experiment.num_classes)
    model_path = paths.models / f"{experiment.name}.keras"
    history = result.history
    best = history.iloc[result.best_epoch - 1]
    metadata = {
        "experiment": experiment.name,
        "title": experiment.title,
        "class_names": list(class_names),
        "data_file": dataset.source.name if dataset.source else None,
        "data_sha256": dataset.source_sha256,
        "data_is_sample": dataset.is_sample,
        "split_protocol": SPLIT_PROTOCOL,
        "images": splits.describe(),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "training_seconds": round(result.training_seconds, 1),
        "training_config": experiment.training.to_json(),
        "best_epoch_val_accuracy": float(best["val_accuracy"]),
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
    }
    save_model_with_metadata(result.model, model_path, dict(metadata))
    model, sidecar = load_model_with_metadata(model_path)
    named = {"Training": splits.train, "PublicTest": splits.validation}
    if splits.test is not None:
        named["PrivateTest"] = splits.test
    evaluations = {name: evaluate_split(model, data, class_names, name) for name, data in named.items()}
    sidecar = update_metadata(
        model_path, {"metrics": {name: evaluation.as_dict() for name, evaluation in evaluations.items()}}
    )
    metrics = {
        **metadata,
        "architecture": experiment.architecture,
        "num_classes": experiment.num_classes,
        "parameters": sidecar["parameters"],
        "splits": sidecar["metrics"],
    }
    reporting.write_metrics(experiment.name, metrics, paths)
    reporting.write_results_table(paths)
    return {**metrics, "evaluations": evaluations}
