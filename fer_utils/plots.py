"""Figures shared by the notebooks (matplotlib / seaborn); each function returns the figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fer_utils.fer2013 import FERDataset


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
    images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], per_class: int = 8, seed: int = 0,
    titles: list[str] | None = None,
) -> plt.Figure:
    """``per_class`` random faces of every class, one row per class."""
    rng = np.random.default_rng(seed)
    figure, axes = plt.subplots(len(class_names), per_class, figsize=(per_class * 1.1, len(class_names) * 1.2))
    for row, name in enumerate(class_names):
        candidates = np.flatnonzero(labels == row)
        chosen = rng.choice(candidates, size=min(per_class, candidates.size), replace=False) if candidates.size else []
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


def plot_image_grid(rows: list[list[np.ndarray]], row_titles: list[str], column_titles: list[str]) -> plt.Figure:
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


def plot_learning_curves(history: pd.DataFrame, title: str = "") -> plt.Figure:
    """Loss, accuracy and learning rate per epoch (training and PublicTest)."""
    epochs = np.arange(1, len(history) + 1)
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for axis, metric in zip(axes[:2], ("loss", "accuracy")):
        axis.plot(epochs, history[metric], label="training")
        axis.plot(epochs, history[f"val_{metric}"], label="PublicTest")
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend(fontsize=8)
    best = int(history["val_loss"].idxmin())
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


def plot_per_class_accuracy(table: pd.DataFrame, class_names: tuple[str, ...], title: str = "") -> plt.Figure:
    """Bars of per-class accuracy, one colour per split (rows of ``evaluation_table``)."""
    tidy = table[list(class_names)].reset_index().melt(id_vars="split", var_name="class", value_name="accuracy")
    figure, axis = plt.subplots(figsize=(9, 3.6))
    sns.barplot(tidy, x="class", y="accuracy", hue="split", ax=axis)
    axis.set_ylim(0, 1)
    axis.set_title(title)
    for container in axis.containers:
        axis.bar_label(container, fmt="%.2f", fontsize=7)
    return figure
