"""The package's imports run one way: data -> models -> analysis -> training -> video -> edge -> cli."""

import ast
from pathlib import Path

import fer_utils

PACKAGE = Path(fer_utils.__file__).parent
#: A module may import from its own layer and the layers below it, never from one above.
LAYERS = {
    "files": 0,
    "config": 0,
    "data": 1,
    "models": 2,
    "reports": 2,
    "analysis": 3,
    "training": 4,
    "video": 5,
    "edge": 6,
    "api": 7,
    "cli": 8,
    "pipeline": 8,
    "__main__": 8,
    "__init__": 8,
}


def _layer(dotted: str) -> int:
    first = dotted.split(".")[1] if dotted.startswith("fer_utils.") else dotted
    return LAYERS[first]


def _absolute(node: ast.ImportFrom, module: str) -> str | None:
    """The dotted module an import names, relative imports resolved against ``module``."""
    if node.level == 0:
        return node.module
    base = module.split(".")[: -node.level]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path, module: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            node.module = _absolute(node, module)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fer_utils"):
            if node.module == "fer_utils":
                found.update(f"fer_utils.{alias.name}" for alias in node.names if alias.name != "__version__")
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("fer_utils."))
    return found


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "fakes" in path.parts:
            continue
        module = "fer_utils." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        own = _layer(module)
        upward += [f"{module} imports {target}" for target in _imports(path, module) if _layer(target) > own]
    assert not upward, "\n".join(upward)


def test_the_top_of_the_package_stays_thin() -> None:
    modules = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(modules) <= 7, modules
