"""Runs the numbered notebooks in order with papermill, under a named parameter profile.

A profile is a small YAML file in ``notebooks/params/``: where the executed notebooks go, the
parameters every notebook gets (only those it declares in its ``parameters`` cell), and the list
of notebook runs (a notebook may run twice with different parameters, as phase 2 re-runs the
phase-1 notebook with 30 epochs). The ``full`` profile writes the committed notebooks and refuses to
run on the sample data; every other profile writes under ``reports/runs/<profile>/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fer_utils import config


class PipelineError(RuntimeError):
    """A notebook failed, or a profile asked for something unsafe; the message says which."""


@dataclass(frozen=True)
class NotebookRun:
    notebook: str
    output: str
    parameters: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    output_dir: Path
    parameters: dict
    runs: tuple[NotebookRun, ...]

    @property
    def writes_committed_notebooks(self) -> bool:
        return self.output_dir.resolve() == config.NOTEBOOKS_DIR.resolve()


def profile_path(name: str) -> Path:
    return config.NOTEBOOK_PARAMS_DIR / f"{name}.yaml"


def available_profiles() -> list[str]:
    return sorted(p.stem for p in config.NOTEBOOK_PARAMS_DIR.glob("*.yaml"))


def load_profile(name: str) -> Profile:
    """Read ``notebooks/params/<name>.yaml``; unknown names list the profiles that exist."""
    path = profile_path(name)
    if not path.exists():
        raise PipelineError(f"No profile {name!r} ({path} missing); available: {available_profiles()}")
    raw = yaml.safe_load(path.read_text()) or {}
    runs = tuple(
        NotebookRun(
            notebook=entry["notebook"],
            output=entry.get("output", entry["notebook"]),
            parameters=dict(entry.get("parameters") or {}),
        )
        for entry in raw.get("runs", [])
    )
    if not runs:
        raise PipelineError(f"{path}: lists no notebook runs")
    output_dir = Path(raw.get("output_dir", f"reports/runs/{name}"))
    return Profile(
        name=name,
        description=str(raw.get("description", "")),
        output_dir=output_dir if output_dir.is_absolute() else config.PROJECT_ROOT / output_dir,
        parameters=dict(raw.get("parameters") or {}),
        runs=runs,
    )


def parameters_for(run: NotebookRun, profile: Profile, declared: set[str], data_path: Path | None) -> dict:
    """Profile-wide, then per-run parameters, plus an explicit data path; only those the notebook declares.

    Without an explicit path the notebooks find the data themselves (``$FER2013_CSV``, ...), so
    the committed notebooks do not record one machine's file system.
    """
    wanted = {
        **({"fer2013_csv": str(data_path)} if data_path else {}),
        **profile.parameters,
        **run.parameters,
    }
    return {key: value for key, value in wanted.items() if key in declared}


def run_pipeline(
    profile_name: str,
    fer2013_csv: str | None = None,
    only: list[str] | None = None,
    prepare_only: bool = False,
    log=print,
) -> list[Path]:
    """Execute (or with ``prepare_only`` just parameterise) the profile's notebooks, in order.

    Stops at the first failing notebook with its name, the failing cell and the error.
    """
    import papermill

    profile = load_profile(profile_name)
    source = config.find_fer2013_csv(fer2013_csv)
    if profile.writes_committed_notebooks and source.is_sample:
        raise PipelineError(
            f"Profile {profile.name!r} writes the committed notebooks and needs the real data; "
            f"only the sample was found. Set {config.FER2013_ENV_VAR} or use --profile sample."
        )
    runs = [r for r in profile.runs if not only or r.output in only]  # by output: 03 also yields 04
    profile.output_dir.mkdir(parents=True, exist_ok=True)
    log(f"Profile {profile.name}: {profile.description}")
    log(f"Data: {source.path}{' (SAMPLE: results not comparable)' if source.is_sample else ''}")
    log(f"Executed notebooks go to {profile.output_dir}")
    written: list[Path] = []
    for number, run in enumerate(runs, start=1):
        input_path = config.NOTEBOOKS_DIR / run.notebook
        output_path = profile.output_dir / run.output
        declared = set(papermill.inspect_notebook(str(input_path)).keys())
        parameters = parameters_for(
            run, profile, declared, source.path if source.found_by == "argument" else None
        )
        started = time.perf_counter()
        log(f"[{number}/{len(runs)}] {run.output} <- {run.notebook} {parameters}")
        try:
            papermill.execute_notebook(
                str(input_path),
                str(output_path),
                parameters=parameters,
                kernel_name="python3",
                cwd=str(config.NOTEBOOKS_DIR),
                prepare_only=prepare_only,
                progress_bar=True,
            )
        except papermill.PapermillExecutionError as error:
            raise PipelineError(
                f"{run.output} failed in cell {error.exec_count} with {error.ename}: {error.evalue} "
                f"(the partly executed notebook is {output_path})"
            ) from error
        _tidy_injected_parameters(output_path)
        log(f"[{number}/{len(runs)}] {run.output} done in {time.perf_counter() - started:.1f} s")
        written.append(output_path)
    return written


def _tidy_injected_parameters(notebook_path: Path) -> None:
    """Drop the trailing newline papermill leaves in the cell it injects, which ``ruff format`` rejects."""
    import nbformat

    notebook = nbformat.read(notebook_path, as_version=4)
    injected = [c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
    if any(cell.source != cell.source.rstrip() for cell in injected):
        for cell in injected:
            cell.source = cell.source.rstrip()
        nbformat.write(notebook, notebook_path)
