"""The package layout stays readable: imports go one way, modules stay small, Keras classes at module level.

These are the targets of the layout (``docs/layout.md``), checked on the source so that they stay true.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edkeras"

LAYERS = ("core", "events", "reco", "pointing", "reports", "studies", "commands")
"""The stages of the flow, lowest first: a module imports from its own stage or the ones before it."""

MAX_LINES = 600
MAX_IMPORTS_IN_FUNCTIONS = 20


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[ast.AST, str, bool]]:
    """(node, imported edkeras module, inside a function) for every import of ``module``."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[ast.AST, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in child.names]
            for n in names:
                target = _resolve(n)
                if target and target != module:
                    out.append((child, target, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(tree, False)
    return out


GRAPH = {m: sorted({t for _, t, _ in _imports(m)}) for m in MODULES}


def _stage(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return -1  # edkeras/__init__: the version only
    if parts[1] == "cli":
        return len(LAYERS)
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else -1


def test_every_module_belongs_to_a_stage():
    strays = [m for m in MODULES if m.count(".") >= 1 and _stage(m) < 0]
    assert not strays, f"modules outside the stages {LAYERS}: {strays}"


def test_no_import_cycle():
    """Tarjan's strongly connected components of the import graph, every import counted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            connect(v)
    assert not cycles, f"import cycles: {cycles}"


def test_imports_go_down_the_flow():
    upward = [
        f"{m} imports {t}" for m, targets in GRAPH.items() for t in targets if _stage(t) > _stage(m)
    ]
    assert not upward, "imports against the flow " + " → ".join(LAYERS) + ":\n" + "\n".join(upward)


def test_modules_stay_small():
    big = {m: p.read_text().count("\n") for m, p in MODULES.items()}
    big = {m: n for m, n in big.items() if n > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_few_imports_inside_functions_each_with_its_reason():
    inside = []
    for m, p in MODULES.items():
        lines = p.read_text().splitlines()
        for node, target, in_function in _imports(m):
            if in_function:
                here, before = lines[node.lineno - 1], lines[node.lineno - 2].strip()
                inside.append((m, node.lineno, target, "#" in here or before.startswith("#")))
    assert len(inside) <= MAX_IMPORTS_IN_FUNCTIONS, f"{len(inside)} imports inside functions: {inside}"
    unexplained = [i for i in inside if not i[3]]
    assert not unexplained, f"imports inside functions without a one-line reason: {unexplained}"


def test_no_class_defined_inside_a_function():
    nested = []
    for m, p in MODULES.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                nested += [f"{m}.{node.name}: class {c.name}" for c in ast.walk(node)
                           if isinstance(c, ast.ClassDef)]
    assert not nested, f"classes defined inside functions: {nested}"


def test_no_module_getattr_tricks():
    tricks = [m for m, p in MODULES.items()
              if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in ast.parse(p.read_text()).body)]
    assert not tricks, f"module-level __getattr__ in {tricks}"


def test_the_checks_see_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    """The graph builder finds imports inside functions, so a cycle hidden there would fail."""
    src = "def f():\n    from edkeras.reco.training import train\n"
    tree = ast.parse(src)
    found = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert found and _resolve(found[0].module) == "edkeras.reco.training"
    assert _stage("edkeras.core.files") < _stage("edkeras.reco.training") < _stage("edkeras.studies.phase")


@pytest.mark.parametrize("name", ["cosine", "angular", "focal_angular", "vmf_nll", "gaussian_angular_nll", "axial_sense"])
def test_loss_function_and_class_share_their_defaults(name):
    from edkeras.reco import losses

    cls = type(losses.get_loss(name))
    fn = cls._fn
    fn_defaults = {k: v.default for k, v in inspect.signature(fn).parameters.items() if v.default is not v.empty}
    cls_defaults = {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items() if k in fn_defaults}
    assert fn_defaults == cls_defaults


MAX_NOTEBOOK_CODE_LINES = 120


def test_notebooks_stay_thin():
    """Each notebook holds at most 120 lines of code (comments and blank lines not counted)."""
    import nbformat

    thick = {}
    for path in sorted((PACKAGE.parent / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        n = sum(1 for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()
                if line.strip() and not line.strip().startswith("#"))
        if n > MAX_NOTEBOOK_CODE_LINES:
            thick[path.name] = n
    assert not thick, f"notebooks over {MAX_NOTEBOOK_CODE_LINES} code lines: {thick}"


def test_docs_layout_lists_every_module():
    listed = (PACKAGE.parent / "docs" / "layout.md").read_text()
    missing = [m for m in MODULES if m.count(".") >= 1 and f"`{m.removeprefix('edkeras.')}`" not in listed]
    assert not missing, f"modules missing from docs/layout.md: {missing}"
