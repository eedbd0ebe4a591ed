"""The package layout stays readable: imports go one way, modules stay small, Keras classes at module level.

These are the targets of the layout (``docs/layout.md``), checked on the source so that they stay true.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

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


def _imports_in(source: str, module: str, is_package: bool = False) -> list[tuple[ast.AST, str, bool]]:
    """(node, imported edkeras module, inside a function) for every import in ``source`` of ``module``."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
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


def _imports(module: str) -> list[tuple[ast.AST, str, bool]]:
    path = MODULES[module]
    return _imports_in(path.read_text(), module, path.name == "__init__.py")


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: its strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, []):
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

    for v in graph:
        if v not in index:
            connect(v)
    return cycles


def _upward(graph: dict[str, list[str]]) -> list[str]:
    return [f"{m} imports {t}" for m, targets in graph.items() for t in targets if _stage(t) > _stage(m)]


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
    """Every import counted, those inside functions included."""
    assert not _cycles(GRAPH), f"import cycles: {_cycles(GRAPH)}"


def test_imports_go_down_the_flow():
    upward = _upward(GRAPH)
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
                inline = here.partition("  # ")[2]
                reasons = [inline] * bool(inline) + [before.removeprefix("# ")] * before.startswith("# ")
                inside.append((m, node.lineno, target, any(not r.startswith("noqa") for r in reasons)))
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
    def defines_getattr(node: ast.AST) -> bool:
        if isinstance(node, ast.FunctionDef):
            return node.name == "__getattr__"
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        return any(isinstance(t, ast.Name) and t.id == "__getattr__" for t in targets)

    tricks = [m for m, p in MODULES.items() if any(defines_getattr(n) for n in ast.parse(p.read_text()).body)]
    assert not tricks, f"module-level __getattr__ in {tricks}"


def test_the_checks_see_a_hidden_cycle_and_an_upward_import():
    """A cycle closed by an import inside a function, and a core module importing reco, are both caught."""
    hidden = "import numpy\n\ndef f():\n    from edkeras.reco.training import train  # lazily\n"
    found = _imports_in(hidden, "edkeras.core.files")
    assert [(t, inside) for _, t, inside in found] == [("edkeras.reco.training", True)]
    graph = {"edkeras.core.files": ["edkeras.reco.training"], "edkeras.reco.training": ["edkeras.core.files"]}
    assert _cycles(graph) == [["edkeras.core.files", "edkeras.reco.training"]]
    assert _upward(graph) == ["edkeras.core.files imports edkeras.reco.training"]
    assert not _cycles({"a": ["b"], "b": []})


def test_the_command_line_starts_without_tensorflow():
    """``edkeras --help`` builds every sub-command's parser; none may load TensorFlow or Keras."""
    import subprocess
    import sys

    code = ("import sys; from edkeras.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_keras_objects_are_registered_once_under_their_names():
    """Every custom layer, loss and metric class of edkeras is registered as ``edkeras>ClassName``."""
    import importlib

    import keras

    classes = {}
    for m in MODULES:
        if m.startswith("edkeras.commands") or m == "edkeras.cli":
            continue
        mod = importlib.import_module(m)
        for obj in vars(mod).values():
            if (inspect.isclass(obj) and obj.__module__ == m and not obj.__name__.startswith("_")
                    and issubclass(obj, (keras.layers.Layer, keras.losses.Loss, keras.metrics.Metric))):
                classes[f"{m}.{obj.__name__}"] = obj
    assert len(classes) >= 8  # layers, losses, metrics, the ensemble's combiner and model
    names = [c.__name__ for c in classes.values()]
    assert len(set(names)) == len(names), "two Keras classes share a name"
    unregistered = [k for k, c in classes.items() if keras.saving.get_registered_object(f"edkeras>{c.__name__}") is not c]
    assert not unregistered, f"Keras classes not registered as edkeras>Name: {unregistered}"


def test_loss_functions_and_classes_share_their_defaults():
    from edkeras.reco import losses

    compared = 0
    for name in losses.LOSSES:
        cls = type(losses.get_loss(name))
        params = inspect.signature(cls._fn).parameters
        fn_defaults = {k: v.default for k, v in params.items() if v.default is not v.empty}
        cls_defaults = {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items() if k in fn_defaults}
        assert fn_defaults == cls_defaults, f"{name}: function {fn_defaults}, class {cls_defaults}"
        compared += bool(fn_defaults)
    assert compared >= 2  # vmf_nll, focal_angular, … have options with defaults


MAX_NOTEBOOK_CODE_LINES = 120


def test_notebooks_stay_thin():
    """Each notebook holds at most 120 lines of code (comments and blank lines not counted)."""
    import nbformat

    thick = {}
    notebooks = sorted((PACKAGE.parent / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 10
    for path in notebooks:
        nb = nbformat.read(str(path), as_version=4)
        n = sum(1 for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()
                if line.strip() and not line.strip().startswith("#"))
        if n > MAX_NOTEBOOK_CODE_LINES:
            thick[path.name] = n
    assert not thick, f"notebooks over {MAX_NOTEBOOK_CODE_LINES} code lines: {thick}"


def test_docs_layout_lists_every_module():
    """The module tables of docs/layout.md name exactly the modules there are."""
    import re

    listed = set(re.findall(r"^\| `([\w.]+)` \|", (PACKAGE.parent / "docs" / "layout.md").read_text(), flags=re.M))
    modules = {m.removeprefix("edkeras.") for m in MODULES if m != "edkeras"}
    assert listed == modules, f"missing: {sorted(modules - listed)}; stale: {sorted(listed - modules)}"
