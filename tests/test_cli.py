"""The command-line entry point: one clear line and an exit status for every way a command ends."""

from __future__ import annotations

import pytest

from edkeras import cli


def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser.set_defaults(_run=interrupted)
    for action in parser._subparsers._group_actions:
        for sub in action.choices.values():
            sub.set_defaults(_run=interrupted)
    assert cli.main(["models"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "edkeras models: interrupted; what was complete is kept" and "Traceback" not in err


def test_input_errors_are_one_line_and_status_1(tmp_path, capsys):
    assert cli.main(["point", str(tmp_path / "missing.npz"), "--tables", str(tmp_path / "t.npz")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("edkeras point: error:") and "missing.npz" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("spec", ["pretrained:nope", "pretrained:"])
def test_unknown_shipped_tables_list_the_names(spec, tmp_path, capsys):
    import numpy as np

    from edkeras.reco.predictions import save_predictions

    burst = save_predictions(tmp_path / "x.npz", predictions=np.eye(3), energies=np.full(3, 20.0))
    assert cli.main(["point", str(burst), "--tables", spec]) == 1
    assert "available: compact_vmf, es_cc" in capsys.readouterr().err


def test_point_and_likelihood_say_what_lies_outside_the_energy_bins(tmp_path, capsys):
    import numpy as np

    from edkeras.core import vmf
    from edkeras.reco.predictions import save_predictions

    rng = np.random.default_rng(2)
    sn = np.array([0.0, 0.6, 0.8])
    n = 3000
    energies = rng.uniform(2.0, 60.0, n)
    energies[:5] = np.nan
    cal = save_predictions(tmp_path / "cal.npz", predictions=vmf.sample(sn, 5.0, n, rng), energies=energies,
                           nu_directions=np.tile(sn, (n, 1)), split="val")
    assert cli.main(["likelihood", str(cal), "--out", str(tmp_path / "t.npz")]) == 0
    err = capsys.readouterr().err
    below = int(np.sum(energies < 5.0))
    assert f"{5 + below} of {n} events not tabulated: 5 without a finite energy, {below} below 5 MeV" in err
    e_burst = np.full(200, 20.0)
    e_burst[:7] = 3.0
    burst = save_predictions(tmp_path / "b.npz", predictions=vmf.sample(sn, 5.0, 200, rng), energies=e_burst)
    assert cli.main(["point", str(burst), "--tables", str(tmp_path / "t.npz"), "--lattice", "768"]) == 0
    assert "7 of 200 events outside the tables' energy bins (7 below 5 MeV)" in capsys.readouterr().err
    e_burst[3] = np.nan
    burst = save_predictions(tmp_path / "b.npz", predictions=vmf.sample(sn, 5.0, 200, rng), energies=e_burst)
    assert cli.main(["point", str(burst), "--tables", str(tmp_path / "t.npz")]) == 1
    assert "event index 3 has a non-finite reconstructed energy" in capsys.readouterr().err


def test_a_damaged_compressed_chunk_is_one_line_everywhere(tmp_path, capsys):
    """Bytes of one gzip chunk overwritten on disk: doctor, train and evaluate name the file, no traceback."""
    import h5py
    import numpy as np
    from conftest import random_batch

    from edkeras.core.schema import save_json
    from edkeras.events.eventfile import write_events

    path = write_events(tmp_path / "events.h5", random_batch(96, shape=(128, 32), seed=3), source={})
    with h5py.File(path, "r") as h5:
        info = h5["images/X"].id.get_chunk_info(0)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 3)
        fh.write(np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8).tobytes())
    assert cli.main(["doctor", str(path)]) != 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out and "events.h5" in out.err + out.out
    cfg = save_json({"name": "damaged", "data": {"files": [str(path)]},
                     "model": {"options": {"filters": 4, "depth": 1, "dense_units": 8}},
                     "training": {"epochs": 1, "batch_size": 16}}, tmp_path / "c.json")
    assert cli.main(["train", str(cfg), "--runs", str(tmp_path / "runs"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edkeras train: error:") and "events.h5" in err and "damaged" in err
    assert cli.main(["evaluate", "pretrained:compact_vmf", "--data", str(path)]) == 1
    err = capsys.readouterr().err
    assert "events.h5" in err and "damaged" in err and len(err.strip().splitlines()) == 1


def test_out_is_checked_before_any_work(tmp_path, capsys):
    folder = tmp_path / "adir"
    folder.mkdir()
    assert cli.main(["simulate", "--events", "5", "--out", str(folder), "--force"]) == 1
    assert "is a folder; give the file to write" in capsys.readouterr().err
    (tmp_path / "e.h5").write_text("x")
    assert cli.main(["simulate", "--events", "5", "--out", str(tmp_path / "e.h5")]) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert (tmp_path / "e.h5").read_text() == "x"  # nothing lost


def test_point_weighs_es_and_cc_tables_by_the_es_probability_the_predictions_carry(tmp_path, capsys):
    """What the es_cc model card promises: evaluate --classifier, then point with ES/CC tables, no extra flag."""
    import json

    import numpy as np

    from edkeras.core import vmf
    from edkeras.reco.predictions import save_predictions

    rng = np.random.default_rng(4)
    sn = np.array([0.0, 0.6, 0.8])
    n = 4000
    inter = (rng.random(n) < 0.5).astype(np.int8)
    dirs = np.where(inter[:, None] == 1, vmf.sample(sn, 8.0, n, rng), vmf.sample(sn, 0.01, n, rng))
    cal = save_predictions(tmp_path / "cal.npz", predictions=dirs, energies=rng.uniform(6.0, 40.0, n),
                           nu_directions=np.tile(sn, (n, 1)), interaction=inter, split="val")
    assert cli.main(["likelihood", str(cal), "--out", str(tmp_path / "t.npz")]) == 0
    m = 300
    b_inter = (rng.random(m) < 0.1).astype(np.int8)
    b_dirs = np.where(b_inter[:, None] == 1, vmf.sample(sn, 8.0, m, rng), vmf.sample(sn, 0.01, m, rng))
    common = {"predictions": b_dirs, "energies": np.full(m, 20.0), "interaction": b_inter}
    labelled = save_predictions(tmp_path / "b.npz", es_probability=np.where(b_inter == 1, 0.9, 0.1), **common)
    capsys.readouterr()
    assert cli.main(["point", str(labelled), "--tables", str(tmp_path / "t.npz"), "--lattice", "768", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tables"] == "ES and CC sub-tables" and "classifier ES probability" in out["mode"]
    without = save_predictions(tmp_path / "c.npz", **common)  # no ES probability: one table, as before
    assert cli.main(["point", str(without), "--tables", str(tmp_path / "t.npz"), "--lattice", "768", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "single table"
    unlabelled = save_predictions(tmp_path / "d.npz", predictions=b_dirs, energies=np.full(m, 20.0),
                                  es_probability=np.full(m, 0.5))
    assert cli.main(["point", str(unlabelled), "--tables", str(tmp_path / "t.npz")]) == 1
    assert "--es-fraction is needed" in capsys.readouterr().err
