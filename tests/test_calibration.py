"""Calibration: ECE by hand, temperature fitting recovers a known temperature, the Keras layer round-trips."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from fer_utils.analysis.calibration import (
    TemperatureScaling,
    apply_temperature,
    cross_fitted_effect,
    decide_temperature,
    decision_table,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    out_of_fold_scaled,
    reliability_bins,
    with_temperature,
)


def softmax(values: np.ndarray) -> np.ndarray:
    exponentials = np.exp(values - values.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def sampled_problem(n: int = 4000, classes: int = 5, true_temperature: float = 2.0, seed: int = 0):
    """Labels drawn from softmax(z); the 'model' reports softmax(z * T): over-confident by T."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, classes))
    truth = softmax(logits)
    labels = np.array([rng.choice(classes, p=row) for row in truth])
    return softmax(logits * true_temperature), truth, labels


# --------------------------------------------------------------------------------------------
# ECE and reliability bins
# --------------------------------------------------------------------------------------------


def test_ece_by_hand():
    # two images at 0.9 confidence, one right one wrong: |0.5 - 0.9| = 0.4 for half the images;
    # two at 0.6, both right: |1.0 - 0.6| = 0.4 for the other half
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 0, 1])
    assert expected_calibration_error(probabilities, labels, n_bins=10) == pytest.approx(0.4)


def test_perfectly_calibrated_bins_have_zero_ece():
    probabilities = np.tile([[0.75, 0.25]], (4, 1))
    labels = np.array([0, 0, 0, 1])
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.0)


def test_reliability_bins_cover_every_image_once_including_confidence_one():
    probabilities = np.array([[1.0, 0.0], [0.5, 0.5], [0.55, 0.45], [0.15, 0.85]])
    bins = reliability_bins(probabilities, np.array([0, 0, 1, 1]), n_bins=5)
    assert len(bins) == 5 and bins["images"].sum() == 4
    assert bins.loc[4, "images"] == 2  # 1.0 and 0.85 fall in (0.8, 1.0]
    assert bins.loc[2, "images"] == 2  # 0.5 and 0.55 fall in (0.4, 0.6]
    assert np.isnan(bins.loc[0, "accuracy"])  # empty bins stay visible, as NaN


@pytest.mark.parametrize(
    "probabilities, labels, message",
    [
        (np.ones((3, 2)) / 2, np.array([0, 1]), "Expected 3 labels"),
        (np.ones((2, 2)) / 2, np.array([0, 2]), "must index the 2 classes"),
        (np.ones(4) / 2, np.array([0]), "shaped"),
        (np.zeros((0, 2)), np.zeros(0, dtype=int), "at least one image"),
    ],
)
def test_bad_input_is_named(probabilities, labels, message):
    with pytest.raises(ValueError, match=message):
        expected_calibration_error(probabilities, labels)


# --------------------------------------------------------------------------------------------
# Temperature scaling
# --------------------------------------------------------------------------------------------


def test_fit_temperature_recovers_the_over_confidence():
    overconfident, _, labels = sampled_problem(true_temperature=2.0)
    assert fit_temperature(overconfident, labels) == pytest.approx(2.0, rel=0.1)
    assert fit_temperature(np.log(overconfident), labels, from_logits=True) == pytest.approx(
        fit_temperature(overconfident, labels), rel=1e-3
    )


def test_scaling_keeps_the_argmax_and_lowers_nll_and_ece():
    overconfident, _, labels = sampled_problem()
    temperature = fit_temperature(overconfident, labels)
    scaled = apply_temperature(overconfident, temperature)
    np.testing.assert_array_equal(scaled.argmax(axis=1), overconfident.argmax(axis=1))
    np.testing.assert_allclose(scaled.sum(axis=1), 1.0)
    assert negative_log_likelihood(scaled, labels) < negative_log_likelihood(overconfident, labels)
    assert expected_calibration_error(scaled, labels) < 0.5 * expected_calibration_error(
        overconfident, labels
    )
    np.testing.assert_allclose(apply_temperature(overconfident, 1.0), overconfident, atol=1e-6)  # floor 1e-7


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan")])
def test_non_positive_temperature_is_refused(temperature):
    with pytest.raises(ValueError, match="positive"):
        apply_temperature(np.ones((1, 2)) / 2, temperature)
    with pytest.raises(ValueError, match="positive"):
        TemperatureScaling(temperature)


def test_cross_fitting_measures_on_held_out_halves():
    overconfident, _, labels = sampled_problem(n=1000)
    folds = cross_fitted_effect(overconfident, labels)
    assert list(folds.index) == [1, 2] and folds["images"].sum() == 1000
    assert (folds["nll_after"] < folds["nll_before"]).all()
    assert (folds["temperature"] > 1.5).all()
    with pytest.raises(ValueError, match="at least 4 images"):
        cross_fitted_effect(overconfident[:3], labels[:3])


def test_the_rule_accepts_a_real_improvement_and_refuses_a_calibrated_model():
    overconfident, calibrated, labels = sampled_problem()
    needed = decide_temperature(overconfident, labels)
    assert needed.helps and needed.temperature_to_use == needed.temperature
    assert needed.cross_fit_nll_after < needed.cross_fit_nll_before
    assert needed.private_test is None
    not_needed = decide_temperature(calibrated, labels)
    assert not not_needed.helps and not_needed.temperature_to_use == 1.0
    assert not_needed.temperature == pytest.approx(1.0, abs=0.1)


def test_private_test_is_reported_when_given():
    overconfident, _, labels = sampled_problem(n=2000)
    decision = decide_temperature(overconfident[:1000], labels[:1000], overconfident[1000:], labels[1000:])
    assert decision.private_test["after"]["nll"] < decision.private_test["before"]["nll"]
    assert decision.private_test["after"]["accuracy"] == decision.private_test["before"]["accuracy"]


def test_decision_table_has_one_row_per_model_and_private_columns_when_measured():
    overconfident, calibrated, labels = sampled_problem(n=2000)
    decisions = {
        "needs scaling": decide_temperature(overconfident, labels),
        "calibrated": decide_temperature(calibrated, labels),
    }
    table = decision_table(decisions)
    assert list(table.index) == ["needs scaling", "calibrated"]
    assert table["helps"].tolist() == [True, False]
    assert table.loc["calibrated", "T to use"] == 1.0
    assert table.loc["needs scaling", "T to use"] == table.loc["needs scaling", "fitted T"] > 1.5
    assert "PrivateTest ECE before" not in table
    with_private = decide_temperature(
        overconfident[:1000], labels[:1000], overconfident[1000:], labels[1000:]
    )
    table = decision_table({"m": with_private})
    assert table.loc["m", "PrivateTest ECE after"] < table.loc["m", "PrivateTest ECE before"]


# --------------------------------------------------------------------------------------------
# In a Keras model
# --------------------------------------------------------------------------------------------


def tiny_model() -> keras.Model:
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Rescaling(1 / 127.5, -1)(inputs)
    x = keras.layers.AveragePooling2D(8)(x)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs, name="tiny")


def test_with_temperature_saves_reloads_and_keeps_the_argmax(tmp_path):
    base = tiny_model()
    faces = np.random.default_rng(0).integers(0, 256, size=(6, 48, 48, 1)).astype("float32")
    calibrated = with_temperature(base, 2.5)
    path = tmp_path / "calibrated.keras"
    calibrated.save(path)
    reloaded = keras.models.load_model(path)
    base_probabilities = base.predict(faces, verbose=0)
    reloaded_probabilities = reloaded.predict(faces, verbose=0)
    np.testing.assert_allclose(reloaded_probabilities, apply_temperature(base_probabilities, 2.5), atol=1e-5)
    np.testing.assert_array_equal(reloaded_probabilities.argmax(axis=1), base_probabilities.argmax(axis=1))
    assert reloaded.get_layer("temperature_scaling").temperature == 2.5


def test_out_of_fold_scaling_uses_the_cross_fitting_temperatures():
    overconfident, _, labels = sampled_problem(n=1000)
    scaled = out_of_fold_scaled(overconfident, labels)
    folds = cross_fitted_effect(overconfident, labels)
    np.testing.assert_array_equal(scaled.argmax(axis=1), overconfident.argmax(axis=1))
    assert negative_log_likelihood(scaled, labels) == pytest.approx(folds["nll_after"].mean(), rel=1e-6)


def test_the_rule_refuses_a_temperature_that_lowers_nll_but_raises_ece(monkeypatch):
    import pandas as pd

    from fer_utils.analysis import calibration

    folds = pd.DataFrame(
        {
            "images": [50, 50],
            "temperature": [0.5, 0.5],
            "nll_before": [2.0, 2.0],
            "nll_after": [1.9, 1.9],
            "ece_before": [0.02, 0.02],
            "ece_after": [0.05, 0.05],
        }
    )
    monkeypatch.setattr(calibration, "cross_fitted_effect", lambda *args, **kwargs: folds)
    overconfident, _, labels = sampled_problem(n=200)
    assert not calibration.decide_temperature(overconfident, labels).helps
    monkeypatch.setattr(
        calibration, "cross_fitted_effect", lambda *args, **kwargs: folds.assign(ece_after=[0.01, 0.01])
    )
    assert calibration.decide_temperature(overconfident, labels).helps
