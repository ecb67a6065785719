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


_CNN_TRAINING = TrainingConfig(epochs=10, batch_size=64, learning_rate=1e-3,
                               early_stopping_patience=10, reduce_lr_patience=3)
_XCEPTION_TRAINING = TrainingConfig(epochs=110, batch_size=32, learning_rate=1e-3,
                                    early_stopping_patience=50, reduce_lr_patience=12)

EXPERIMENTS: dict[str, Experiment] = {
    experiment.name: experiment
    for experiment in (
        Experiment("phase1_cnn", "Phase 1: 32-64-128 CNN, 10 epochs", "phase_cnn", 7, _CNN_TRAINING),
        Experiment("phase2_cnn", "Phase 2: the same CNN, 30 epochs", "phase_cnn", 7,
                   replace(_CNN_TRAINING, epochs=30)),
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
