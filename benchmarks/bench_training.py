"""Training throughput (images per second) of each model, with and without augmentation.

Compares three input paths on the same model and the same in-memory images:
  plain fit      model.fit(x, y) on NumPy arrays (Keras's own array adapter, no augmentation)
  tf.data        this project's pipeline without augmentation
  tf.data + aug  this project's pipeline with the training augmentation (flip, rotate, shift, zoom)
Each figure is the median of several epochs after a warm-up epoch. The target: augmentation costs at
most 15 % against plain fit. Usage: python benchmarks/bench_training.py [--images 2048] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from fer_utils.augmentation import build_augmenter
from fer_utils.experiments import EXPERIMENTS
from fer_utils.models import build_model
from fer_utils.preprocessing import as_model_input
from fer_utils.training import compile_model, make_dataset, one_hot


def images_per_second(fit_once, n_images: int, epochs: int) -> float:
    fit_once()  # warm-up: tracing and graph building
    rates = []
    for _ in range(epochs):
        started = time.perf_counter()
        fit_once()
        rates.append(n_images / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, size=(args.images, 48, 48), dtype=np.uint8)
    labels = rng.integers(0, 7, size=args.images)
    print(f"{args.images} images per epoch, median of {args.epochs} epochs after one warm-up")
    print(f"{'experiment':<26}{'batch':>6}{'plain fit':>12}{'tf.data':>10}{'tf.data+aug':>13}{'aug cost':>10}")
    for name in ("phase1_cnn", "phase3_mini_xception_7"):
        experiment = EXPERIMENTS[name]
        batch = experiment.training.batch_size
        targets = one_hot(labels, experiment.num_classes)
        model = compile_model(build_model(experiment.architecture, experiment.num_classes), experiment.training)
        x = as_model_input(faces)
        plain = images_per_second(lambda: model.fit(x, targets, batch_size=batch, epochs=1, verbose=0),
                                  args.images, args.epochs)
        data = make_dataset(faces, targets, batch, shuffle=True)
        piped = images_per_second(lambda: model.fit(data, epochs=1, verbose=0), args.images, args.epochs)
        augmented_data = make_dataset(faces, targets, batch, shuffle=True, augmenter=build_augmenter())
        augmented = images_per_second(lambda: model.fit(augmented_data, epochs=1, verbose=0),
                                      args.images, args.epochs)
        cost = 1 - augmented / plain
        print(f"{name:<26}{batch:>6}{plain:>12.0f}{piped:>10.0f}{augmented:>13.0f}{100 * cost:>9.1f}%", flush=True)


if __name__ == "__main__":
    main()
