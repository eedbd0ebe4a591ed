"""The ``edkeras`` command line (docs/cli.md).

Each sub-command lives in its own module under :mod:`edkeras.commands` with three
names: ``HELP`` (one line), ``configure(parser)`` and ``run(args) -> int``. Command
modules import heavy libraries (TensorFlow, Keras) inside ``run`` only, so that
``edkeras --help`` is fast.

Bad input (:class:`edkeras.core.errors.InputError`, a missing file, an existing output
without ``--force``) is reported as one line ``edkeras <command>: error: ...`` with exit
status 1; nothing else is caught.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

from edkeras import __version__
from edkeras.core.errors import InputError

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: dict[str, str] = {
    "simulate": "edkeras.commands.simulate",
    "convert-npz": "edkeras.commands.convert_npz",
    "ingest-tpstream": "edkeras.commands.ingest_tpstream",
    "doctor": "edkeras.commands.doctor",
    "train": "edkeras.commands.train",
    "tune": "edkeras.commands.tune",
    "evaluate": "edkeras.commands.evaluate",
    "likelihood": "edkeras.commands.likelihood",
    "point": "edkeras.commands.point",
    "alert": "edkeras.commands.alert",
    "run": "edkeras.commands.run_notebook",
    "leaderboard": "edkeras.commands.leaderboard",
    "models": "edkeras.commands.models",
    "compare": "edkeras.commands.compare",
}


def _available() -> dict[str, object]:
    mods = {}
    for name, modname in COMMANDS.items():
        try:
            mods[name] = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name != modname:
                raise
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edkeras",
        description="Electron-direction reconstruction for DUNE supernova pointing (Keras 3).",
    )
    parser.add_argument("--version", action="version", version=f"edkeras {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, mod in _available().items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.configure(p)
        p.set_defaults(_run=mod.run)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch system's kill, ``kill PID``), raised where the program is, like Ctrl-C."""


def _stop_on_sigterm() -> Any:
    """Make SIGTERM raise :class:`Terminated` in the main thread; return the previous handler."""
    import signal
    import threading

    def handler(signum: int, frame: Any) -> None:
        raise Terminated

    if threading.current_thread() is threading.main_thread():
        return signal.signal(signal.SIGTERM, handler)
    return None


def _restore_sigterm(previous: Any) -> None:
    import signal
    import threading

    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)


def _check_out(args: argparse.Namespace) -> None:
    """Every command's ``--out FILE``, checked before any work: not a folder, not an existing
    file unless the command has ``--force`` and it was given."""
    from pathlib import Path

    out = getattr(args, "out", None)
    if out is None:
        return
    path = Path(out)
    if path.is_dir():
        raise InputError(f"--out {path}: is a folder; give the file to write, e.g. {path / 'events.h5'}")
    if path.exists() and hasattr(args, "force") and not args.force:
        raise FileExistsError(f"--out {path}: exists; pass --force to replace it")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = _stop_on_sigterm()
    try:
        _check_out(args)
        return int(args._run(args) or 0)
    except (InputError, FileExistsError, FileNotFoundError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"edkeras {args.command}: error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        # what was written is whole (files are written to a temporary name, then renamed); an
        # interrupted training run resumes from its last epoch when the same command is run again
        how = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        print(f"edkeras {args.command}: {how}; what was complete is kept", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    finally:
        # a SIGTERM after the command's end (while the interpreter shuts down, TensorFlow's
        # threads included) must not raise where nothing can catch it: the default again
        _restore_sigterm(previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
