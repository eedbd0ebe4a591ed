"""One way to write files: a temporary name, then a rename; temporaries of dead writers are removed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from edkeras.core.files import atomic_path, remove_stale_temporaries, temporary_name, write_text


def test_a_failed_write_leaves_the_old_file(tmp_path):
    target = write_text(tmp_path / "a.json", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "events.h5"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    mine = temporary_name(target)
    stale = mine.with_name(mine.name.rsplit("-", 1)[0] + f"-{dead_pid}")
    stale.write_text("left by a killed simulate")
    live = mine.with_name(mine.name.rsplit("-", 1)[0] + f"-{os.getppid()}")  # a live process
    live.write_text("being written")
    other_host = tmp_path / f".events.h5.tmp-otherhost-{dead_pid}"
    other_host.write_text("another node's")
    assert remove_stale_temporaries(target) == [stale]
    assert live.exists() and other_host.exists() and not stale.exists()
    write_text(target, "x")  # any write cleans up too
    assert target.read_text() == "x"


def test_a_killed_simulate_leaves_nothing_that_blocks_or_lingers(tmp_path):
    """simulate killed mid-file: its temporary stays (the process died), the next simulate removes it."""
    from edkeras.cli import main

    out = tmp_path / "sim.h5"
    code = (
        "import os, signal\n"
        "from edkeras.events.eventfile import EventFileWriter\n"
        f"w = EventFileWriter({str(out)!r}, image_shape=(128, 32), source={{}})\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert not out.exists() and any(p.name.startswith(".sim.h5.tmp-") for p in tmp_path.iterdir())
    assert main(["simulate", "--events", "20", "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.h5"]
