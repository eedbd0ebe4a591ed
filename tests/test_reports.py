"""Notebook execution and HTML export (papermill + nbconvert) on tiny notebooks."""

from __future__ import annotations

import json

import nbformat
import pytest

from edkeras.commands.run_notebook import parse_value
from edkeras.core.errors import InputError
from edkeras.reports.notebooks import notebook_parameters, run_notebook


def _notebook(path, body: str):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("run_name = 'tiny'\nn = 3\nfail = False\nruns_dir = 'runs'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny"), params, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, str(path))
    return path


BODY = """
import os
import time
os.write(2, b"I0000 a C++ library's log line\\n")  # written to the file descriptor, as TensorFlow's start-up does
time.sleep(0.5)  # ipykernel forwards what it captures from the descriptor in a thread of its own
import matplotlib.pyplot as plt
from edkeras.reports.notebooks import save_summary
plt.plot(range(n)); plt.show()
assert not fail, "asked to fail"
save_summary(f"{runs_dir}/{run_name}", {"n": n, "squares": [i * i for i in range(n)]})
"""


def test_parameters_are_read(tmp_path):
    nb = _notebook(tmp_path / "tiny.ipynb", BODY)
    assert notebook_parameters(nb) == {"run_name": "tiny", "n": 3, "fail": False, "runs_dir": "runs"}


def test_run_writes_executed_copy_html_and_summary(tmp_path, monkeypatch):
    # ipykernel captures its file descriptors' output into the notebook except under pytest
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    nb = _notebook(tmp_path / "tiny.ipynb", BODY)
    res = run_notebook(nb, {"n": 4}, report_dir=tmp_path / "reports", runs_dir=tmp_path / "runs", progress=False)
    assert res.ok, res.error
    assert res.executed == tmp_path / "runs" / "tiny" / "tiny.ipynb"
    assert res.summary == {"n": 4, "squares": [0, 1, 4, 9]}
    html = res.html.read_text()
    assert "<img" in html
    assert "save_summary" not in html  # code hidden by default
    assert "Traceback" not in html
    assert "I0000" not in html  # C++ log lines do not reach the report


def test_failing_notebook_still_reports(tmp_path):
    nb = _notebook(tmp_path / "tiny.ipynb", BODY)
    res = run_notebook(nb, {"fail": True}, report_dir=tmp_path / "reports", runs_dir=tmp_path / "runs", progress=False)
    assert not res.ok
    assert "asked to fail" in res.error
    assert "asked to fail" in res.html.read_text()
    assert res.summary is None


def test_unknown_parameter_rejected(tmp_path):
    nb = _notebook(tmp_path / "tiny.ipynb", BODY)
    with pytest.raises(InputError, match="unknown parameter 'epochz'; valid parameters: run_name, n, fail"):
        run_notebook(nb, {"epochz": 3}, report_dir=tmp_path, runs_dir=tmp_path)


def test_cli_values():
    assert parse_value("3") == 3
    assert parse_value("True") is True
    assert parse_value("0.5") == 0.5
    assert parse_value("synthetic") == "synthetic"
    assert parse_value("[1, 2]") == [1, 2]
    assert json.dumps(parse_value("None")) == "null"


def test_summary_is_strict_json(tmp_path):
    import math
    from pathlib import Path

    import numpy as np

    from edkeras.reports.notebooks import save_summary

    path = save_summary(tmp_path / "run", {"a": math.nan, "b": np.float32(1.5), "c": np.array([1, 2]),
                                           "d": (math.inf, 2), "e": Path("x")})
    out = json.loads(path.read_text())
    assert out == {"a": None, "b": 1.5, "c": [1, 2], "d": [None, 2], "e": "x"}


def test_parameter_types_are_checked_before_running(tmp_path):
    nb = _notebook(tmp_path / "tiny.ipynb", BODY)
    with pytest.raises(InputError, match=r"parameter 'n' must be an integer like its default 3; received 'abc' \(a string\)"):
        run_notebook(nb, {"n": "abc"}, report_dir=tmp_path, runs_dir=tmp_path)
    with pytest.raises(InputError, match="parameter 'fail' must be True or False"):
        run_notebook(nb, {"fail": 1}, report_dir=tmp_path, runs_dir=tmp_path)
    assert not (tmp_path / "tiny").exists()  # nothing was created


def test_a_failed_run_keeps_the_last_good_report(tmp_path):
    nb = _notebook(tmp_path / "tiny.ipynb", BODY)
    good = run_notebook(nb, {"n": 2}, report_dir=tmp_path / "reports", runs_dir=tmp_path / "runs", progress=False)
    assert good.ok and good.html.name == "tiny.html"
    before = good.html.read_text()
    bad = run_notebook(nb, {"fail": True}, report_dir=tmp_path / "reports", runs_dir=tmp_path / "runs", progress=False)
    assert not bad.ok and bad.html.name == "tiny.failed.html"
    assert good.html.read_text() == before and "asked to fail" in bad.html.read_text()
    again = run_notebook(nb, {"n": 2}, report_dir=tmp_path / "reports", runs_dir=tmp_path / "runs", progress=False)
    assert again.ok and not bad.html.exists()  # a good run clears the failed report


def test_relative_runs_dir_is_the_callers_folder(tmp_path, monkeypatch):
    nb = _notebook(tmp_path / "tiny.ipynb", BODY)
    monkeypatch.chdir(tmp_path)
    res = run_notebook(nb, {"n": 2}, report_dir="reports", runs_dir="myruns", progress=False)
    assert res.ok, res.error
    assert (tmp_path / "myruns" / "tiny" / "summary.json").exists()  # summary and executed copy together
    assert res.executed == tmp_path / "myruns" / "tiny" / "tiny.ipynb" and res.html == tmp_path / "reports" / "tiny.html"


@pytest.mark.parametrize(("sig", "status", "word"), [("SIGTERM", 143, "terminated (SIGTERM)"), ("SIGINT", 130, "interrupted")])
def test_a_signal_during_a_run_stops_papermill_and_its_kernel_with_one_line(tmp_path, sig, status, word):
    """A batch system's SIGTERM (or Ctrl-C) while a cell runs: one line, no traceback of the kernel
    torn down under papermill, the kernel gone, and the last good report kept."""
    import signal
    import subprocess
    import sys
    import time

    marker = tmp_path / "kernel_pid"
    nb = _notebook(tmp_path / "tiny.ipynb", f"import os, time\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\n"
                   "time.sleep(120)\n")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "tiny.html").write_text("the last good report")
    cmd = [sys.executable, "-m", "edkeras.cli", "run", str(nb), "--report-dir", str(reports),
           "--runs-dir", str(tmp_path / "runs")]
    # Ctrl-C as at a terminal: a pytest started in the background by a non-interactive shell
    # ignores SIGINT, and a child would inherit that (and then sleep out its cell)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not (marker.exists() and marker.read_text()):
        time.sleep(0.05)
    assert marker.exists(), "the kernel never started"
    kernel = int(marker.read_text())
    proc.send_signal(getattr(signal, sig))
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        from edkeras.reports.notebooks import _kill_tree

        _kill_tree(proc.pid)
        proc.communicate()
        pytest.fail(f"edkeras run did not stop within 60 s of {sig}")
    assert proc.returncode == status, err[-2000:]
    assert "Traceback" not in err and "Error" not in err, err[-2000:]
    assert err.strip().splitlines()[-1] == f"edkeras run: {word}; what was complete is kept"
    deadline = time.time() + 10  # the kernel follows its parent (ipykernel polls it every second)
    while time.time() < deadline:
        try:
            with open(f"/proc/{kernel}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":  # exited, not yet reaped by its new parent
                    break
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"kernel process {kernel} still runs after the run was stopped")
    assert (reports / "tiny.html").read_text() == "the last good report"
