"""Training cost of candidate architectures on this machine: parameters, MACs, images per second.

Decides what can be trained on two CPU cores. Each candidate trains on the same random faces
through the project's augmented tf.data pipeline; the figures are medians over interleaved rounds
(one epoch of each candidate per round, after a warm-up epoch), because the machine's speed drifts.
"GMAC/s" is training arithmetic per second: forward MACs x 3 (forward, and the two products of the
backward pass) x images per second, a measure of how well a network keeps the cores busy.

Usage: python benchmarks/bench_architectures.py [--images 512] [--rounds 3] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from fer_utils.models.architectures import build_model, parameter_counts
from fer_utils.models.cost import model_macs
from fer_utils.training.augmentation import build_augmenter
from fer_utils.training.loop import TrainingConfig, compile_model, make_dataset, one_hot

#: name -> (architecture, builder options)
CANDIDATES: dict[str, tuple[str, dict]] = {
    "phase CNN": ("phase_cnn", {}),
    "mini-Xception": ("mini_xception", {}),
    "fer_net 16-128 x2": ("fer_net", {"widths": (16, 32, 64, 128), "residual": False}),
    "fer_net 32-256 x2": ("fer_net", {"widths": (32, 64, 128, 256)}),
    "fer_net 32-256 x3": ("fer_net", {"widths": (32, 64, 128, 256), "convs_per_stage": 3}),
    "fer_net 48-384 x2": ("fer_net", {"widths": (48, 96, 192, 384)}),
    "fer_net 64-512 x1": ("fer_net", {"widths": (64, 128, 256, 512), "convs_per_stage": 1}),
    "fer_net 64-512 x2": ("fer_net", {"widths": (64, 128, 256, 512)}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--only", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, size=(args.images, 48, 48), dtype=np.uint8)
    targets = one_hot(rng.integers(0, 7, size=args.images), 7)
    data = make_dataset(faces, targets, args.batch_size, shuffle=True, augmenter=build_augmenter())
    models = {}
    for name in args.only:
        architecture, options = CANDIDATES[name]
        models[name] = compile_model(build_model(architecture, 7, **options), TrainingConfig(epochs=1))
        models[name].fit(data, epochs=1, verbose=0)  # warm-up: tracing and graph building
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            started = time.perf_counter()
            model.fit(data, epochs=1, verbose=0)
            rates[name].append(args.images / (time.perf_counter() - started))
    print(
        f"{args.images} random faces per epoch, batch {args.batch_size}, augmented; medians of {args.rounds} rounds"
    )
    print(
        f"{'candidate':<20}{'parameters':>12}{'MMAC/face':>11}{'images/s':>10}{'GMAC/s':>8}{'min/epoch*':>11}"
    )
    for name, model in models.items():
        macs = model_macs(model)
        rate = statistics.median(rates[name])
        print(
            f"{name:<20}{parameter_counts(model)['total']:>12,}{macs / 1e6:>11.1f}{rate:>10.0f}"
            f"{3 * macs * rate / 1e9:>8.1f}{28709 / rate / 60:>11.1f}",
            flush=True,
        )
    print("* one epoch over the 28,709 Training faces at that rate")


if __name__ == "__main__":
    main()
