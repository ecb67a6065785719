"""One training function for every phase: tf.data input, augmentation, optimiser, Keras callbacks,
a CSV log of every epoch, and resumption after a crash or a ``kill -9``.

Keras's ``BackupAndRestore`` keeps neither the optimiser's moments nor the callbacks' counters (a
resumed ``ModelCheckpoint`` would overwrite the best model with a worse one), so
:class:`ResumeState` saves both atomically at every epoch end. With a fixed seed, two
uninterrupted runs on the same CPU build give identical weights; a resumed run is reproducible
from the resumed epoch, not bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import filelock
import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from fer_utils.data.fer2013 import FERDataset
from fer_utils.data.preprocessing import as_model_input
from fer_utils.files import atomic_path, write_json_atomic, write_text_atomic
from fer_utils.training.augmentation import AugmentationConfig, build_augmenter
from fer_utils.training.distribution import keras_compatible

STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
LOG_FILE = "training_log.csv"
BEST_MODEL_FILE = "best.keras"


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that decides how a model is trained; stored beside the run for resumption."""

    epochs: int
    batch_size: int = 64
    learning_rate: float = 1e-3
    augment: bool = True
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    early_stopping_patience: int = 50
    reduce_lr_patience: int = 12
    reduce_lr_factor: float = 0.1
    min_learning_rate: float = 1e-6
    label_smoothing: float = 0.0
    #: "adam" (the report's), "adamw" (decoupled weight decay) or "sgd" (Nesterov momentum 0.9)
    optimizer: str = "adam"
    #: decoupled weight decay per step for "adamw" and "sgd" (Loshchilov and Hutter 2019)
    weight_decay: float = 0.0
    #: "plateau": divide the rate by ``reduce_lr_factor`` when the monitored value stalls (the
    #: report's); "cosine": linear warm-up for ``warmup_epochs``, then cosine decay to 0 at ``epochs``
    schedule: str = "plateau"
    warmup_epochs: int = 0
    #: mixup (Zhang et al. 2018) with this Beta(alpha, alpha) mixing; 0 turns it off
    mixup_alpha: float = 0.0
    #: what the best checkpoint and early stopping watch: "val_loss" or "val_accuracy"
    monitor: str = "val_loss"
    #: weight averaging: the optimiser keeps an exponential moving average of the weights with this
    #: per-step momentum (Polyak averaging, Keras's ``use_ema``), and PublicTest, the best checkpoint
    #: and the final model use the averaged weights; 0 turns it off. (A finished run continued for
    #: more epochs goes on from the averaged weights: Keras folds them in at the last epoch.)
    ema_momentum: float = 0.0
    seed: int = 1
    deterministic: bool = True
    verbose: int = 2  # Keras: one progress line per epoch

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("schedule", self.schedule, SCHEDULES),
            ("monitor", self.monitor, MONITORS),
        ):
            if value not in allowed:
                raise ValueError(
                    f"TrainingConfig: unknown {name} {value!r}; choose one of {', '.join(allowed)}"
                )
        if not 0.0 <= self.ema_momentum < 1.0:
            raise ValueError(f"TrainingConfig: ema_momentum must be in [0, 1), got {self.ema_momentum}")

    def to_json(self) -> dict:
        return asdict(self)


OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("plateau", "cosine")
MONITORS = ("val_loss", "val_accuracy")


@dataclass
class TrainingResult:
    """The best model (by the run's monitor: lowest PublicTest loss, or highest accuracy) and the
    full history of a run."""

    model: keras.Model
    history: pd.DataFrame
    run_dir: Path
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    training_seconds: float
    resumed_from_epoch: int
    #: what chose the best epoch: "val_loss" (lowest PublicTest loss) or "val_accuracy"
    monitor: str = "val_loss"

    def describe(self) -> str:
        """The run in one line, for notebooks: epochs, the kept epoch, minutes and epoch times.

        Epoch times are shown because minutes alone compare poorly across runs resumed on different machines.
        """
        chosen_by = "lowest PublicTest loss" if self.monitor == "val_loss" else "highest PublicTest accuracy"
        line = (
            f"{self.epochs_run} epochs run, epoch {self.best_epoch} kept ({chosen_by}), "
            f"{self.training_seconds / 60:.1f} minutes of training"
        )
        seconds = self.history.get("epoch_seconds", pd.Series(dtype=float)).dropna()
        if not seconds.empty:
            line += f" ({seconds.min():.0f}-{seconds.max():.0f} s an epoch)"
        return f"{line}, stopped early: {self.stopped_early}"


# --------------------------------------------------------------------------------------------
# Input pipeline
# --------------------------------------------------------------------------------------------


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return keras.utils.to_categorical(labels, num_classes).astype(np.float32)


def make_dataset(
    images: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool,
    augmenter: keras.Model | None = None,
    mixup_alpha: float = 0.0,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of raw-pixel faces and targets; shuffled and augmented per batch when training.

    With ``mixup_alpha`` each batch is blended with a shuffled copy of itself, images and targets
    alike, by Keras's ``MixUp`` layer, after the per-image augmentation.
    """
    dataset = tf.data.Dataset.from_tensor_slices((as_model_input(images), targets.astype(np.float32)))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augmenter is not None:
        dataset = dataset.map(
            lambda x, y: (augmenter(x, training=True), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    if mixup_alpha > 0:
        mixup = keras.layers.MixUp(alpha=mixup_alpha, seed=seed)
        dataset = dataset.map(_mixed(mixup), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _mixed(mixup: keras.layers.MixUp):
    def mix(images, targets):
        mixed = mixup({"images": images, "labels": targets}, training=True)
        return mixed["images"], mixed["labels"]

    return mix


# --------------------------------------------------------------------------------------------
# Callbacks
# --------------------------------------------------------------------------------------------


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_seconds`` and ``learning_rate`` to the logs, so the CSV log records how long
    every epoch took and at which rate it ended (also under a per-step schedule, which no Keras
    callback logs)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._started
            logs.setdefault(
                "learning_rate", float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            )


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` whose saves are atomic: a killed process leaves the previous best intact."""

    def _save_model(self, epoch, batch, logs):
        with atomic_path(self._get_file_path(epoch, batch, logs)) as temporary:
            self._get_file_path = lambda *args: str(temporary)  # instance attribute shadows the method
            try:
                super()._save_model(epoch, batch, logs)
            finally:
                del self._get_file_path


#: Attributes that make up the memory of each stateful callback.
_CALLBACK_STATE = {
    # whether the averaged weights sit in the model (they do at every epoch end, when it is saved)
    "swap_ema": ("_ema_weights_in_model",),
    "model_checkpoint": ("best",),
    "early_stopping": ("best", "wait", "stopped_epoch"),
    "reduce_lr": ("best", "wait", "cooldown_counter"),
}


class ResumeState(keras.callbacks.Callback):
    """Saves model, optimiser and callback counters atomically after every epoch; restores them.

    Each epoch's model goes to a new file, then ``state.json`` is replaced to point at it, then the
    previous file is removed: whatever moment the process dies, ``state.json`` names a complete model.
    """

    def __init__(self, run_dir: Path, stateful: dict[str, keras.callbacks.Callback], restored: dict | None):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.stateful = stateful
        self.restored = restored or {}

    def on_train_begin(self, logs=None):
        for name, values in self.restored.get("callbacks", {}).items():
            callback = self.stateful.get(name)
            for attribute, value in values.items():
                if callback is not None:
                    setattr(callback, attribute, value)

    def on_epoch_end(self, epoch, logs=None):
        completed = epoch + 1
        model_name = f"state-epoch{completed:04d}.keras"
        with atomic_path(self.run_dir / model_name) as temporary:
            self.model.save(temporary)
        state = {
            "epoch": completed,
            "model_file": model_name,
            "stopped_early": bool(self.model.stop_training),
            "callbacks": {
                name: {attr: _jsonable(getattr(cb, attr, None)) for attr in _CALLBACK_STATE[name]}
                for name, cb in self.stateful.items()
            },
        }
        write_json_atomic(self.run_dir / STATE_FILE, state)
        for old in self.run_dir.glob("state-epoch*.keras"):
            if old.name != model_name:
                old.unlink(missing_ok=True)


def _jsonable(value):
    if value is None:
        return None
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if hasattr(value, "numpy"):
        return np.asarray(value).item()
    return value


def read_state(run_dir: Path) -> dict | None:
    """The last completed epoch's state of a run directory, or ``None`` for a new run."""
    path = Path(run_dir) / STATE_FILE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        empty = path.stat().st_size == 0 or not path.read_bytes().strip()
        where = (
            f" (line {error.lineno}, column {error.colno}: {error.msg})" if hasattr(error, "lineno") else ""
        )
        raise RunDirectoryError(
            f"{path} is {'empty' if empty else 'not valid JSON'}{where}. It is written atomically, so "
            f"something else changed it; restore it from a backup, or delete {path.parent} to start the run again"
        ) from error
    if not isinstance(state, dict) or not isinstance(state.get("epoch"), int):
        raise RunDirectoryError(f"{path}: has no whole-number 'epoch' field; it is not a training state")
    return state


class RunDirectoryError(ValueError):
    """A run directory that cannot be resumed as it is; the message names the file and the way out."""


class RunDirectoryBusy(RunDirectoryError):
    """Another process is training in this run directory."""


LOCK_FILE, OWNER_FILE = "run.lock", "run.owner"


@contextlib.contextmanager
def run_directory_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run directory for this process; a second training refuses at once, naming the holder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(run_dir / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        owner = (run_dir / OWNER_FILE).read_text().strip() if (run_dir / OWNER_FILE).exists() else "unknown"
        raise RunDirectoryBusy(
            f"{run_dir} is in use by another training ({owner}); wait for it to finish or stop it, "
            "or train into another --run-dir"
        ) from None
    try:
        (run_dir / OWNER_FILE).write_text(f"process {os.getpid()} on {socket.gethostname()}\n")
        yield
    finally:
        (run_dir / OWNER_FILE).unlink(missing_ok=True)
        lock.release()


def repair_log(run_dir: str | os.PathLike[str]) -> int:
    """Make ``training_log.csv`` one row per epoch up to ``state.json``'s epoch; returns the rows kept.

    For logs with repeated or extra rows (two trainings in one directory, a restored file); the last
    row written for an epoch is kept, as it belongs to the run whose state was saved.
    """
    run_dir = Path(run_dir)
    state = read_state(run_dir)
    if state is None:
        raise RunDirectoryError(f"{run_dir} has no {STATE_FILE}: nothing to repair against")
    log = pd.read_csv(run_dir / LOG_FILE)
    if "epoch" not in log:
        raise RunDirectoryError(f"{run_dir / LOG_FILE}: has no 'epoch' column; it is not a training log")
    log = log.drop_duplicates("epoch", keep="last").sort_values("epoch")
    log = log[log["epoch"] < state["epoch"]]
    if log["epoch"].tolist() != list(range(state["epoch"])):
        raise RunDirectoryError(
            f"{run_dir / LOG_FILE} lacks rows for some of epochs 0-{state['epoch'] - 1}; it cannot be repaired"
        )
    write_text_atomic(run_dir / LOG_FILE, log.to_csv(index=False))
    return len(log)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def learning_rate_schedule(config: TrainingConfig, steps_per_epoch: int):
    """The learning rate: a constant for "plateau" (its callback lowers it), else a per-step schedule."""
    if config.schedule == "plateau":
        return config.learning_rate
    warmup_steps = config.warmup_epochs * steps_per_epoch
    decay_steps = max(1, config.epochs * steps_per_epoch - warmup_steps)
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps, warmup_target=config.learning_rate, warmup_steps=warmup_steps
    )


def build_optimizer(config: TrainingConfig, steps_per_epoch: int = 1) -> keras.optimizers.Optimizer:
    """The configured Keras optimiser, with its learning-rate schedule and optional weight averaging."""
    rate = learning_rate_schedule(config, steps_per_epoch)
    averaging = {"use_ema": True, "ema_momentum": config.ema_momentum} if config.ema_momentum else {}
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=config.weight_decay, **averaging)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate=rate,
            momentum=0.9,
            nesterov=True,
            weight_decay=config.weight_decay or None,
            **averaging,
        )
    return keras.optimizers.Adam(learning_rate=rate, **averaging)


def compile_model(model: keras.Model, config: TrainingConfig, steps_per_epoch: int = 1) -> keras.Model:
    """Compile with the configured optimiser; ``steps_per_epoch`` sizes a per-step schedule."""
    model.compile(
        optimizer=build_optimizer(config, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )
    return model


def _check_config(run_dir: Path, config: TrainingConfig) -> None:
    """Refuse to resume a run directory that was started with different settings (epochs aside)."""
    path = run_dir / CONFIG_FILE
    ignored = ("epochs", "verbose")
    wanted = {k: v for k, v in config.to_json().items() if k not in ignored}
    if path.exists():
        stored = _with_defaults(json.loads(path.read_text()))
        stored = {k: v for k, v in stored.items() if k not in ignored}
        if stored != wanted:
            changed = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
            raise ValueError(
                f"{run_dir} holds a run trained with different settings ({', '.join(changed)}); "
                "use another run directory or delete this one to start again"
            )
    write_json_atomic(path, config.to_json())


def _with_defaults(stored: dict) -> dict:
    """A stored config with settings added since it was written filled in with their defaults.

    Settings are only ever added with a default that keeps the old behaviour, so a run started
    before a setting existed resumes as the same run.
    """
    merged = TrainingConfig(epochs=stored.get("epochs", 1)).to_json()
    for key, value in stored.items():
        merged[key] = (
            {**merged[key], **value}
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else value
        )
    return merged


def _truncate_log(log_path: Path, epochs_kept: int) -> None:
    """Drop log rows of epochs after the restored state (written just before a crash)."""
    if not log_path.exists():
        return
    log = pd.read_csv(log_path)
    if len(log) > epochs_kept:
        log.iloc[:epochs_kept].to_csv(log_path, index=False)


def train_model(
    build_model: Callable[[], keras.Model],
    train: FERDataset,
    validation: FERDataset,
    run_dir: str | os.PathLike[str],
    config: TrainingConfig,
    *,
    train_targets: np.ndarray | None = None,
    validation_targets: np.ndarray | None = None,
    strategy: tf.distribute.Strategy | None = None,
) -> TrainingResult:
    """Train (or resume, or just reload) the model of ``run_dir`` and return its best version.

    ``build_model`` is only called for a new run. Targets default to one-hot labels; pass soft
    targets (FER+ vote distributions, a teacher's probabilities) to train on those instead.
    ``strategy`` is any ``tf.distribute`` strategy; the model is built and compiled in its scope
    (a multi-worker one is first made usable by Keras's ``fit``: :mod:`fer_utils.training.distribution`).
    """
    run_dir = Path(run_dir)
    with run_directory_lock(run_dir):
        return _train_locked(
            build_model, train, validation, run_dir, config, train_targets, validation_targets, strategy
        )


def _train_locked(
    build_model,
    train,
    validation,
    run_dir: Path,
    config: TrainingConfig,
    train_targets,
    validation_targets,
    strategy,
) -> TrainingResult:
    _check_config(run_dir, config)
    state = read_state(run_dir)
    initial_epoch = state["epoch"] if state else 0
    finished = bool(state) and (state["stopped_early"] or state["epoch"] >= config.epochs)

    if not finished:
        strategy = keras_compatible(strategy)
        scope = strategy.scope() if strategy is not None else _null_scope()
        with scope:
            steps_per_epoch = math.ceil(len(train) / config.batch_size)
            model = _start_or_resume(build_model, run_dir, config, state, initial_epoch, steps_per_epoch)
        num_classes = int(model.output_shape[-1])
        y_train = train_targets if train_targets is not None else one_hot(train.labels, num_classes)
        y_valid = (
            validation_targets if validation_targets is not None else one_hot(validation.labels, num_classes)
        )
        augmenter = (
            build_augmenter(config.augmentation, seed=config.seed + initial_epoch) if config.augment else None
        )
        train_data = make_dataset(
            train.images,
            y_train,
            config.batch_size,
            shuffle=True,
            augmenter=augmenter,
            mixup_alpha=config.mixup_alpha,
            seed=config.seed + initial_epoch,
        )
        validation_data = make_dataset(validation.images, y_valid, config.batch_size, shuffle=False)
        callbacks = _callbacks(run_dir, config, state)
        _truncate_log(run_dir / LOG_FILE, initial_epoch)
        model.fit(
            train_data,
            validation_data=validation_data,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=config.verbose,
            shuffle=False,  # the tf.data pipeline already shuffles, with a seed
        )
    return load_run(run_dir, resumed_from_epoch=initial_epoch)


class _null_scope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _start_or_resume(build_model, run_dir, config, state, initial_epoch, steps_per_epoch) -> keras.Model:
    keras.utils.set_random_seed(config.seed + initial_epoch)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    if state is None:
        return compile_model(build_model(), config, steps_per_epoch)
    print(f"Resuming {run_dir} after epoch {initial_epoch}")
    if not isinstance(state.get("model_file"), str):
        raise RunDirectoryError(
            f"{run_dir / STATE_FILE}: has no 'model_file' naming the saved training state"
        )
    path = run_dir / state["model_file"]
    try:
        return keras.models.load_model(path)
    except Exception as error:  # Keras raises many types for a truncated zip
        problem = "is missing" if not path.exists() else f"is damaged ({type(error).__name__}: {error})"
        raise RunDirectoryError(
            f"{path} {problem}, so epoch {initial_epoch} cannot be resumed. {run_dir / BEST_MODEL_FILE} keeps the "
            f"best epoch's model; to train again from scratch, delete {run_dir}"
        ) from error


def _callbacks(run_dir: Path, config: TrainingConfig, state: dict | None) -> list[keras.callbacks.Callback]:
    stateful: dict[str, keras.callbacks.Callback] = {}
    if config.ema_momentum:
        # First, so that at each epoch end the averaged weights are in the model before the best
        # checkpoint and the state are saved; the next epoch swaps the raw weights back (also after
        # a resume, because the swap's own flag is part of the saved state).
        stateful["swap_ema"] = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
    stateful |= {
        "model_checkpoint": AtomicModelCheckpoint(
            str(run_dir / BEST_MODEL_FILE), monitor=config.monitor, save_best_only=True
        ),
        "early_stopping": keras.callbacks.EarlyStopping(
            monitor=config.monitor, patience=config.early_stopping_patience
        ),
    }
    if config.schedule == "plateau":
        stateful["reduce_lr"] = keras.callbacks.ReduceLROnPlateau(
            monitor=config.monitor,
            factor=config.reduce_lr_factor,
            patience=config.reduce_lr_patience,
            min_lr=config.min_learning_rate,
            verbose=1,
        )
    return [
        EpochTimer(),
        *stateful.values(),
        keras.callbacks.CSVLogger(str(run_dir / LOG_FILE), append=True),
        ResumeState(run_dir, stateful, state),
    ]


def _check_log_is_complete(history: pd.DataFrame, log_path: Path) -> None:
    """Refuse a log with missing or repeated epochs: the best epoch, the epochs run and the
    learning curves are all read from its rows, so a hole would shift every one of them.

    (Replacing the file under a running ``CSVLogger``, e.g. from version control, causes it.)
    """
    expected = list(range(len(history)))
    if "epoch" in history and history["epoch"].tolist() != expected:
        missing = sorted(set(range(int(history["epoch"].max()) + 1)) - set(history["epoch"]))
        repeated = sorted(set(history["epoch"][history["epoch"].duplicated()]))
        raise RunDirectoryError(
            f"{log_path}: the epoch column is not 0, 1, 2, ... (missing epochs {missing[:10]}, repeated "
            f"{repeated[:10]}, {len(history)} rows). Repeated rows: repair it with "
            f"`python -m fer_utils train EXPERIMENT --run-dir {log_path.parent} --repair-log`; missing rows: "
            "restore them, e.g. from the run's console output"
        )


def _stored_monitor(run_dir: Path) -> str:
    path = run_dir / CONFIG_FILE
    return json.loads(path.read_text()).get("monitor", "val_loss") if path.exists() else "val_loss"


def _best_epoch(history: pd.DataFrame, monitor: str) -> int:
    """The 1-based epoch whose model the checkpoint kept: lowest loss or highest accuracy."""
    values = history[monitor]
    return int(values.idxmax() if monitor == "val_accuracy" else values.idxmin()) + 1


def load_run(run_dir: str | os.PathLike[str], resumed_from_epoch: int = 0) -> TrainingResult:
    """Read a finished (or interrupted) run directory back: best model and full history."""
    run_dir = Path(run_dir)
    best_path = run_dir / BEST_MODEL_FILE
    if not best_path.exists():
        raise FileNotFoundError(f"{run_dir} has no {BEST_MODEL_FILE}: no epoch has completed yet")
    history = pd.read_csv(run_dir / LOG_FILE)
    _check_log_is_complete(history, run_dir / LOG_FILE)
    state = read_state(run_dir) or {}
    monitor = _stored_monitor(run_dir)
    best_epoch = _best_epoch(history, monitor)
    return TrainingResult(
        model=keras.models.load_model(best_path),
        history=history,
        run_dir=run_dir,
        epochs_run=len(history),
        best_epoch=best_epoch,
        stopped_early=bool(state.get("stopped_early", False)),
        training_seconds=float(history.get("epoch_seconds", pd.Series(dtype=float)).sum()),
        resumed_from_epoch=resumed_from_epoch,
        monitor=monitor,
    )
