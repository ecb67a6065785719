"""The papermill pipeline: profiles, parameter injection, safety of committed notebooks, nbval."""

import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from fer_utils import config
from fer_utils.pipeline import NotebookRun, PipelineError, load_profile, parameters_for, run_pipeline


def test_every_profile_lists_existing_notebooks():
    for name in ("full", "ci", "sample"):
        profile = load_profile(name)
        for run in profile.runs:
            assert (config.NOTEBOOKS_DIR / run.notebook).exists(), run.notebook
    assert load_profile("full").writes_committed_notebooks
    assert not load_profile("ci").writes_committed_notebooks
    assert not load_profile("sample").writes_committed_notebooks


def test_committed_notebooks_have_parameters_cells_and_the_python3_kernel():
    for path in config.NOTEBOOKS_DIR.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        assert notebook.metadata["kernelspec"]["name"] == "python3", path.name
        assert any("parameters" in cell.metadata.get("tags", []) for cell in notebook.cells), path.name


def test_unknown_profile_lists_the_available_ones():
    with pytest.raises(PipelineError, match="ci"):
        load_profile("nonexistent")


def test_only_declared_parameters_are_injected(tmp_path):
    profile = load_profile("ci")
    run = NotebookRun("x.ipynb", "x.ipynb", {"experiment": "phase2_cnn"})
    injected = parameters_for(run, profile, {"fer2013_csv", "epochs", "experiment"}, tmp_path / "f.csv")
    assert "fer2013_csv" not in parameters_for(run, profile, {"fer2013_csv"}, None)
    assert injected == {"fer2013_csv": str(tmp_path / "f.csv"), "epochs": 1, "experiment": "phase2_cnn"}


def test_full_profile_refuses_the_sample(monkeypatch):
    monkeypatch.delenv(config.FER2013_ENV_VAR, raising=False)
    monkeypatch.setattr(config, "CONVENTIONAL_FER2013_PATHS", ())
    with pytest.raises(PipelineError, match="needs the real data"):
        run_pipeline("full", log=lambda *_: None)


def test_prepare_only_writes_parameterised_copies_outside_notebooks(monkeypatch):
    written = run_pipeline("ci", only=["02_preprocessing.ipynb"], prepare_only=True, log=lambda *_: None)
    assert [p.name for p in written] == ["02_preprocessing.ipynb"]
    assert written[0].parent == config.RUNS_DIR / "ci"
    injected = [
        c
        for c in nbformat.read(written[0], as_version=4).cells
        if "injected-parameters" in c.metadata.get("tags", [])
    ]
    assert injected and "artifacts_dir" in injected[0].source
    assert injected[0].source == injected[0].source.rstrip()  # as ruff format wants it


def _checked_notebook(path, stored_output: str):
    cell = new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1 + 1)")
    cell.outputs = [new_output("stream", name="stdout", text=stored_output)]
    cell.execution_count = 1  # nbval only compares cells that were run
    nbformat.write(
        new_notebook(
            cells=[cell],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        ),
        path,
    )


def test_nbval_fails_when_a_checked_output_changes(tmp_path):
    """The CI gate is real: a checked cell whose output differs from the stored one fails nbval."""
    _checked_notebook(tmp_path / "same.ipynb", "2\n")
    _checked_notebook(tmp_path / "changed.ipynb", "3\n")
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q"]
    same = subprocess.run(
        [*command, str(tmp_path / "same.ipynb")], capture_output=True, text=True, cwd=tmp_path
    )
    changed = subprocess.run(
        [*command, str(tmp_path / "changed.ipynb")], capture_output=True, text=True, cwd=tmp_path
    )
    assert same.returncode == 0, same.stdout[-1500:]
    assert changed.returncode == 1, changed.stdout[-1500:]
    assert "1 failed" in changed.stdout


def test_a_failing_notebook_stops_the_run_naming_notebook_cell_and_error(tmp_path, monkeypatch):
    notebooks, params = tmp_path / "notebooks", tmp_path / "notebooks" / "params"
    params.mkdir(parents=True)
    cells = [
        new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        new_code_cell("raise ValueError('bad face in frame 7')"),
    ]
    nbformat.write(
        new_notebook(
            cells=cells,
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        ),
        notebooks / "01_broken.ipynb",
    )
    nbformat.write(
        new_notebook(
            cells=[new_code_cell("y = 2", metadata={"tags": ["parameters"]})],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        ),
        notebooks / "02_never_run.ipynb",
    )
    (params / "t.yaml").write_text(
        f"output_dir: {tmp_path / 'out'}\nruns:\n  - notebook: 01_broken.ipynb\n  - notebook: 02_never_run.ipynb\n"
    )
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", notebooks)
    monkeypatch.setattr(config, "NOTEBOOK_PARAMS_DIR", params)
    with pytest.raises(
        PipelineError, match=r"01_broken\.ipynb failed in cell 2 with ValueError: bad face in frame 7"
    ):
        run_pipeline("t", log=lambda *_: None)
    assert (tmp_path / "out" / "01_broken.ipynb").exists()
    assert not (tmp_path / "out" / "02_never_run.ipynb").exists()


@pytest.mark.parametrize("is_sample, expected", [(True, "sample"), (False, "ci")])
def test_the_default_profile_never_rewrites_the_committed_notebooks(monkeypatch, capsys, is_sample, expected):
    from fer_utils import cli, pipeline

    chosen = []
    path = config.SAMPLE_FER2013_CSV if is_sample else config.RAW_DATA_DIR / "fer2013.csv"
    source = config.DataSource(path, is_sample=is_sample, found_by="test")
    monkeypatch.setattr(config, "find_fer2013_csv", lambda *args, **kwargs: source)
    monkeypatch.setattr(
        pipeline, "run_pipeline", lambda profile, *args, **kwargs: chosen.append(profile) or []
    )
    assert cli.main(["pipeline"]) == cli.EXIT_OK
    assert chosen == [expected]
    assert "--profile full" in capsys.readouterr().out
