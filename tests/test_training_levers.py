"""The training levers of the project's own model: optimisers, cosine schedule, mixup, erasing.

They must change nothing for runs configured without them (the phase runs resume across their
introduction), and must survive a resume like everything else in a run.
"""

import json
from dataclasses import replace

import keras
import numpy as np
import pytest
from helpers.tiny_models import tiny_cnn

from fer_utils import config
from fer_utils.data.fer2013 import load_fer2013
from fer_utils.training import loop
from fer_utils.training.augmentation import AugmentationConfig, build_augmenter
from fer_utils.training.loop import (
    BEST_MODEL_FILE,
    CONFIG_FILE,
    TrainingConfig,
    _callbacks,
    build_optimizer,
    learning_rate_schedule,
    make_dataset,
    one_hot,
    read_state,
    train_model,
)

TINY = TrainingConfig(epochs=2, batch_size=32, early_stopping_patience=50, reduce_lr_patience=10)
LEVERS = replace(
    TINY,
    optimizer="adamw",
    weight_decay=1e-4,
    schedule="cosine",
    warmup_epochs=1,
    mixup_alpha=0.2,
    monitor="val_accuracy",
    label_smoothing=0.1,
    augmentation=AugmentationConfig(erasing_probability=0.5),
)


@pytest.fixture(scope="module")
def sample_splits():
    data = load_fer2013(config.SAMPLE_FER2013_CSV, cache=False)
    return data.split("Training").subset(slice(0, 96)), data.split("PublicTest").subset(slice(0, 64))


def test_unknown_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="optimizer 'rmsprop'.*adam, adamw, sgd"):
        TrainingConfig(epochs=1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="schedule"):
        TrainingConfig(epochs=1, schedule="step")
    with pytest.raises(ValueError, match="monitor"):
        TrainingConfig(epochs=1, monitor="accuracy")
    with pytest.raises(ValueError, match="ema_momentum"):
        TrainingConfig(epochs=1, ema_momentum=1.0)


def test_cosine_schedule_warms_up_then_decays_to_zero_at_the_last_epoch():
    schedule = learning_rate_schedule(
        replace(LEVERS, epochs=10, learning_rate=0.1, warmup_epochs=2), steps_per_epoch=5
    )
    rates = [float(schedule(step)) for step in (0, 5, 10, 30, 50)]
    assert rates[0] == pytest.approx(0.0)
    assert rates[1] == pytest.approx(0.05)  # half-way through the warm-up
    assert rates[2] == pytest.approx(0.1)  # peak
    assert 0.0 < rates[3] < 0.1
    assert rates[4] == pytest.approx(0.0, abs=1e-7)
    assert learning_rate_schedule(TINY, steps_per_epoch=5) == TINY.learning_rate  # plateau: a constant


def test_optimisers_are_keras_own_with_decoupled_weight_decay():
    adamw = build_optimizer(replace(TINY, optimizer="adamw", weight_decay=5e-4))
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == pytest.approx(5e-4)
    sgd = build_optimizer(replace(TINY, optimizer="sgd", weight_decay=5e-4))
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == pytest.approx(0.9)
    assert type(build_optimizer(TINY)) is keras.optimizers.Adam and not build_optimizer(TINY).use_ema
    averaged = build_optimizer(replace(TINY, optimizer="sgd", ema_momentum=0.999))
    assert averaged.use_ema and averaged.ema_momentum == pytest.approx(0.999)


def test_mixup_blends_images_and_targets_alike():
    faces = np.stack([np.zeros((48, 48)), np.full((48, 48), 255)] * 8).astype(np.uint8)
    targets = one_hot(np.array([0, 1] * 8), 7)
    images, mixed = next(iter(make_dataset(faces, targets, 16, shuffle=False, mixup_alpha=1.0, seed=3)))
    images, mixed = images.numpy(), mixed.numpy()
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-5)
    assert (mixed.max(axis=1) < 1).any(), "alpha 1.0 should blend some pairs of different classes"
    # an image that is a blend of black and white carries the same blend in its target
    np.testing.assert_allclose(images[:, 0, 0, 0] / 255.0, mixed[:, 1], atol=1e-4)


def test_random_erasing_replaces_a_rectangle_with_noise():
    augmenter = build_augmenter(
        AugmentationConfig(
            rotation_degrees=0,
            shift_fraction=0,
            zoom_fraction=0,
            horizontal_flip=False,
            erasing_probability=1.0,
        )
    )
    faces = np.full((8, 48, 48, 1), 128.0, dtype=np.float32)
    erased = keras.ops.convert_to_numpy(augmenter(faces, training=True))
    changed = (np.abs(erased - 128.0) > 1e-3).reshape(8, -1).mean(axis=1)
    assert (changed > 0.01).all() and (changed < 0.5).all()
    assert erased.min() >= 0 and erased.max() <= 255


@pytest.mark.slow
def test_a_run_with_every_lever_resumes_on_its_schedule(tmp_path, sample_splits):
    train, validation = sample_splits
    train_model(tiny_cnn, train, validation, tmp_path, replace(LEVERS, epochs=1))
    result = train_model(tiny_cnn, train, validation, tmp_path, LEVERS)
    assert result.resumed_from_epoch == 1 and result.epochs_run == 2
    rates = result.history["learning_rate"]  # logged by the project's EpochTimer, not a plateau callback
    assert rates.iloc[0] == pytest.approx(LEVERS.learning_rate, rel=1e-5)  # end of the 1-epoch warm-up
    assert rates.iloc[1] == pytest.approx(0.0, abs=1e-7)  # end of the cosine decay
    state_model = keras.models.load_model(sorted(tmp_path.glob("state-epoch*.keras"))[-1])
    assert int(state_model.optimizer.iterations) == 2 * 3  # 96 faces, batch 32: the schedule kept its step
    assert result.best_epoch == int(result.history["val_accuracy"].idxmax()) + 1


@pytest.mark.slow
def test_a_run_stored_before_the_levers_existed_resumes_as_the_same_run(tmp_path, sample_splits):
    train, validation = sample_splits
    train_model(tiny_cnn, train, validation, tmp_path, replace(TINY, epochs=1))
    stored = json.loads((tmp_path / CONFIG_FILE).read_text())
    for added in (
        "optimizer",
        "weight_decay",
        "schedule",
        "warmup_epochs",
        "mixup_alpha",
        "monitor",
        "ema_momentum",
    ):
        del stored[added]
    del stored["augmentation"]["erasing_probability"]
    (tmp_path / CONFIG_FILE).write_text(json.dumps(stored))
    assert train_model(tiny_cnn, train, validation, tmp_path, TINY).resumed_from_epoch == 1
    with pytest.raises(ValueError, match="mixup_alpha"):
        train_model(tiny_cnn, train, validation, tmp_path, replace(TINY, mixup_alpha=0.2))


class _InterruptAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


@pytest.mark.slow
def test_weight_averaging_validates_and_saves_the_averaged_weights(tmp_path, sample_splits):
    """PublicTest is measured on the averaged weights, and the saved models are those weights."""
    train, validation = sample_splits
    averaged = replace(TINY, epochs=1, ema_momentum=0.9)
    result = train_model(tiny_cnn, train, validation, tmp_path, averaged)
    logged = result.history["val_accuracy"].iloc[0]
    x, y = validation.images[..., None].astype("float32"), one_hot(validation.labels, 7)
    for saved in (tmp_path / BEST_MODEL_FILE, tmp_path / read_state(tmp_path)["model_file"]):
        model = keras.models.load_model(saved)
        assert model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"] == pytest.approx(
            logged, abs=1e-6
        )


@pytest.mark.slow
def test_a_resumed_averaging_run_trains_its_raw_weights_not_the_average(tmp_path, sample_splits, monkeypatch):
    """The state file holds the average in the model and the raw weights in the optimiser; a
    resumed run must swap them back before its first step, as an uninterrupted run does."""
    train, validation = sample_splits
    averaged = replace(TINY, epochs=2, ema_momentum=0.9)
    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):  # killed after epoch 1 of 2
        patch.setattr(loop, "_callbacks", lambda *args: [*_callbacks(*args), _InterruptAfterFirstEpoch()])
        train_model(tiny_cnn, train, validation, tmp_path, averaged)
    state = read_state(tmp_path)
    assert state["callbacks"]["swap_ema"] == {"_ema_weights_in_model": True}
    model = keras.models.load_model(tmp_path / state["model_file"])
    average = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    raw = [keras.ops.convert_to_numpy(v) for v in model.optimizer._model_variables_moving_average]
    assert any(not np.allclose(a, r) for a, r in zip(average, raw)), "momentum 0.9 should separate them"
    callbacks = keras.callbacks.CallbackList(_callbacks(tmp_path, averaged, state), model=model)
    callbacks.on_train_begin()
    callbacks.on_epoch_begin(1)
    for variable, expected in zip(model.trainable_variables, raw):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), expected)
