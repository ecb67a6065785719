"""Figures, metrics files and the results table that the README shows.

Each experiment writes ``reports/metrics/<name>.json``; :func:`write_results_table` turns all of
them into ``reports/results.md`` and copies the table into the README between two markers, so the
README's numbers are always those of the committed runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from fer_utils import config
from fer_utils.files import write_json_atomic

RESULTS_START, RESULTS_END = "<!-- results:start -->", "<!-- results:end -->"
#: The name ending of a model that is another model averaged over several views of each face.
TTA_SUFFIX = "_tta"


def save_figure(figure: plt.Figure, name: str, paths: config.ArtifactPaths) -> Path:
    """Save ``figure`` as ``<figures>/<name>.png`` (and leave it to the notebook to show)."""
    paths.figures.mkdir(parents=True, exist_ok=True)
    path = paths.figures / f"{name}.png"
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def key_figures_table(figures: dict[str, tuple[float, float | None]]) -> pd.DataFrame:
    """A notebook's key figures, each a (value, target or None) pair, with whether the value
    reaches its target (None where there is no target): the table its conclusion cites."""
    table = pd.DataFrame(figures, index=["value", "target"]).T
    table["met"] = [value >= target if pd.notna(target) else None for value, target in table.to_numpy()]
    return table


def write_metrics(name: str, metrics: dict, paths: config.ArtifactPaths) -> Path:
    path = paths.metrics / f"{name}.json"
    write_json_atomic(path, metrics, default=str)
    return path


def read_all_metrics(paths: config.ArtifactPaths) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(paths.metrics.glob("*.json"))]


#: Faces per second of every committed model, written by ``benchmarks/bench_models.py`` into the
#: metrics folder; the results table shows them where present.
MODEL_SPEED_FILE = "model_speed.csv"
SPEED_COLUMN = "faces/s"


def read_model_speeds(paths: config.ArtifactPaths) -> dict[str, float]:
    """Model name -> batched Keras faces per second, from the speed benchmark's file if there is one."""
    path = paths.metrics / MODEL_SPEED_FILE
    if not path.is_file():
        return {}
    speeds = pd.read_csv(path)
    missing = {"model", "batched faces/s"} - set(speeds.columns)
    if missing:
        raise ValueError(f"{path}: not a model speed table (no column {', '.join(sorted(missing))})")
    return dict(zip(speeds["model"], speeds["batched faces/s"]))


def results_table(all_metrics: list[dict], speeds: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per experiment: classes, parameters, epochs, time, PublicTest (and PrivateTest),
    and faces per second where ``speeds`` has the model.

    Metrics files without an ``experiment`` entry (a notebook's own summary) are not rows and are
    left out, so one such file cannot break every later ``record_results``.
    """
    speeds = speeds or {}
    rows = []
    for metrics in sorted(
        (m for m in all_metrics if "experiment" in m), key=lambda m: _row_order(m["experiment"])
    ):
        splits = metrics.get("splits", {})
        row = {
            "experiment": metrics["experiment"],
            "model": metrics.get("architecture", ""),
            "classes": metrics.get("num_classes"),
            "parameters": metrics.get("parameters", {}).get("total"),
            "epochs run": metrics.get("epochs_run"),
            "training (min)": round(metrics.get("training_seconds", 0) / 60, 1),
            "PublicTest acc.": _exact_accuracy(splits.get("PublicTest", {})),
            "PrivateTest acc.": _exact_accuracy(splits.get("PrivateTest", {})),
            SPEED_COLUMN: speeds.get(metrics["experiment"]),
        }
        rows.append(row)
    return pd.DataFrame(rows)


def _exact_accuracy(split: dict) -> float | None:
    """The split's accuracy as correct / images, undoing the 6-decimal rounding of the metrics file.

    Why: 2814 of 3199 faces right is 87.96499...%, which its notebook prints as 87.96%, but the
    stored 0.87965 would print as 87.97%. Rounding twice must not make the results table disagree
    with the notebook that produced the number.
    """
    accuracy, images = split.get("accuracy"), split.get("n_images")
    if accuracy is None or not images:
        return accuracy
    return round(accuracy * images) / images


#: Short runs that chose a setting (a training lever, a distillation temperature): not models to use.
PROXY_PREFIXES = ("ablation_", "distill_proxy_", "student_proxy_")


def is_proxy(experiment: str) -> bool:
    return experiment.startswith(PROXY_PREFIXES)


def _row_order(experiment: str) -> tuple:
    """Models first and proxies last; a ``_tta`` model right after its base model."""
    return (
        is_proxy(experiment),
        experiment.removesuffix(TTA_SUFFIX),
        experiment.endswith(TTA_SUFFIX),
    )


def _markdown(table: pd.DataFrame) -> str:
    shown = table.copy()
    for column in ("PublicTest acc.", "PrivateTest acc."):
        shown[column] = shown[column].map(lambda v: "–" if pd.isna(v) else f"{100 * v:.2f}%")
    shown[SPEED_COLUMN] = shown[SPEED_COLUMN].map(lambda v: "–" if pd.isna(v) else f"{v:,.0f}")
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def write_results_table(paths: config.ArtifactPaths, readme: Path | None = None) -> str:
    """Write ``results.md`` next to the metrics and, for committed runs, refresh the README table."""
    table = results_table(read_all_metrics(paths), read_model_speeds(paths))
    proxies = table["experiment"].map(is_proxy) if len(table) else []
    markdown = _markdown(table[~proxies]) if len(table) else "_No experiment has finished yet._"
    if len(table) and proxies.any():
        markdown += (
            "\n\nProxies: short runs that chose a setting (notebook 08's ablation ladder, the distillation "
            "grid, the student candidates of issue 29); not models to use.\n\n" + _markdown(table[proxies])
        )
    (paths.metrics.parent / "results.md").write_text(
        "# Results\n\nGenerated from `metrics/*.json` by `fer_utils.reports.tables`; PublicTest is the "
        "choosing split, PrivateTest the held-out one (shown where the data has it). faces/s: batched "
        "Keras inference on this machine, one run of `benchmarks/bench_models.py`.\n\n" + markdown + "\n"
    )
    readme = (
        readme
        if readme is not None
        else (config.PROJECT_ROOT / "README.md" if paths.is_committed_location else None)
    )
    if readme is not None and readme.exists():
        text = readme.read_text()
        if RESULTS_START in text and RESULTS_END in text:
            before, rest = text.split(RESULTS_START, 1)
            _, after = rest.split(RESULTS_END, 1)
            readme.write_text(f"{before}{RESULTS_START}\n{markdown}\n{RESULTS_END}{after}")
    return markdown
