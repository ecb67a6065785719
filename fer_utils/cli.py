"""Command line: ``python -m fer_utils {data-check,train,evaluate} ...``.

Every command exits 0 on success, 2 on bad arguments or input files, 1 on other failures, and
prints one clear line on standard error for the expected problems.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def _data_check(args: argparse.Namespace) -> int:
    from fer_utils import config
    from fer_utils.fer2013 import load_fer2013

    source = config.find_fer2013_csv(args.csv)
    started = time.perf_counter()
    dataset = load_fer2013(source.path, cache=not args.no_cache)
    seconds = time.perf_counter() - started
    print(f"{source.path} (found by {source.found_by}{', SAMPLE' if source.is_sample else ''})")
    print(f"{len(dataset)} faces parsed in {seconds:.2f} s; sha256 {dataset.source_sha256}")
    for usage, counts in dataset.class_counts().items():
        print(f"  {usage:<12} {sum(counts.values()):>6}  " + "  ".join(f"{k} {v}" for k, v in counts.items()))
    return EXIT_OK


def _train(args: argparse.Namespace) -> int:
    from fer_utils import config
    from fer_utils.experiments import get_experiment, run_experiment
    from fer_utils.fer2013 import load_fer2013

    experiments = [get_experiment(name) for name in args.experiments]
    if args.run_dir and len(experiments) > 1:
        raise ValueError("--run-dir names one directory; train one experiment at a time with it")
    dataset = load_fer2013(config.find_fer2013_csv(args.csv).path)
    for experiment in experiments:
        if args.epochs:
            experiment = experiment.with_epochs(args.epochs)
        run_dir = Path(args.run_dir) if args.run_dir else None
        print(f"== {experiment.name}: {experiment.title}", flush=True)
        result, _ = run_experiment(experiment, dataset, run_dir=run_dir, max_images_per_split=args.max_images)
        best = result.history.iloc[result.best_epoch - 1]
        print(
            f"{experiment.name}: {result.epochs_run} epochs, best epoch {result.best_epoch} "
            f"(val_accuracy {best['val_accuracy']:.4f}, val_loss {best['val_loss']:.4f}), "
            f"{result.training_seconds / 60:.1f} min of training, run dir {result.run_dir}",
            flush=True,
        )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fer_utils", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("data-check", help="parse the FER2013 file and print its splits")
    check.add_argument("--csv", help="FER2013 CSV (default: $FER2013_CSV, data/raw/, the sample)")
    check.add_argument("--no-cache", action="store_true", help="parse the CSV even if a cache exists")
    check.set_defaults(handler=_data_check)

    train = commands.add_parser("train", help="train (or resume) experiments of fer_utils.experiments, in order")
    train.add_argument("experiments", nargs="+", metavar="EXPERIMENT")
    train.add_argument("--csv")
    train.add_argument("--epochs", type=int, help="override the experiment's number of epochs")
    train.add_argument("--run-dir", help="checkpoint directory (default models/checkpoints/<name>)")
    train.add_argument("--max-images", type=int, help="subsample every split (smoke tests only)")
    train.set_defaults(handler=_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (FileNotFoundError, IsADirectoryError, KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
