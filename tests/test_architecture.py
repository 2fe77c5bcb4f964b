"""The layers of docs/architecture.md, checked on the source: who may import whom.

Data flows one way: utils -> threat -> attacks / objectives -> estimators -> bridge ->
metrics -> callbacks / plotting -> recipes -> CLI. A module imports only from its own
package or from a lower layer, never a private name (or a private module) of another
package, and no module is over 350 lines. scikit-learn's private modules (its parameter
validation) are imported in one module only, ``utils/_validation.py``.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sklearn_robust"

#: Rank of each room (package, or top-level module); imports must point to lower ranks.
LAYERS = {
    "_version": 0, "utils": 0, "datasets": 0,
    "threat": 1, "verify": 1,
    "attacks": 2, "objectives": 2, "separation": 2,
    "estimators": 3,
    "bridge": 4,
    "metrics": 5,
    "callbacks": 6, "plotting": 6,
    "recipes": 7, "_demo": 7, "_cli_certify": 7, "_cli_data": 7, "persistence": 7,
    "cli": 8,
    "__main__": 9, "__init__": 9,
}
MAX_LINES = 350
#: The one module that may import scikit-learn's private code (``_param_validation``).
SKLEARN_PRIVATE = Path("utils/_validation.py")


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def room(path):
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def imports(path):
    """``(target room, target module parts, imported names)`` of the package's own imports."""
    tree = ast.parse(path.read_text())
    here = path.relative_to(PACKAGE).with_suffix("").parts
    package = here[:-1] if here[-1] != "__init__" else here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "sklearn_robust":
                target = node.module.split(".")[1:]
            else:
                continue
            names = [alias.name for alias in node.names]
            if not target:  # ``from . import x`` at the top level
                for name in names:
                    yield name, [name], []
                continue
            yield target[0], target, names
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "sklearn_robust" and len(parts) > 1:
                    yield parts[1], parts[1:], []


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_down_and_stay_public(path):
    mine = room(path)
    assert mine in LAYERS, f"{mine} has no layer in LAYERS (and docs/architecture.md)"
    for target_room, target, names in imports(path):
        if target_room == mine:
            continue
        assert target_room in LAYERS, (path, target)
        assert LAYERS[target_room] < LAYERS[mine], (
            f"{path.relative_to(PACKAGE)} imports {'.'.join(target)}: {target_room} is not "
            f"below {mine}"
        )
        private_module = [p for p in target[1:] if p.startswith("_")]
        private_names = [n for n in names if n.startswith("_") and n != "__version__"]
        if mine not in ("__init__", "__main__"):  # the entry points re-export
            assert not private_module and not private_names, (
                f"{path.relative_to(PACKAGE)} imports private {'.'.join(target)} "
                f"{private_names}"
            )


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_are_small(path):
    n_lines = len(path.read_text().splitlines())
    assert n_lines <= MAX_LINES, f"{path.relative_to(PACKAGE)} has {n_lines} lines"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_scikit_learns_private_modules_are_imported_once(path):
    if path.relative_to(PACKAGE) == SKLEARN_PRIVATE:
        return
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                 else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        for name in names:
            parts = name.split(".")
            assert not (parts[0] == "sklearn" and any(p.startswith("_") for p in parts)), (
                f"{path.relative_to(PACKAGE)} imports {name}: import it from "
                f"sklearn_robust.utils ({SKLEARN_PRIVATE})"
            )


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*/__init__.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_public_all_re_exports_the_private_utils(path):
    tree = ast.parse(path.read_text())
    public = {elt.value for node in tree.body if isinstance(node, ast.Assign)
              and any(getattr(t, "id", None) == "__all__" for t in node.targets)
              for elt in node.value.elts}
    from_utils = {name for room, _, names in imports(path) if room == "utils" for name in names}
    assert room(path) == "utils" or not public & from_utils, sorted(public & from_utils)
