"""Speed of the real-time student candidates (issue 29): Keras and TFLite, batched and single-face.

Each student proxy network (``fer_utils.training.experiments.student_proxy_networks``: the
candidates and the grid's 16-128 run) and the members' fer_net 32-256 is built untrained (speed does not depend on the weights), exported
as ``fer-utils export`` does, and timed through each runtime with ``--threads`` threads: the median
single-face latency and the batched throughput over ``--faces`` faces. Pause background training
while it runs (``kill -STOP``), or the figures measure the contention.

``--out`` saves the table where the student's rule reads it (``STUDENT_SPEED_CSV``).

Usage: python benchmarks/bench_students.py [--threads 1] [--repeats 200] [--faces 512] [--csv PATH]
                                           [--out reports/metrics/student_speed.csv]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd
from bench_export import configure_threads

from fer_utils import config

FORMATS = ("tflite_float16", "tflite_int8")
#: name -> (architecture, options): the members' (and the born-again) network, timed beside the proxies
EXTRA_CANDIDATES = {"fer_net_32_256": ("fer_net", {})}


def candidate_table(args: argparse.Namespace) -> pd.DataFrame:
    from fer_utils.data.fer2013 import load_fer2013
    from fer_utils.edge.evaluation import export_table
    from fer_utils.edge.export import calibration_faces, export_all
    from fer_utils.models.architectures import build_model, parameter_counts
    from fer_utils.models.cost import model_macs
    from fer_utils.models.saving import save_model_with_metadata
    from fer_utils.training.experiments import student_proxy_networks

    dataset = load_fer2013(config.find_fer2013_csv(args.csv).path)
    public = dataset.split("PublicTest").subset(slice(0, args.faces))
    candidates = {**student_proxy_networks(), **EXTRA_CANDIDATES}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_students_") as scratch:
        for name, (architecture, options) in candidates.items():
            model = build_model(architecture, 7, **options)
            path = save_model_with_metadata(model, Path(scratch) / f"{name}.keras", {"experiment": name})
            results = export_all(path, Path(scratch) / name, calibration_faces(dataset), formats=FORMATS)
            sets = {"PublicTest": (public.images, public.labels)}
            table = export_table(results, sets, latency_repeats=args.repeats, num_threads=args.threads)
            for runtime, row in table.iterrows():
                rows.append({
                    "candidate": name,
                    "parameters": parameter_counts(model)["total"],
                    "MMAC/face": round(model_macs(model) / 1e6, 1),
                    "runtime": runtime,
                    "single-face ms": round(row["latency_ms"], 3),
                    "batched faces/s": round(row["throughput_faces_per_s"]),
                })  # fmt: skip
            print(f"measured {name}", flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--faces", type=int, default=512)
    parser.add_argument("--out", type=Path, help="also save the table as CSV here")
    args = parser.parse_args()
    configure_threads(args.threads)
    load_before = os.getloadavg()
    table = candidate_table(args)
    load_after = os.getloadavg()
    print(f"{args.threads} thread(s); load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(table.to_string(index=False))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
        print(f"saved {args.out}")


if __name__ == "__main__":
    main()
