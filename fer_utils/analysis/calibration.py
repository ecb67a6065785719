"""How far to trust a model's probabilities: calibration error, and temperature scaling to fix it.

Temperature scaling (Guo et al. 2017, arXiv:1706.04599) divides the log-probabilities by one number
``T`` fitted on held-out data: it fixes over-confidence without changing the argmax. The saved
models end in a softmax, so ``T`` is applied to ``log p`` (same result as on the logits). ``T`` is
fitted on PublicTest, so :func:`cross_fitted_effect` measures its effect on the half it was not
fitted on, and :func:`decide_temperature` keeps it only under :data:`HELPS_RULE`; PrivateTest is
reported, never used to decide.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from sklearn.model_selection import KFold

from fer_utils.models.layers import PROBABILITY_FLOOR, TemperatureScaling

DEFAULT_BINS = 15
#: Search range of the temperature (log-spaced); real models land between about 0.5 and 3.
TEMPERATURE_BOUNDS = (0.05, 20.0)
#: The smallest relative drop of held-out NLL, in every cross-fitting fold, that counts as help.
MIN_RELATIVE_NLL_GAIN = 0.005
HELPS_RULE = (
    "a temperature other than 1.0 is recommended only when scaling lowers the held-out "
    f"negative log-likelihood by at least {100 * MIN_RELATIVE_NLL_GAIN:.1f}% in every fold of the "
    "PublicTest cross-fitting (fit on one half, measure on the other) and does not raise the mean held-out "
    "ECE; otherwise the recommendation is 1.0"
)


# --------------------------------------------------------------------------------------------
# Measuring calibration
# --------------------------------------------------------------------------------------------


def _check_scores(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    if scores.ndim != 2:
        raise ValueError(f"Expected scores shaped (N, classes), got {scores.shape}")
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"Expected {scores.shape[0]} labels to match the scores, got shape {labels.shape}")
    if scores.shape[0] == 0:
        raise ValueError("Need at least one image to measure calibration, got none")
    if labels.min() < 0 or labels.max() >= scores.shape[1]:
        raise ValueError(
            f"Labels must index the {scores.shape[1]} classes, got values {labels.min()}..{labels.max()}"
        )
    return scores, labels.astype(np.int64)


def reliability_bins(
    probabilities: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS
) -> pd.DataFrame:
    """Equal-width bins of top-class confidence: how many images, how confident, how often right.

    One row per bin (empty bins included, with NaN confidence and accuracy), the data of a
    reliability diagram and of :func:`expected_calibration_error`.
    """
    probabilities, labels = _check_scores(probabilities, labels)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # right-closed bins (lower, upper]; a confidence of exactly 0 cannot occur for a softmax
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, n_bins - 1)
    table = pd.DataFrame({"bin": which, "confidence": confidence, "correct": correct})
    grouped = table.groupby("bin").agg(
        images=("correct", "size"), mean_confidence=("confidence", "mean"), accuracy=("correct", "mean")
    )
    grouped = grouped.reindex(range(n_bins))
    grouped["images"] = grouped["images"].fillna(0).astype(int)
    grouped.insert(0, "lower", edges[:-1])
    grouped.insert(1, "upper", edges[1:])
    return grouped


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS
) -> float:
    """ECE: the image-weighted mean gap between confidence and accuracy over equal-width bins."""
    bins = reliability_bins(probabilities, labels, n_bins).dropna()
    gaps = (bins["accuracy"] - bins["mean_confidence"]).abs()
    return float((gaps * bins["images"]).sum() / bins["images"].sum())


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean ``-log p(true class)``, with probabilities floored so a confident miss stays finite."""
    probabilities, labels = _check_scores(probabilities, labels)
    true_class = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(true_class, PROBABILITY_FLOOR, 1.0)).mean())


# --------------------------------------------------------------------------------------------
# Temperature scaling
# --------------------------------------------------------------------------------------------


def _log_scores(scores: np.ndarray, from_logits: bool) -> np.ndarray:
    return scores if from_logits else np.log(np.clip(scores, PROBABILITY_FLOOR, 1.0))


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = values - values.max(axis=1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def apply_temperature(scores: np.ndarray, temperature: float, *, from_logits: bool = False) -> np.ndarray:
    """``softmax(log p / T)`` (or ``softmax(z / T)`` for logits): the rescaled probabilities."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"A temperature must be a positive number, got {temperature}")
    return _softmax(_log_scores(np.asarray(scores, dtype=np.float64), from_logits) / temperature)


def fit_temperature(scores: np.ndarray, labels: np.ndarray, *, from_logits: bool = False) -> float:
    """The temperature minimising the negative log-likelihood of ``labels`` (a 1-D convex search).

    ``scores`` are softmax probabilities (the saved models' output) or, with ``from_logits``,
    logits. The search runs over ``log T`` within :data:`TEMPERATURE_BOUNDS`.
    """
    scores, labels = _check_scores(scores, labels)
    log_scores = _log_scores(scores, from_logits)
    rows = np.arange(len(labels))

    def nll(log_temperature: float) -> float:
        scaled = log_scores / np.exp(log_temperature)
        scaled = scaled - scaled.max(axis=1, keepdims=True)
        log_normaliser = np.log(np.exp(scaled).sum(axis=1))
        return float((log_normaliser - scaled[rows, labels]).mean())

    low, high = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-5})
    return float(np.exp(result.x))


def calibration_metrics(
    probabilities: np.ndarray, labels: np.ndarray, n_bins: int = DEFAULT_BINS
) -> dict[str, float]:
    """Accuracy, NLL and ECE of one set of predictions, the numbers compared before and after scaling."""
    probabilities, labels = _check_scores(probabilities, labels)
    return {
        "accuracy": float((probabilities.argmax(axis=1) == labels).mean()),
        "nll": negative_log_likelihood(probabilities, labels),
        "ece": expected_calibration_error(probabilities, labels, n_bins),
    }


def temperature_effect(
    probabilities: np.ndarray, labels: np.ndarray, temperature: float
) -> dict[str, dict[str, float]]:
    """Calibration metrics of a held-out split before and after applying ``temperature``."""
    return {
        "before": calibration_metrics(probabilities, labels),
        "after": calibration_metrics(apply_temperature(probabilities, temperature), labels),
    }


def cross_fitted_effect(
    probabilities: np.ndarray, labels: np.ndarray, n_folds: int = 2, seed: int = 0
) -> pd.DataFrame:
    """Fit the temperature on all folds but one, measure on the left-out fold; one row per fold.

    With the default two folds: fit on one random half of PublicTest, measure NLL and ECE on the
    other half, then swap. Columns: fold, images, temperature, and before/after NLL and ECE.
    """
    probabilities, labels = _check_scores(probabilities, labels)
    rows = []
    for fold, (fit_rows, held_out) in enumerate(_folds(len(labels), n_folds, seed), start=1):
        temperature = fit_temperature(probabilities[fit_rows], labels[fit_rows])
        effect = temperature_effect(probabilities[held_out], labels[held_out], temperature)
        rows.append(
            {
                "fold": fold,
                "images": len(held_out),
                "temperature": temperature,
                "nll_before": effect["before"]["nll"],
                "nll_after": effect["after"]["nll"],
                "ece_before": effect["before"]["ece"],
                "ece_after": effect["after"]["ece"],
            }
        )
    return pd.DataFrame(rows).set_index("fold")


def _folds(n_images: int, n_folds: int, seed: int):
    if n_images < 2 * n_folds:
        raise ValueError(
            f"Cross-fitting with {n_folds} folds needs at least {2 * n_folds} images, got {n_images}"
        )
    return KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros(n_images))


def out_of_fold_scaled(
    probabilities: np.ndarray, labels: np.ndarray, n_folds: int = 2, seed: int = 0
) -> np.ndarray:
    """Every image's probabilities rescaled by a temperature fitted on the *other* fold(s).

    The honest "after" picture for a reliability diagram when the only labelled split is the one
    the temperature is fitted on (same folds as :func:`cross_fitted_effect`).
    """
    probabilities, labels = _check_scores(probabilities, labels)
    scaled = np.empty_like(probabilities)
    for fit_rows, held_out in _folds(len(labels), n_folds, seed):
        temperature = fit_temperature(probabilities[fit_rows], labels[fit_rows])
        scaled[held_out] = apply_temperature(probabilities[held_out], temperature)
    return scaled


@dataclass(frozen=True)
class TemperatureDecision:
    """The fitted temperature, the honest evidence for it, and whether it is worth using."""

    temperature: float  # fitted on all of PublicTest
    helps: bool
    cross_fit_nll_before: float
    cross_fit_nll_after: float
    cross_fit_ece_before: float
    cross_fit_ece_after: float
    private_test: dict | None = None  # before/after on PrivateTest, when the data has it
    rule: str = HELPS_RULE

    @property
    def temperature_to_use(self) -> float:
        return self.temperature if self.helps else 1.0

    def as_dict(self) -> dict:
        return {**asdict(self), "temperature_to_use": self.temperature_to_use}


def decide_temperature(
    public_probabilities: np.ndarray,
    public_labels: np.ndarray,
    private_probabilities: np.ndarray | None = None,
    private_labels: np.ndarray | None = None,
    seed: int = 0,
) -> TemperatureDecision:
    """Fit on PublicTest, judge by cross-fitting (:data:`HELPS_RULE`), report PrivateTest if given."""
    folds = cross_fitted_effect(public_probabilities, public_labels, seed=seed)
    relative_gain = (folds["nll_before"] - folds["nll_after"]) / folds["nll_before"]
    temperature = fit_temperature(public_probabilities, public_labels)
    private = None
    if private_probabilities is not None and private_labels is not None and len(private_labels):
        private = temperature_effect(private_probabilities, private_labels, temperature)
    means = folds.mean()
    return TemperatureDecision(
        temperature=temperature,
        helps=bool(
            (relative_gain >= MIN_RELATIVE_NLL_GAIN).all() and means["ece_after"] <= means["ece_before"]
        ),
        cross_fit_nll_before=float(means["nll_before"]),
        cross_fit_nll_after=float(means["nll_after"]),
        cross_fit_ece_before=float(means["ece_before"]),
        cross_fit_ece_after=float(means["ece_after"]),
        private_test=private,
    )


def decision_table(decisions: dict[str, TemperatureDecision]) -> pd.DataFrame:
    """One row per model: fitted T, the cross-fitted evidence, PrivateTest where measured, the verdict.

    So that several models' temperature decisions read side by side (notebook 06, section 5).
    """
    rows = {}
    for name, decision in decisions.items():
        row = {
            "fitted T": decision.temperature,
            "cross-fit NLL before": decision.cross_fit_nll_before,
            "cross-fit NLL after": decision.cross_fit_nll_after,
            "cross-fit ECE before": decision.cross_fit_ece_before,
            "cross-fit ECE after": decision.cross_fit_ece_after,
        }
        if decision.private_test:
            row["PrivateTest ECE before"] = decision.private_test["before"]["ece"]
            row["PrivateTest ECE after"] = decision.private_test["after"]["ece"]
        rows[name] = {**row, "helps": decision.helps, "T to use": decision.temperature_to_use}
    return pd.DataFrame.from_dict(rows, orient="index")


# --------------------------------------------------------------------------------------------
# In a model
# --------------------------------------------------------------------------------------------


def with_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """``model`` followed by :class:`TemperatureScaling`, sharing its layers and weights.

    Loading the saved result needs ``fer_utils.analysis.calibration`` imported (it registers the layer).
    """
    outputs = TemperatureScaling(temperature, name="temperature_scaling")(model.outputs[0])
    return keras.Model(model.inputs, outputs, name=f"{model.name}_calibrated")
