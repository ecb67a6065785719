"""Training throughput (images per second) of each model, with and without augmentation.

Compares four input paths on the same model and the same in-memory images:
  plain fit      model.fit(x, y) on NumPy arrays (Keras's own array adapter, no augmentation)
  tf.data        this project's pipeline without augmentation
  tf.data + aug  this project's pipeline with the training augmentation (RandomAffine: one warp)
  stock layers   the same augmentation from Keras's RandomFlip/Rotation/Translation/Zoom (three warps)
  XLA fit        plain fit of the same model compiled with jit_compile=True (Keras turns XLA off
                 on CPU-only machines by default; this shows whether that default costs anything)
The machine is shared and its speed drifts, so the variants are measured in interleaved rounds
(one epoch of each per round, after a warm-up epoch of each) and each figure is the median over
rounds. Target: augmentation costs at most 15 % against plain fit.

Usage: python benchmarks/bench_training.py [--images 1024] [--rounds 5] [--experiments NAME ...]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from fer_utils.data.preprocessing import as_model_input
from fer_utils.models.architectures import build_model
from fer_utils.training.augmentation import build_augmenter, build_layerwise_augmenter
from fer_utils.training.experiments import EXPERIMENTS
from fer_utils.training.loop import compile_model, make_dataset, one_hot

VARIANTS = ("plain fit", "tf.data", "tf.data+aug", "stock layers", "XLA fit")


def epoch_runners(model, xla_model, faces, targets, batch):
    """One callable per variant, each running one epoch (``xla_model``: the same model, jit-compiled)."""
    x = as_model_input(faces)
    datasets = {
        "tf.data": make_dataset(faces, targets, batch, shuffle=True),
        "tf.data+aug": make_dataset(faces, targets, batch, shuffle=True, augmenter=build_augmenter()),
        "stock layers": make_dataset(
            faces, targets, batch, shuffle=True, augmenter=build_layerwise_augmenter()
        ),
    }
    runners = {
        "plain fit": lambda: model.fit(x, targets, batch_size=batch, epochs=1, verbose=0),
        "XLA fit": lambda: xla_model.fit(x, targets, batch_size=batch, epochs=1, verbose=0),
    }
    for name, data in datasets.items():
        runners[name] = lambda data=data: model.fit(data, epochs=1, verbose=0, shuffle=False)
    return runners


def measure(runners, n_images: int, rounds: int) -> dict[str, float]:
    for run in runners.values():
        run()  # warm-up: tracing and graph building
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            started = time.perf_counter()
            run()
            rates[name].append(n_images / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--experiments", nargs="+", default=["phase1_cnn", "phase3_mini_xception_7"])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, size=(args.images, 48, 48), dtype=np.uint8)
    labels = rng.integers(0, 7, size=args.images)
    print(f"{args.images} images per epoch; medians of {args.rounds} interleaved rounds; images/s")
    print(
        f"{'experiment':<24}{'batch':>6}"
        + "".join(f"{v:>14}" for v in VARIANTS)
        + f"{'aug cost':>10}{'stock cost':>12}{'XLA/plain':>11}"
    )
    for name in args.experiments:
        experiment = EXPERIMENTS[name]
        batch = experiment.training.batch_size
        model, xla_model = (
            compile_model(build_model(experiment.architecture, experiment.num_classes), experiment.training)
            for _ in range(2)
        )
        xla_model.jit_compile = True
        targets = one_hot(labels, experiment.num_classes)
        rates = measure(epoch_runners(model, xla_model, faces, targets, batch), args.images, args.rounds)
        plain = rates["plain fit"]
        print(
            f"{name:<24}{batch:>6}"
            + "".join(f"{rates[v]:>14.0f}" for v in VARIANTS)
            + f"{100 * (1 - rates['tf.data+aug'] / plain):>9.1f}%{100 * (1 - rates['stock layers'] / plain):>11.1f}%"
            + f"{rates['XLA fit'] / plain:>10.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
