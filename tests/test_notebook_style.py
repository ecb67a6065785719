"""The committed notebooks read as short papers (docs/notebooks.md): checked on their sources."""

import ast
import re

import nbformat
import pytest

from fer_utils import config
from fer_utils.pipeline import load_profile

NOTEBOOKS = sorted(config.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
MAX_CODE_LINES = 25
#: A figure with two or more decimals in prose is almost always a measured result typed by hand.
TYPED_RESULT = re.compile(r"\b\d+\.\d{2,}\b")


def _cells(path, kind):
    notebook = nbformat.read(path, as_version=4)
    return [cell for cell in notebook.cells if cell.cell_type == kind]


def _code(cell) -> str:
    """A code cell's source without IPython magics, comments kept."""
    return "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))


def _without_injected(cells):
    return [cell for cell in cells if "injected-parameters" not in cell.metadata.get("tags", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_title_and_question_come_first(path):
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown"
    # A notebook the pipeline writes from another one (04 from 03) keeps its source's title.
    sources = {run.notebook[:2] for run in load_profile("full").runs if run.output == path.name}
    numbers = "|".join({path.name[:2], *sources})
    assert re.match(rf"# ({numbers}) · \S", first.source), first.source.splitlines()[0]
    assert "**Question.**" in first.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_imports_then_parameters(path):
    imports, parameters, *_ = _without_injected(_cells(path, "code"))
    statements = ast.parse(_code(imports)).body
    assert statements and all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in statements), path.name
    assert "parameters" in parameters.metadata.get("tags", []), path.name
    assert "check_claims" in parameters.source, f"{path.name}: no check_claims parameter"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_code_cells_are_short(path):
    long_cells = [
        (index, len(cell.source.splitlines()))
        for index, cell in enumerate(_cells(path, "code"))
        if len(cell.source.splitlines()) > MAX_CODE_LINES
    ]
    assert not long_cells, f"{path.name}: code cells (index, lines) over {MAX_CODE_LINES} lines: {long_cells}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_no_measured_figures_typed_into_prose(path):
    typed = [match for cell in _cells(path, "markdown") for match in TYPED_RESULT.findall(cell.source)]
    assert not typed, f"{path.name}: figures typed into markdown: {typed}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_ends_with_key_figures_conclusion_and_checked_claims(path):
    cells = _without_injected(nbformat.read(path, as_version=4).cells)
    *_, figures, conclusion, claims = cells
    assert figures.cell_type == "code" and "key_figures" in figures.source, path.name
    assert conclusion.cell_type == "markdown" and conclusion.source.startswith("## Conclusion"), path.name
    assert claims.cell_type == "code" and "assert " in claims.source, path.name
    assert "check_claims" in claims.source, path.name
