"""Load time of the FER2013 file: cold (parse the CSV) and cached (read the .npz), medians of runs.

Usage: python benchmarks/bench_load.py [--csv PATH] [--repeats 3]
The target for the 32,298-row shared file on the 2-core machine: cold <= 4 s, cached < 0.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from fer_utils import config
from fer_utils.data.fer2013 import load_fer2013


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    source = config.find_fer2013_csv(args.csv)
    cold, cached = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache_dir:
            started = time.perf_counter()
            dataset = load_fer2013(source.path, cache_dir=cache_dir)
            cold.append(time.perf_counter() - started)
            started = time.perf_counter()
            load_fer2013(source.path, cache_dir=cache_dir)
            cached.append(time.perf_counter() - started)
    print(f"file: {source.path} ({len(dataset):,} rows{', SAMPLE' if source.is_sample else ''})")
    print(
        f"cold load (parse CSV + write cache): median {statistics.median(cold):.2f} s  runs {[round(t, 2) for t in cold]}"
    )
    print(
        f"cached load (.npz):                  median {statistics.median(cached):.3f} s  runs {[round(t, 3) for t in cached]}"
    )


if __name__ == "__main__":
    main()
