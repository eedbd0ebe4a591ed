"""Mirror-averaged predictions (``predict_arrays(..., mirror_average=True)``, ``evaluate --mirror-average``)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from edkeras.core.errors import InputError
from edkeras.reco.augment import MIRRORS, mirror_event
from edkeras.reco.evaluation import MIRROR_TAG, predict_arrays

SHAPE = (16, 8)


class Batches(keras.utils.PyDataset):
    """An evaluation dataset of fixed batches: ``(inputs,)`` per batch."""

    def __init__(self, batches: list[dict[str, np.ndarray]]):
        super().__init__()
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[dict[str, np.ndarray]]:
        return (self.batches[i],)


def _events(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        f"view_{p}": (rng.exponential(40, (n, *SHAPE)) * (rng.random((n, *SHAPE)) < 0.3)).astype(np.float32)
        for p in "uvx"
    }


@pytest.fixture(scope="module")
def vmf_model():
    from edkeras.reco.models import build_model

    keras.utils.set_random_seed(3)
    return build_model("compact", input_shape=SHAPE, head="vmf", filters=8)


def test_mirror_averaged_direction_is_exactly_equivariant_where_the_network_is_not(vmf_model):
    batches = [_events(6, 0), _events(5, 1)]
    plain = predict_arrays(vmf_model, Batches(batches), "vmf", mirror_average=False)
    base = predict_arrays(vmf_model, Batches(batches), "vmf", mirror_average=True)
    assert np.allclose(np.linalg.norm(base["direction"], axis=1), 1.0)
    worst_plain = 0.0
    for flips in MIRRORS[1:]:
        sign = np.array([-1.0 if f else 1.0 for f in flips])
        mirrored = Batches([mirror_event(b, np.zeros(3), *flips)[0] for b in batches])
        got = predict_arrays(vmf_model, mirrored, "vmf", mirror_average=True)
        np.testing.assert_allclose(got["direction"], base["direction"] * sign, atol=2e-5)
        np.testing.assert_allclose(got["kappa"], base["kappa"], rtol=1e-4)
        raw = predict_arrays(vmf_model, mirrored, "vmf", mirror_average=False)
        worst_plain = max(worst_plain, float(np.abs(raw["direction"] - plain["direction"] * sign).max()))
    assert worst_plain > 1e-2  # an untrained network is not equivariant: the average is what makes it so


def test_an_empty_event_keeps_its_plain_prediction(vmf_model):
    batch = _events(3, 2)
    for p in batch:
        batch[p][1] = 0.0  # symmetric under every mirror: the eight directions cancel
    plain = predict_arrays(vmf_model, Batches([batch]), "vmf")
    got = predict_arrays(vmf_model, Batches([batch]), "vmf", mirror_average=True)
    np.testing.assert_allclose(got["direction"][1], plain["direction"][1], atol=1e-6)
    assert np.isfinite(got["direction"]).all()


def test_heads_without_a_direction_to_average_are_refused():
    with pytest.raises(InputError, match="vmf or direction head; this model's head is 'axial'"):
        predict_arrays(object(), Batches([_events(2, 0)]), "axial", mirror_average=True)
    assert MIRROR_TAG == "+mirror8"


def test_evaluate_mirror_average_marks_the_predictions_and_the_shipped_tables_refuse_them(tmp_path, capsys):
    from edkeras.cli import main as cli_main
    from edkeras.events.eventfile import write_events
    from edkeras.events.sim import SimConfig, simulate
    from edkeras.reco.predictions import load_predictions

    events = write_events(tmp_path / "es.h5", simulate(60, seed=5, config=SimConfig(channel="es")))
    assert cli_main(["evaluate", "pretrained:compact_vmf", "--data", str(events), "--out", str(tmp_path / "p.npz")]) == 0
    assert cli_main(["evaluate", "pretrained:compact_vmf", "--data", str(events), "--mirror-average",
                     "--out", str(tmp_path / "m.npz"), "--json"]) == 0
    capsys.readouterr()
    plain, averaged = load_predictions(tmp_path / "p.npz"), load_predictions(tmp_path / "m.npz")
    assert averaged.model == plain.model + MIRROR_TAG
    cos = np.sum(plain.predictions[:, :3] * averaged.predictions[:, :3], axis=1)
    assert 0.5 < np.median(cos) < 1.0  # the same events, nearly the same directions, not identical ones
    assert cli_main(["point", str(tmp_path / "m.npz"), "--tables", "pretrained:compact_vmf", "--lattice", "768"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and MIRROR_TAG in err


def test_the_pointing_study_builds_its_tables_and_bursts_from_mirror_averaged_directions(tmp_path):
    """notebooks/pointing.ipynb with ``mirror_average``: tables and pool carry '+mirror8', a run needs calibration events."""
    from edkeras.studies import analysis as pa
    from edkeras.studies import pointing_study as ps

    src = pa.source_run(tmp_path, ["pretrained:compact_vmf"], fallback=None)
    size = ps.study_size(True, k=2, per_direction=100, bursts=4, per_size=3, es=20, cc=60, sizes=[10],
                         calibration=300, degree=1, acc=0, cal_dirs=0, symmetric=False, network_tables="auto")
    tables = ps.pointing_tables(src, tmp_path, size, seed=0, pool_es_fraction=0.5, table_method="kde", kappa_bins=0,
                                smoke=True, mirror_average=True)
    assert tables.mirror_average and "eight mirror images" in tables.describe(src, size, "kde")
    assert tables.tables["network"].model.endswith(MIRROR_TAG)
    pool = ps.simulate_pool(src, tmp_path, np.eye(3)[:2], 60, seed=5, pool_es_fraction=0.5, classifier="",
                            mirror_average=True)
    assert pool.sample("network").model == tables.tables["network"].model and len(pool.truth) == 120
    run = pa.SourceRun(tmp_path / "a_run", None, False)  # a run's validation predictions are plain: not used
    with pytest.raises(InputError, match="mirror averaging needs calibration_events > 0"):
        ps.pointing_tables(run, tmp_path, {**size, "calibration": 0}, seed=0, pool_es_fraction=0.5,
                           table_method="kde", kappa_bins=0, smoke=True, mirror_average=True)
