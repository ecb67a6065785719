"""Figures shared by the notebooks (matplotlib / seaborn); each function returns the figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fer_utils.data.fer2013 import FERDataset


def plot_class_distribution(dataset: FERDataset, title: str = "Images per class and split") -> plt.Figure:
    counts = pd.DataFrame(dataset.class_counts()).rename_axis("class").reset_index()
    tidy = counts.melt(id_vars="class", var_name="split", value_name="images")
    figure, axis = plt.subplots(figsize=(9, 4))
    sns.barplot(tidy, x="class", y="images", hue="split", ax=axis)
    axis.set_title(title)
    for container in axis.containers:
        axis.bar_label(container, fontsize=7)
    return figure


def plot_face_grid(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: tuple[str, ...],
    per_class: int = 8,
    seed: int = 0,
    titles: list[str] | None = None,
) -> plt.Figure:
    """``per_class`` random faces of every class, one row per class."""
    rng = np.random.default_rng(seed)
    figure, axes = plt.subplots(
        len(class_names), per_class, figsize=(per_class * 1.1, len(class_names) * 1.2)
    )
    for row, name in enumerate(class_names):
        candidates = np.flatnonzero(labels == row)
        chosen = (
            rng.choice(candidates, size=min(per_class, candidates.size), replace=False)
            if candidates.size
            else []
        )
        for column in range(per_class):
            axis = axes[row, column]
            axis.axis("off")
            if column < len(chosen):
                axis.imshow(images[chosen[column]], cmap="gray", vmin=0, vmax=255)
        axes[row, 0].set_title(name, fontsize=9, loc="left")
    figure.tight_layout()
    return figure


def plot_image_row(images: list[np.ndarray], titles: list[str], suptitle: str = "") -> plt.Figure:
    """A row of faces with a caption under each (duplicates, augmentations, mistakes)."""
    figure, axes = plt.subplots(1, len(images), figsize=(1.6 * len(images), 2.0), squeeze=False)
    for axis, image, title in zip(axes[0], images, titles):
        axis.imshow(image, cmap="gray", vmin=0, vmax=255)
        axis.set_title(title, fontsize=8)
        axis.axis("off")
    if suptitle:
        figure.suptitle(suptitle, fontsize=10)
    figure.tight_layout()
    return figure


def plot_image_grid(
    rows: list[list[np.ndarray]], row_titles: list[str], column_titles: list[str]
) -> plt.Figure:
    """A grid of faces given row by row (e.g. an original and its augmented versions)."""
    n_rows, n_columns = len(rows), max(len(r) for r in rows)
    figure, axes = plt.subplots(n_rows, n_columns, figsize=(1.3 * n_columns, 1.35 * n_rows), squeeze=False)
    for r, images in enumerate(rows):
        for c in range(n_columns):
            axis = axes[r, c]
            axis.axis("off")
            if c < len(images):
                axis.imshow(np.squeeze(images[c]), cmap="gray", vmin=0, vmax=255)
            if r == 0 and c < len(column_titles):
                axis.set_title(column_titles[c], fontsize=8)
        axes[r, 0].text(-4, 24, row_titles[r], fontsize=8, ha="right", va="center")
    figure.tight_layout()
    return figure


def plot_mean_faces(dataset: FERDataset) -> plt.Figure:
    """The average face of each class: what the pixels have in common per expression."""
    figure, axes = plt.subplots(1, dataset.num_classes, figsize=(1.6 * dataset.num_classes, 2.0))
    for index, (axis, name) in enumerate(zip(axes, dataset.class_names)):
        members = dataset.images[dataset.labels == index]
        if len(members):
            axis.imshow(members.mean(axis=0), cmap="gray", vmin=0, vmax=255)
        axis.set_title(f"{name}\n(n={len(members)})", fontsize=8)
        axis.axis("off")
    figure.tight_layout()
    return figure


def plot_pixel_histograms(named_arrays: dict[str, np.ndarray], bins: int = 64, title: str = "") -> plt.Figure:
    figure, axis = plt.subplots(figsize=(7, 3.2))
    for name, values in named_arrays.items():
        axis.hist(np.ravel(values), bins=bins, histtype="step", density=True, label=name)
    axis.set_xlabel("value")
    axis.set_ylabel("density")
    axis.legend(fontsize=8)
    axis.set_title(title)
    return figure


def plot_learning_curves(history: pd.DataFrame, title: str = "", best_epoch: int | None = None) -> plt.Figure:
    """Loss, accuracy and learning rate per epoch (training and PublicTest).

    A dotted line marks ``best_epoch`` (1-based; by default the epoch of lowest PublicTest loss,
    which is the one the phase runs keep).
    """
    epochs = np.arange(1, len(history) + 1)
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for axis, metric in zip(axes[:2], ("loss", "accuracy")):
        axis.plot(epochs, history[metric], label="training")
        axis.plot(epochs, history[f"val_{metric}"], label="PublicTest")
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend(fontsize=8)
    best = (best_epoch - 1) if best_epoch else int(history["val_loss"].idxmin())
    axes[0].axvline(best + 1, color="grey", linestyle=":", linewidth=1)
    axes[1].axvline(best + 1, color="grey", linestyle=":", linewidth=1)
    if "learning_rate" in history:
        axes[2].plot(epochs, history["learning_rate"])
        axes[2].set_yscale("log")
    axes[2].set_title("learning rate")
    axes[2].set_xlabel("epoch")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_validation_curves(
    histories: dict[str, pd.DataFrame], metric: str = "val_accuracy", title: str = ""
) -> plt.Figure:
    """One curve per run on shared axes, to compare runs epoch by epoch.

    ``metric`` is a column of the training log: PublicTest accuracy by default, or a training
    column such as ``accuracy``, which shows under- and overfitting that PublicTest alone hides.
    """
    figure, axis = plt.subplots(figsize=(8, 4))
    for name, history in histories.items():
        axis.plot(np.arange(1, len(history) + 1), history[metric], marker=".", label=name)
    axis.set_xlabel("epoch")
    axis.set_ylabel(
        metric.replace("val_", "PublicTest ") if metric.startswith("val_") else f"training {metric}"
    )
    axis.set_title(title)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return figure


def plot_per_class_accuracy(table: pd.DataFrame, class_names: tuple[str, ...], title: str = "") -> plt.Figure:
    """Bars of per-class accuracy, one colour per row: the splits of ``evaluation_table``, or any
    rows named by the table's index (models, say), the legend titled by the index's name."""
    rows = table.index.name or "row"
    tidy = (
        table[list(class_names)]
        .rename_axis(rows)
        .reset_index()
        .melt(id_vars=rows, var_name="class", value_name="accuracy")
    )
    figure, axis = plt.subplots(figsize=(9, 3.6))
    sns.barplot(tidy, x="class", y="accuracy", hue=rows, ax=axis)
    axis.set_ylim(0, 1)
    axis.set_title(title)
    for container in axis.containers:
        axis.bar_label(container, fmt="%.2f", fontsize=7)
    return figure


def plot_confusion_matrix(table: pd.DataFrame, title: str = "", rates: bool = False) -> plt.Figure:
    """Heatmap of a ``confusion_table`` (rows true, columns predicted): counts, or rates with ``rates``."""
    figure, axis = plt.subplots(figsize=(1.0 * len(table.columns) + 2, 0.8 * len(table) + 1.5))
    sns.heatmap(
        table,
        annot=True,
        fmt=".2f" if rates else "d",
        cmap="Blues",
        cbar=False,
        square=True,
        vmin=0,
        vmax=1 if rates else None,
        ax=axis,
        annot_kws={"fontsize": 8},
    )
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def plot_reliability_diagram(
    bins_by_model: dict[str, pd.DataFrame], title: str = "Reliability"
) -> plt.Figure:
    """Accuracy against confidence per bin (``calibration.reliability_bins``), one line per model.

    Points below the diagonal are over-confident; the bars underneath show how many images each bin
    holds, so sparse bins are not over-read.
    """
    figure, (axis, counts) = plt.subplots(
        2, 1, figsize=(5.5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect calibration")
    for name, bins in bins_by_model.items():
        filled = bins.dropna(subset=["accuracy"])
        axis.plot(filled["mean_confidence"], filled["accuracy"], marker="o", markersize=3, label=name)
        counts.step((bins["lower"] + bins["upper"]) / 2, bins["images"], where="mid", label=name)
    axis.set_ylabel("accuracy")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=7)
    axis.set_title(title)
    counts.set_xlabel("confidence (top-class probability)")
    counts.set_ylabel("images")
    counts.set_xlim(0, 1)
    figure.tight_layout()
    return figure


def plot_face_gallery(
    images: np.ndarray,
    true_names: list[str],
    predicted_names: list[str],
    confidences: np.ndarray,
    title: str = "",
    columns: int = 6,
    notes: list[str] | None = None,
) -> plt.Figure:
    """Faces captioned 'true / predicted (confidence)', and an optional extra line each (e.g. FER+)."""
    count = len(images)
    rows = max(1, int(np.ceil(count / columns)))
    row_height = 2.25 if notes else 1.95  # room for the caption's lines above each face
    figure, axes = plt.subplots(rows, columns, figsize=(1.55 * columns, row_height * rows), squeeze=False)
    for position, axis in enumerate(axes.flat):
        axis.axis("off")
        if position >= count:
            continue
        axis.imshow(np.squeeze(images[position]), cmap="gray", vmin=0, vmax=255)
        caption = f"{true_names[position]} / {predicted_names[position]}\n({confidences[position]:.2f})"
        if notes:
            caption += f"\n{notes[position]}"
        axis.set_title(caption, fontsize=7)
    figure.suptitle(
        f"{title}\ncaption: true / predicted (confidence)" if title else "true / predicted (confidence)",
        fontsize=9,
    )
    figure.tight_layout()
    return figure


def plot_grad_cam_overlays(
    images: np.ndarray,
    heatmaps: np.ndarray,
    titles: list[str],
    columns: int = 6,
    alpha: float = 0.45,
    title: str = "",
) -> plt.Figure:
    """Each face with its Grad-CAM heatmap (``saliency.grad_cam``) laid over it in colour."""
    count = len(images)
    rows = max(1, int(np.ceil(count / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(1.55 * columns, 1.75 * rows), squeeze=False)
    for position, axis in enumerate(axes.flat):
        axis.axis("off")
        if position >= count:
            continue
        axis.imshow(np.squeeze(images[position]), cmap="gray", vmin=0, vmax=255)
        axis.imshow(heatmaps[position], cmap="jet", alpha=alpha, vmin=0, vmax=1)
        axis.set_title(titles[position], fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure


def plot_video_frames(
    frames_bgr: list[np.ndarray], titles: list[str], suptitle: str = "", width: float = 4.2
) -> plt.Figure:
    """Whole video frames side by side (OpenCV's BGR shown in true colour), a caption over each."""
    if len(frames_bgr) != len(titles):
        raise ValueError(f"{len(frames_bgr)} frames but {len(titles)} titles")
    height = width * frames_bgr[0].shape[0] / frames_bgr[0].shape[1] if frames_bgr else width
    figure, axes = plt.subplots(
        1, max(1, len(frames_bgr)), figsize=(width * max(1, len(frames_bgr)), height + 0.6), squeeze=False
    )
    for axis, frame, title in zip(axes[0], frames_bgr, titles):
        if frame.ndim == 3:
            axis.imshow(frame[..., ::-1])
        else:
            axis.imshow(frame, cmap="gray", vmin=0, vmax=255)
        axis.set_title(title, fontsize=8)
    for axis in axes[0]:
        axis.axis("off")
    if suptitle:
        figure.suptitle(suptitle, fontsize=10)
    figure.tight_layout()
    return figure


def plot_accuracy_speed(
    table: pd.DataFrame,
    speed: str = "tflite_float16 ms",
    accuracy: str = "PublicTest accuracy",
    budget_ms: float | None = None,
    title: str = "",
) -> plt.Figure:
    """Accuracy against time per face, one labelled point per row, the Pareto front joined.

    ``table`` has one row per model (its index names it), a ``speed`` and an ``accuracy`` column,
    and a boolean ``Pareto front`` column; ``budget_ms`` draws the time a model may take.
    """
    figure, axis = plt.subplots(figsize=(7, 4.2))
    front = table[table["Pareto front"]].sort_values(speed)
    axis.plot(front[speed], front[accuracy], color="tab:blue", alpha=0.5, label="Pareto front")
    axis.scatter(table[speed], table[accuracy], color="tab:blue", zorder=3)
    for name, row in table.iterrows():
        axis.annotate(
            str(name), (row[speed], row[accuracy]), textcoords="offset points", xytext=(5, 4), fontsize=7
        )
    if budget_ms is not None:
        axis.axvline(budget_ms, color="tab:red", linestyle="--", label=f"budget, {budget_ms:g} ms a face")
    axis.set_xscale("log")
    axis.set_xlabel(f"{speed.replace(' ms', '')}: single-face time, ms (log scale)")
    axis.set_ylabel(accuracy)
    axis.set_title(title)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    return figure
