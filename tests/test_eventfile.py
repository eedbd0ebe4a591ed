from __future__ import annotations

import h5py
import numpy as np
import pytest
from conftest import random_batch

from edkeras.events.eventfile import EventBatch, EventFileError, EventFileWriter, open_events, write_events


def test_roundtrip_in_chunks(tmp_path):
    path = tmp_path / "ev.h5"
    b1, b2 = random_batch(10, seed=1), random_batch(7, seed=2, first_id=100)
    with EventFileWriter(path, source={"generator": "t", "seed": 3}) as w:
        w.append(b1)
        w.append(b2)
    ev = open_events(path)
    assert len(ev) == 17
    assert ev.image_shape == (128, 32)
    assert ev.source == {"generator": "t", "seed": 3}
    got = ev.read(slice(10, 17))
    np.testing.assert_array_equal(got.X, b2.X.astype(np.float32))
    np.testing.assert_allclose(got.direction, b2.direction, rtol=1e-6)
    np.testing.assert_array_equal(got.event_id, b2.event_id)
    # unsorted fancy indices come back in the order asked
    got = ev.read([12, 3, 5])
    np.testing.assert_array_equal(got.event_id, [102, 3, 5])
    assert ev.has_truth()


def test_unknown_truth_is_nan(tmp_path):
    b = random_batch(4)
    bare = EventBatch(U=b.U, V=b.V, X=b.X, event_id=b.event_id)
    ev = open_events(write_events(tmp_path / "bare.h5", bare))
    r = ev.read()
    assert np.isnan(r.direction).all() and (r.interaction == -1).all()
    assert not ev.has_truth()


def test_crash_leaves_no_file(tmp_path):
    path = tmp_path / "ev.h5"
    with pytest.raises(RuntimeError), EventFileWriter(path) as w:
        w.append(random_batch(3))
        raise RuntimeError("simulated crash")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_file_not_overwritten(small_event_file):
    with pytest.raises(FileExistsError):
        EventFileWriter(small_event_file)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: setattr(b, "U", b.U[:, :, :16]), "images/U must have shape"),
        (lambda b: b.X.__setitem__((2, 5, 5), np.nan), "event 2 has NaN"),
        (lambda b: b.V.__setitem__((1, 5, 5), -3.0), "event 1 has negative pixels on plane V"),
        (lambda b: b.direction.__setitem__(3, 0.0), "event 3 has a non-unit truth direction"),
        (lambda b: b.interaction.__setitem__(0, 7), "interaction 7"),
        (lambda b: b.event_id.__setitem__(1, 0), "duplicate event_id 0"),
    ],
)
def test_bad_batches_are_named(tmp_path, change, message):
    b = random_batch(5)
    change(b)
    with pytest.raises(EventFileError, match=message):
        write_events(tmp_path / "bad.h5", b, image_shape=(128, 32))
    assert not (tmp_path / "bad.h5").exists()


def test_open_rejects_broken_files(tmp_path, small_event_file):
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(small_event_file.read_bytes()[:2000])
    with pytest.raises(EventFileError, match="trunc.h5: not a readable HDF5"):
        open_events(trunc)
    with h5py.File(small_event_file, "a") as f:
        del f["truth/energy"]
    with pytest.raises(EventFileError, match="dataset /truth/energy is missing"):
        open_events(small_event_file)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(EventFileError, match="expected 'edkeras-events'"):
        open_events(other)
    with pytest.raises(EventFileError, match="no such event file"):
        open_events(tmp_path / "missing.h5")


def test_length_mismatch_detected(small_event_file):
    with h5py.File(small_event_file, "a") as f:
        f["images/V"].resize(30, axis=0)
    with pytest.raises(EventFileError, match="holds 30 events"):
        open_events(small_event_file)
