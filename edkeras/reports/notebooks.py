"""Notebooks as reports: execute a phase notebook with papermill, export it to HTML.

``edkeras run v21_uncertainty -p epochs 3`` executes ``notebooks/v21_uncertainty.ipynb``
into ``runs/<run_name>/v21_uncertainty.ipynb`` (the executed copy lives with the run) and
writes ``reports/v21_uncertainty.html`` (code hidden unless ``show_code``). A notebook
that fails still gets its report, showing the error, and the call reports failure.

Every notebook ends by calling :func:`save_summary`, which writes the figures it
measured into ``runs/<run_name>/summary.json``; tests read that file, not only the exit
status.

Papermill runs in a child process of its own session (with the kernel below it): Ctrl-C or
SIGTERM reach only the caller, which then kills the child and the kernel and says so in one
line, instead of tearing the kernel down under papermill's running event loop (which
printed nbclient's ``DeadKernelError`` and zmq tracebacks).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edkeras.core.errors import InputError
from edkeras.core.files import jsonable, write_text

__all__ = [
    "NotebookResult",
    "export_html",
    "find_notebook",
    "notebook_parameters",
    "project_root",
    "quiet_notebook",
    "run_notebook",
    "save_summary",
]


def quiet_notebook() -> None:
    """Keep TensorFlow's start-up lines and tqdm's widget warning out of a notebook (call before other imports)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm without ipywidgets


def project_root() -> Path:
    """The folder holding ``notebooks/``, ``runs/``, ``reports/``: the checkout when
    edkeras is installed editable, else the current directory."""
    here = Path(__file__).resolve().parents[2]
    if (here / "notebooks").is_dir() and (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


def find_notebook(name: str | os.PathLike) -> Path:
    """Resolve ``v21_uncertainty``, ``v21_uncertainty.ipynb`` or a path to a notebook file."""
    p = Path(name)
    candidates = [p, p.with_suffix(".ipynb")] if p.suffix != ".ipynb" else [p]
    candidates += [project_root() / "notebooks" / c.name for c in candidates]
    for c in candidates:
        if c.is_file():
            return c
    known = sorted(q.stem for q in (project_root() / "notebooks").glob("*.ipynb"))
    raise InputError(f"{name}: no such notebook; known notebooks: {', '.join(known) or '(none)'}")


def notebook_parameters(path: str | os.PathLike) -> dict[str, Any]:
    """The literal parameters of a notebook's cell tagged ``parameters`` (name → default)."""
    import ast

    nb = json.loads(Path(path).read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            src = "".join(cell["source"])
            out = {}
            for node in ast.parse(src).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target = node.targets[0]
                    if isinstance(target, ast.Name):
                        out[target.id] = ast.literal_eval(node.value)
            return out
    raise InputError(f"{path}: no cell tagged 'parameters'")


@dataclass(frozen=True)
class NotebookResult:
    """What :func:`run_notebook` produced."""

    notebook: Path
    executed: Path
    html: Path
    ok: bool
    error: str
    seconds: float
    summary: dict | None


def export_html(executed: str | os.PathLike, html: str | os.PathLike, show_code: bool = False) -> Path:
    """Export an executed notebook to a standalone HTML file (code hidden by default)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    exporter = HTMLExporter(exclude_input=not show_code, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)

    return write_text(html, body)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "True or False"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a dict"
    return type(value).__name__


def _check_parameter_types(where: str, defaults: dict[str, Any], params: dict[str, Any]) -> None:
    """A value must have its default's type (ints pass for floats; None passes and is taken by None)."""
    for key, value in params.items():
        default = defaults[key]
        if default is None or value is None:
            continue
        if isinstance(default, bool) or isinstance(value, bool):
            ok = isinstance(default, bool) and isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float))
        elif isinstance(default, (list, tuple)):
            ok = isinstance(value, (list, tuple))
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise InputError(
                f"{where}: parameter '{key}' must be {_type_name(default)} like its default {default!r}; "
                f"received {value!r} ({_type_name(value)})"
            )


def run_notebook(
    name: str | os.PathLike,
    parameters: dict[str, Any] | None = None,
    *,
    report_dir: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike | None = None,
    show_code: bool = False,
    kernel_name: str = "python3",
    progress: bool = True,
) -> NotebookResult:
    """Execute a notebook with papermill into its run folder and export the HTML report.

    Args:
        name: notebook name (``v21_uncertainty``) or path.
        parameters: values for the notebook's ``parameters`` cell; unknown names are an
            error (papermill would silently add them).
        report_dir: where the HTML goes (default ``<project>/reports``).
        runs_dir: where run folders live (default ``<project>/runs``); passed to the
            notebook as the parameter ``runs_dir`` when it has one.
        show_code: keep the code cells in the HTML.

    Returns:
        A :class:`NotebookResult`; ``ok`` is false when a cell raised: the report of the
        failed run (``NAME.failed.html``) then shows the error, and the last good
        ``NAME.html`` is kept.

    Raises:
        InputError: an unknown parameter, or a value whose type differs from its default's
            (an integer for ``n_events = 6000``: a number for a float, ``None`` always allowed).
    """

    nb_path = find_notebook(name)
    defaults = notebook_parameters(nb_path)
    params = dict(parameters or {})
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise InputError(
            f"{nb_path.name}: unknown parameter '{unknown[0]}'; valid parameters: {', '.join(defaults)}"
        )
    _check_parameter_types(nb_path.name, defaults, params)
    root = project_root()
    # the notebook runs with the project root as its working folder: a relative --runs-dir
    # means the caller's folder, so it is made absolute here (else outputs would split)
    runs = Path(runs_dir).resolve() if runs_dir is not None else root / "runs"
    if "runs_dir" in defaults and "runs_dir" not in params:
        params["runs_dir"] = str(runs)
    run_name = params.get("run_name", defaults.get("run_name", nb_path.stem))
    run_dir = runs / str(run_name)
    run_dir.mkdir(parents=True, exist_ok=True)
    executed = run_dir / nb_path.name
    html = Path(report_dir).resolve() / f"{nb_path.stem}.html" if report_dir else root / "reports" / f"{nb_path.stem}.html"
    t0 = time.perf_counter()
    error = _execute(nb_path, executed, params, kernel_name=kernel_name, cwd=root, progress=progress)
    seconds = time.perf_counter() - t0
    if error:  # the last good report stays; the failed one is written beside it
        html = html.with_name(f"{nb_path.stem}.failed.html")
    else:
        html.with_name(f"{nb_path.stem}.failed.html").unlink(missing_ok=True)
    export_html(executed, html, show_code=show_code)
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return NotebookResult(nb_path, executed, html, not error, error, seconds, summary)


def _execute(
    nb_path: Path, executed: Path, params: dict[str, Any], *, kernel_name: str, cwd: Path, progress: bool
) -> str:
    """Execute the notebook with papermill in a child process; the failing cell's error, or "".

    The child runs in a new session: a terminal's Ctrl-C and a batch system's SIGTERM reach
    this process only, which kills the child and everything below it, the kernel included
    (:func:`_kill_tree`), before the interrupt goes on. Figures render inline in the executed notebook
    even when the caller runs with a non-interactive MPLBACKEND (Agg in CI): the child and
    its kernel get the inline backend.

    Raises:
        InputError: papermill could not run the notebook at all (no such kernel, a broken
            notebook file), with its message.
    """
    with tempfile.TemporaryDirectory(prefix="edkeras-run-") as tmp:
        job, result = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job.write_text(json.dumps({"input": str(nb_path), "output": str(executed), "parameters": params,
                                   "kernel_name": kernel_name, "cwd": str(cwd), "progress": progress,
                                   "result": str(result)}, default=str))
        env = {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
        code = "import sys; from edkeras.reports.notebooks import _execute_child; sys.exit(_execute_child(sys.argv[1]))"
        proc = subprocess.Popen([sys.executable, "-c", code, str(job)], env=env, start_new_session=True)
        try:
            # short waits, not one blocking wait: a signal the kernel delivers to another thread of this
            # process does not interrupt a blocking waitpid, and its Python handler would then run only
            # when the child ends (a test saw SIGINT ignored for the whole of a 120 s cell)
            while True:
                try:
                    proc.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    continue
        except BaseException:  # Ctrl-C, SIGTERM (cli.Terminated): stop papermill and its kernel, then go on
            _kill_tree(proc.pid)
            proc.wait()
            if progress:
                print(file=sys.stderr)  # end papermill's progress bar's line
            raise
        try:
            outcome = json.loads(result.read_text())
        except (OSError, json.JSONDecodeError):
            raise InputError(f"{nb_path.name}: the papermill process ended with exit status {proc.returncode} "
                             "and no result (see the messages above)") from None
    if outcome.get("fatal"):
        raise InputError(f"{nb_path.name}: papermill could not run it: {outcome['fatal']}")
    return str(outcome.get("error", ""))


def _kill_tree(pid: int) -> None:
    """SIGKILL process ``pid``, its process group and every descendant (the kernel runs in a
    session of its own, so the group alone would miss it). Descendants are found in /proc;
    where there is none, the kernel still exits by itself once its parent is gone."""
    victims = [pid]
    proc_dir = Path("/proc")
    if proc_dir.is_dir():
        parents: dict[int, int] = {}
        for entry in proc_dir.iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        frontier = [pid]
        while frontier:
            children = [c for c, p in parents.items() if p in frontier and c not in victims]
            victims += children
            frontier = children
    for victim in reversed(victims):  # the leaves first: none lives on to notice its parent's death and speak
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(victim, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _execute_child(job_file: str) -> int:
    """The child of :func:`_execute`: run papermill, write ``{"error"}`` or ``{"fatal"}`` to the result file."""
    import papermill as pm

    job = json.loads(Path(job_file).read_text())
    # the kernel inherits this environment: no progress bar (tqdm reads TQDM_DISABLE) and no
    # TensorFlow start-up chatter reaches the report
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    outcome: dict[str, str] = {"error": ""}
    try:
        # capture_fd_output off: what libraries write to the kernel's file descriptors directly
        # (TensorFlow's C++ start-up lines) goes to this terminal, not into the report
        pm.execute_notebook(job["input"], job["output"], parameters=job["parameters"], kernel_name=job["kernel_name"],
                            language="python", cwd=job["cwd"], progress_bar=job["progress"], log_output=False,
                            extra_arguments=["--IPKernelApp.capture_fd_output=False"])
    except pm.PapermillExecutionError as e:
        outcome = {"error": f"{e.ename}: {e.evalue}"}
    except Exception as e:
        text = str(e).strip().splitlines()
        outcome = {"fatal": f"{type(e).__name__}: {text[0] if text else 'no detail'}"}
    Path(job["result"]).write_text(json.dumps(outcome))
    return 0


def save_summary(run_dir: str | os.PathLike, values: dict[str, Any]) -> Path:
    """Write a notebook's measured figures to ``<run_dir>/summary.json`` (atomically).

    numpy scalars and arrays become numbers and lists, NaN and inf become ``null``.
    """
    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)

    return write_text(d / "summary.json", json.dumps(jsonable(values), indent=2) + "\n")
