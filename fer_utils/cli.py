"""Command line: ``python -m fer_utils {data-check,train,progress,evaluate,pipeline,export,video,deeplens-package} ...``.

Every command exits 0 on success, 2 on bad arguments or input files, 1 on other failures, and
prints one clear line on standard error for the expected problems.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from fer_utils.edge import command
from fer_utils.edge.deeplens import packaging as deeplens_packaging
from fer_utils.video import stream

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def _data_check(args: argparse.Namespace) -> int:
    from fer_utils import config
    from fer_utils.data.fer2013 import load_fer2013

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
    from fer_utils.data.fer2013 import load_fer2013
    from fer_utils.training.experiments import get_experiment, record_results, run_experiment

    experiments = [get_experiment(name) for name in args.experiments]
    if args.run_dir and len(experiments) > 1:
        raise ValueError("--run-dir names one directory; train one experiment at a time with it")
    paths = config.artifact_paths(args.artifacts)
    if args.repair_log:
        return _repair_logs(experiments, args, paths)
    dataset = load_fer2013(config.find_fer2013_csv(args.csv).path)
    if args.record:
        _refuse_partial_records_in_committed_locations(args, paths, dataset)
    for experiment in experiments:
        if args.epochs:
            experiment = experiment.with_epochs(args.epochs)
        if args.teacher:
            experiment = experiment.with_teacher(args.teacher)
        run_dir = Path(args.run_dir) if args.run_dir else paths.checkpoints / experiment.name
        print(f"== {experiment.name}: {experiment.title}", flush=True)
        result, splits = run_experiment(
            experiment, dataset, run_dir=run_dir, max_images_per_split=args.max_images
        )
        if args.record and _already_recorded(experiment.name, result, dataset, paths):
            print(
                f"{experiment.name}: already recorded as {paths.models / experiment.name}.keras", flush=True
            )
        elif args.record:
            recorded = record_results(experiment, result, splits, dataset, paths.ensure())
            accuracies = ", ".join(
                f"{split} {values['accuracy']:.4f}" for split, values in recorded["splits"].items()
            )
            print(
                f"{experiment.name}: recorded {paths.models / experiment.name}.keras ({accuracies})",
                flush=True,
            )
        if args.record:
            _drop_recorded_checkpoints(experiment.name, run_dir, paths)
        best = result.history.iloc[result.best_epoch - 1]
        print(
            f"{experiment.name}: {result.epochs_run} epochs, best epoch {result.best_epoch} "
            f"(val_accuracy {best['val_accuracy']:.4f}, val_loss {best['val_loss']:.4f}), "
            f"{result.training_seconds / 60:.1f} min of training, run dir {result.run_dir}",
            flush=True,
        )
    return EXIT_OK


def _drop_recorded_checkpoints(name: str, run_dir: Path, paths) -> None:
    """A recorded run's checkpoints leave the committed tree; its epochs stay beside the reports."""
    import shutil

    from fer_utils.training.experiments import archive_training_log

    if not (paths.is_committed_location and run_dir.parent == paths.checkpoints and run_dir.is_dir()):
        return
    archive_training_log(run_dir, paths.metrics.parent / "training_logs" / name)
    shutil.rmtree(run_dir)
    print(
        f"{name}: checkpoints removed ({run_dir}); its epochs stay in reports/training_logs/{name}/",
        flush=True,
    )


def _repair_logs(experiments, args: argparse.Namespace, paths) -> int:
    from fer_utils.training.loop import repair_log, run_directory_lock

    for experiment in experiments:
        run_dir = Path(args.run_dir) if args.run_dir else paths.checkpoints / experiment.name
        with run_directory_lock(run_dir):
            print(f"{run_dir}: training_log.csv repaired, {repair_log(run_dir)} epochs kept", flush=True)
    return EXIT_OK


def _refuse_partial_records_in_committed_locations(args: argparse.Namespace, paths, dataset) -> None:
    """``models/`` and ``reports/`` hold full runs on the real data only: a shortened run, a
    subsample or the committed sample would overwrite a committed model with a lesser one."""
    if not paths.is_committed_location:
        return
    reasons = [
        reason
        for reason, applies in (
            ("--epochs shortens the run", args.epochs),
            ("--max-images subsamples the splits", args.max_images),
            (f"{dataset.source.name} is the committed sample", dataset.is_sample),
        )
        if applies
    ]
    if reasons:
        raise ValueError(
            f"--record would overwrite the committed models and reports, but {'; '.join(reasons)}; "
            "pass --artifacts DIR to record elsewhere"
        )


def _already_recorded(name: str, result, dataset, paths) -> bool:
    """Whether ``models/<name>.keras`` already holds this finished run on this data, so a queue
    started again does not re-evaluate (and rewrite) every model it finished before."""
    sidecar_path = paths.models / f"{name}.json"
    if not (paths.models / f"{name}.keras").exists() or not sidecar_path.exists():
        return False
    sidecar = json.loads(sidecar_path.read_text())
    return (sidecar.get("epochs_run"), sidecar.get("best_epoch"), sidecar.get("data_sha256")) == (
        result.epochs_run,
        result.best_epoch,
        dataset.source_sha256,
    )


def _progress(args: argparse.Namespace) -> int:
    from fer_utils.training.experiments import EXPERIMENTS, get_experiment
    from fer_utils.training.progress import progress_table, readable_progress_table, run_progress

    names = args.experiments or list(EXPERIMENTS)
    checkpoints = Path(args.checkpoints) if args.checkpoints else None
    models = checkpoints.parent if checkpoints else None  # the layout is <models>/checkpoints/<run>
    table = progress_table([run_progress(get_experiment(name), checkpoints, models) for name in names])
    if args.json:
        print(table.reset_index().to_json(orient="records", indent=2))
        return EXIT_OK
    print(readable_progress_table(table).to_string())
    left = table["hours_left"].sum()
    print(
        f"at most {left:.1f} hours of training left for the runs started (early stopping may end some sooner)"
    )
    return EXIT_OK


def _pipeline(args: argparse.Namespace) -> int:
    from fer_utils import config
    from fer_utils.pipeline import PipelineError, run_pipeline

    profile = args.profile
    if profile == "auto":
        source = config.find_fer2013_csv(args.csv, warn_on_sample=False)
        real_data = not (source.is_sample or source.path.resolve() == config.SAMPLE_FER2013_CSV.resolve())
        profile = "ci" if real_data else "sample"
        print(
            f"profile {profile}: short runs under reports/runs/{profile}/. The full run (--profile full, "
            "make pipeline PROFILE=full) rewrites the committed notebooks and models; it is only run when asked.",
            flush=True,
        )
    try:
        written = run_pipeline(profile, args.csv, only=args.only, prepare_only=args.prepare_only)
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"{len(written)} notebook(s) written to {written[0].parent if written else '-'}")
    return EXIT_OK


def _evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from fer_utils import config
    from fer_utils.analysis.evaluation import evaluate_split
    from fer_utils.data.fer2013 import load_fer2013
    from fer_utils.data.image_folders import load_image_folder
    from fer_utils.data.labels import FERPLUS_CLASSES
    from fer_utils.models.saving import check_face_input, load_model_with_metadata

    model, metadata = load_model_with_metadata(args.model)
    check_face_input(model, args.model, "evaluate")
    class_names = tuple(metadata["class_names"])
    if args.images:
        if args.split:
            raise ValueError("--split chooses splits of a FER2013 file; --images has none")
        folder = load_image_folder(args.images)
        named = {"images": folder.dataset}
        if folder.unmapped:
            print(
                f"note: folders not mapped to FER2013 classes, left out: {folder.unmapped}", file=sys.stderr
            )
    else:
        dataset = load_fer2013(config.find_fer2013_csv(args.csv).path)
        if class_names == FERPLUS_CLASSES:  # FER+ models are scored on FER+ majority labels
            from fer_utils.data.ferplus import load_ferplus_for, with_ferplus_labels

            dataset = with_ferplus_labels(dataset, load_ferplus_for(dataset, args.ferplus))
            print(f"note: {dataset.notes[-1]}", file=sys.stderr)
        wanted = args.split or dataset.splits_present
        absent = sorted(set(wanted) - set(dataset.splits_present))
        if absent:
            raise ValueError(
                f"{dataset.source} has no {', '.join(absent)} rows; it has {dataset.splits_present}"
            )
        named = {usage: dataset.split(usage) for usage in wanted}
    results = {}
    for name, data in tqdm(
        named.items(), desc="evaluating", unit="split", file=sys.stderr, disable=args.json
    ):
        results[name] = evaluate_split(model, data, class_names, name).as_dict()
    if args.json:
        print(
            json.dumps(
                {"model": str(args.model), "class_names": list(class_names), "splits": results}, indent=2
            )
        )
        return EXIT_OK
    print(f"{args.model}: {len(class_names)} classes")
    for name, result in results.items():
        print(
            f"{name:<12} {result['n_images']:>6} images  accuracy {100 * result['accuracy']:.2f}%  loss {result['loss']:.4f}"
        )
        print("    " + "  ".join(f"{k} {100 * v:.1f}%" for k, v in result["per_class_accuracy"].items()))
    return EXIT_OK


def _classify(args: argparse.Namespace) -> int:
    from fer_utils.api import IMAGE_SUFFIXES, EmotionRecognizer, ImageReadError, image_paths, read_image

    if args.min_face < 1:
        raise ValueError(f"--min-face must be at least 1 pixel, got {args.min_face}")
    recognizer = EmotionRecognizer(args.model, min_face=args.min_face, detect=not args.no_detect)
    failed, classified, annotated_names = 0, 0, set()
    for path in image_paths(args.images):
        classified += 1
        try:
            image = read_image(path)
            faces = recognizer.analyze(image)
        except ImageReadError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            failed += 1
            continue
        for index, face in enumerate(faces):
            if args.json:
                print(json.dumps({"file": str(path), "face": index, **face.as_dict()}), flush=True)
            else:
                box = ",".join(str(v) for v in face.box)
                print(f"{path}\tface {index}\tbox {box}\t{face.label}\t{face.probability:.3f}", flush=True)
        if not faces and not args.json:
            print(f"{path}\tno face found", flush=True)
        if args.annotate:
            name = _unique_name(f"{path.stem}_annotated.png", annotated_names)
            try:
                _write_annotated(image, faces, Path(args.annotate) / name, recognizer.class_names)
            except OSError as error:
                print(
                    f"error: {path}: cannot write the annotated copy ({error})", file=sys.stderr, flush=True
                )
                failed += 1
    if not classified:
        suffixes = ", ".join(IMAGE_SUFFIXES)
        print(f"error: no images in {', '.join(args.images)} (looked for {suffixes})", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_FAILURE if failed else EXIT_OK


def _unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name`` with a number before its suffix when two inputs share a file name."""
    stem, suffix, number = Path(name).stem, Path(name).suffix, 1
    while name in taken:
        number += 1
        name = f"{stem}_{number}{suffix}"
    taken.add(name)
    return name


def _write_annotated(image, faces, output: Path, class_names: tuple[str, ...]) -> None:
    import cv2

    from fer_utils.files import atomic_path
    from fer_utils.video.recognition import FaceResult
    from fer_utils.video.stream import annotate_frame

    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    results = [
        FaceResult(face.box, face.label, face.probabilities, index) for index, face in enumerate(faces)
    ]
    annotate_frame(canvas, results, class_names)
    with atomic_path(output) as temporary:
        if not cv2.imwrite(str(temporary), canvas):
            raise OSError(f"OpenCV could not write {output}")


def _bundle_model(args: argparse.Namespace) -> int:
    from fer_utils import config
    from fer_utils.data.sample import write_sample_face_photo
    from fer_utils.models.saving import save_for_inference

    destination = save_for_inference(args.model, config.BUNDLED_MODEL)
    print(f"bundled {args.model} as {destination}")
    write_sample_face_photo(config.BUNDLED_SAMPLE_FACE)
    print(f"wrote the example photo {config.BUNDLED_SAMPLE_FACE}")
    return EXIT_OK


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fer-utils",
        description="Facial expression recognition on FER2013: data, training, evaluation, notebooks, export, video.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("data-check", help="parse the FER2013 file and print its splits")
    check.add_argument("--csv", help="FER2013 CSV (default: $FER2013_CSV, data/raw/, the sample)")
    check.add_argument("--no-cache", action="store_true", help="parse the CSV even if a cache exists")
    check.set_defaults(handler=_data_check)

    train = commands.add_parser(
        "train", help="train (or resume) experiments of fer_utils.training.experiments, in order"
    )
    train.add_argument("experiments", nargs="+", metavar="EXPERIMENT")
    train.add_argument("--csv")
    train.add_argument("--epochs", type=positive_int, help="override the experiment's number of epochs")
    train.add_argument("--run-dir", help="checkpoint directory (default models/checkpoints/<name>)")
    train.add_argument("--max-images", type=positive_int, help="subsample every split (smoke tests only)")
    train.add_argument(
        "--repair-log",
        action="store_true",
        help="make the run directory's training_log.csv one row per epoch up to state.json, then stop",
    )
    train.add_argument(
        "--teacher", help="teacher .keras file of a distillation experiment (default: the experiment's)"
    )
    train.add_argument(
        "--record",
        action="store_true",
        help="when a run has finished, save its best model with the JSON sidecar under models/, "
        "its metrics under reports/metrics/ and refresh the results table, as the notebooks do",
    )
    train.add_argument(
        "--artifacts",
        help="record under this folder instead of models/ and reports/ "
        "(its models/checkpoints/ also holds the runs unless --run-dir is given)",
    )
    train.set_defaults(handler=_train)

    progress = commands.add_parser(
        "progress", help="where each training run stands: epochs, best PublicTest accuracy, hours left"
    )
    progress.add_argument("experiments", nargs="*", metavar="EXPERIMENT", help="default: every experiment")
    progress.add_argument(
        "--checkpoints",
        help="checkpoint root (default models/checkpoints); recorded models are looked for in its parent",
    )
    progress.add_argument("--json", action="store_true", help="print JSON instead of a table")
    progress.set_defaults(handler=_progress)

    pipeline = commands.add_parser("pipeline", help="run the numbered notebooks with papermill")
    pipeline.add_argument(
        "--profile",
        default="auto",
        help="full, ci, sample (notebooks/params/*.yaml); auto: ci with real data, else sample (never full)",
    )
    pipeline.add_argument("--csv")
    pipeline.add_argument(
        "--only", nargs="+", metavar="NOTEBOOK", help="run only these executed notebooks (output names)"
    )
    pipeline.add_argument("--prepare-only", action="store_true", help="inject parameters without executing")
    pipeline.set_defaults(handler=_pipeline)

    evaluate = commands.add_parser("evaluate", help="accuracy of a saved model per split and class")
    evaluate.add_argument("model", help="a .keras file saved by this project (its .json sidecar beside it)")
    source = evaluate.add_mutually_exclusive_group()
    source.add_argument(
        "--csv", help="Kaggle-format FER2013 CSV (default: $FER2013_CSV, data/raw/, the sample)"
    )
    source.add_argument("--images", help="folder of face images arranged as ROOT/<emotion>/<file>")
    evaluate.add_argument("--json", action="store_true", help="print JSON instead of text")
    evaluate.add_argument(
        "--split",
        action="append",
        choices=("Training", "PublicTest", "PrivateTest"),
        help="score only this split (repeatable; default: every split in the file)",
    )
    evaluate.add_argument(
        "--ferplus",
        help="FER+ fer2013new.csv, for 8-class FER+ models (default: $FERPLUS_CSV, data/raw/, the sample)",
    )
    evaluate.set_defaults(handler=_evaluate)

    classify = commands.add_parser(
        "classify", help="faces and their emotions in photos (files or directories)"
    )
    classify.add_argument(
        "images", nargs="+", metavar="IMAGE|DIR", help="image files; directories are walked"
    )
    classify.add_argument("--model", help="a .keras file saved by this project (default: the bundled model)")
    classify.add_argument("--json", action="store_true", help="print JSON Lines, one record per face")
    classify.add_argument("--annotate", metavar="OUT_DIR", help="write copies with boxes and labels drawn")
    classify.add_argument(
        "--min-face", type=int, default=24, metavar="PX", help="smallest face side (default 24)"
    )
    classify.add_argument(
        "--no-detect", action="store_true", help="classify each whole image as one face (for face crops)"
    )
    classify.set_defaults(handler=_classify)

    bundle = commands.add_parser("bundle-model", help="(maintainers) ship a model inside the package")
    bundle.add_argument("model", help="a .keras file saved by this project")
    bundle.set_defaults(handler=_bundle_model)

    # Commands that live with their own module (their heavy imports happen only when they run).
    command.add_parser(commands)  # edge exports: SavedModel, TFLite, frozen graph
    stream.add_parser(commands)  # real-time emotions on a video file or camera
    deeplens_packaging.add_parser(commands)  # the AWS DeepLens Lambda zip
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (FileNotFoundError, IsADirectoryError, KeyError, ValueError) as error:  # includes format errors
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
