"""The streaming Keras dataset: every event once per epoch, seeded shuffling, right targets,
augmentation on training batches only, bounded memory, Keras epoch bookkeeping; the default data."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import random_batch

from edkeras.core.errors import InputError
from edkeras.events.eventfile import write_events
from edkeras.reco.augment import AugmentConfig
from edkeras.reco.dataset import EpochSync, EventDataset
from edkeras.reco.event_index import index_events

SHAPE = (16, 8)


@pytest.fixture(scope="module")
def two_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds")
    a = random_batch(150, shape=SHAPE, seed=1)
    b = random_batch(90, shape=SHAPE, seed=2, first_id=1000)
    return write_events(d / "a.h5", a, source={}), write_events(d / "b.h5", b, source={}), a, b


def _truth(batches):
    """Per-position arrays of the concatenated files (index order)."""
    return {k: np.concatenate([getattr(b, k) for b in batches]) for k in ("U", "V", "X", "direction", "reco_energy", "event_id")}


def test_index_and_field(two_files):
    fa, fb, a, b = two_files
    idx = index_events([fa, fb])
    assert len(idx) == 240 and idx.image_shape == SHAPE
    assert np.array_equal(idx.field("event_id"), np.r_[a.event_id, b.event_id])
    sub = idx.select([239, 0, 150])
    assert sub.field("event_id").tolist() == [1089, 0, 1000]
    assert sub.file_names.tolist() == ["b.h5", "a.h5", "b.h5"]


def test_index_rejects_mixed_shapes(two_files, tmp_path):
    fa = two_files[0]
    other = write_events(tmp_path / "c.h5", random_batch(4, shape=(16, 4)), source={})
    with pytest.raises(InputError, match=r"c.h5: image shape \(16, 4\) differs from .*a.h5 \(16, 8\)"):
        index_events([fa, other])
    with pytest.raises(InputError, match="no such event file"):
        index_events([tmp_path / "missing.h5"])


def test_training_epochs_are_seeded_permutations_with_the_right_content(two_files):
    fa, fb, a, b = two_files
    truth = _truth([a, b])
    idx = index_events([fa, fb])
    ds = EventDataset(idx, 32, training=True, seed=7, shuffle_buffer=64)
    assert ds.steps_per_epoch == 240 // 32 and ds.num_batches is None  # repeats; last partial batch dropped
    o0, o1 = ds.epoch_order(0), ds.epoch_order(1)
    assert np.array_equal(np.sort(o0), np.arange(240)) and np.array_equal(np.sort(o1), np.arange(240))
    assert not np.array_equal(o0, o1)
    assert np.array_equal(EventDataset(idx, 32, training=True, seed=7, shuffle_buffer=64).epoch_order(1), o1)
    assert not np.array_equal(EventDataset(idx, 32, training=True, seed=8, shuffle_buffer=64).epoch_order(1), o1)
    # events are shuffled across the whole file, not only within a window
    assert np.corrcoef(np.arange(240), o0)[0, 1] < 0.9
    for i in (0, 3, ds.steps_per_epoch + 2):  # global index: epoch i // steps, batch i % steps
        epoch, step = divmod(i, ds.steps_per_epoch)
        pos = ds.epoch_order(epoch)[step * 32 : (step + 1) * 32]
        x, y = ds[i]
        assert set(x) == {"view_u", "view_v", "view_x"} and set(y) == {"direction"}
        assert np.array_equal(x["view_u"], truth["U"][pos]) and np.array_equal(x["view_x"], truth["X"][pos])
        assert np.allclose(y["direction"], truth["direction"][pos])
        assert x["view_v"].dtype == np.float32 and y["direction"].shape == (32, 3)
    assert len(ds._windows) <= 2  # memory: at most two windows of about shuffle_buffer events


def test_resume_offset_and_cache_give_the_same_batches(two_files):
    fa, fb, _, _ = two_files
    idx = index_events([fa, fb])
    ds = EventDataset(idx, 32, training=True, seed=3, shuffle_buffer=64)
    cached = EventDataset(idx, 32, training=True, seed=3, shuffle_buffer=64, cache=True)
    late = EventDataset(idx, 32, training=True, seed=3, shuffle_buffer=64)
    late.start_epoch = 2  # what EpochSync sets when fit resumes at epoch 2
    steps = ds.steps_per_epoch
    for i in (0, 2 * steps + 1):
        x1, _ = ds[i]
        x2, _ = cached[i]
        assert np.array_equal(x1["view_v"], x2["view_v"])
    assert np.array_equal(late[1][0]["view_u"], ds[2 * steps + 1][0]["view_u"])


@pytest.mark.parametrize("compression", ["gzip", "lzf", None])
def test_parallel_chunk_decoding_matches_h5py(tmp_path, compression):
    b = random_batch(150, shape=SHAPE, seed=4)
    f = write_events(tmp_path / "c.h5", b, source={}, compression=compression)
    idx = index_events([f]).select(np.arange(3, 150, 2))
    threaded = EventDataset(idx, 25, readers=2, shuffle_buffer=40)
    serial = EventDataset(idx, 25, readers=0, shuffle_buffer=40)
    cached = EventDataset(idx, 25, readers=2, cache=True)
    for i in range(len(serial)):
        x0, x1, x2 = serial[i][0], threaded[i][0], cached[i][0]
        for k in ("view_u", "view_v", "view_x"):
            assert np.array_equal(x0[k], b.images[k[-1].upper()][np.arange(3, 150, 2)][i * 25 : (i + 1) * 25])
            assert np.array_equal(x1[k], x0[k]) and np.array_equal(x2[k], x0[k])
    threaded.close()
    assert np.array_equal(threaded[0][0]["view_u"], serial[0][0]["view_u"])  # reopens after close


def test_evaluation_pass_in_index_order_with_energy_and_multitask_targets(two_files):
    fa, fb, a, b = two_files
    truth = _truth([a, b])
    idx = index_events([fa, fb]).select(np.arange(5, 240, 3))
    pos = np.arange(5, 240, 3)
    ds = EventDataset(idx, 16, head="multitask", energy_input=True, augment=AugmentConfig(mirror=True))
    assert len(ds) == ds.num_batches == -(-pos.size // 16)
    got = [ds[i] for i in range(len(ds))]
    u = np.concatenate([x["view_u"] for x, _ in got])
    assert np.array_equal(u, truth["U"][pos])  # every event once, in order, never augmented
    e = np.concatenate([x["energy"] for x, _ in got])
    assert e.shape == (pos.size, 1) and np.allclose(e[:, 0], truth["reco_energy"][pos])
    y0 = got[0][1]
    assert set(y0) == {"direction", "energy", "interaction"} and y0["interaction"].shape == (16, 1)
    assert np.allclose(np.concatenate([y["direction"] for _, y in got]), truth["direction"][pos])
    assert np.array_equal(ds.labels("event_id"), truth["event_id"][pos])
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_energy_in_direction_target_for_focal_weights(two_files):
    fa, _, a, _ = two_files
    ds = EventDataset(index_events([fa]), 8, energy_in_target=True)
    _, y = ds[1]
    assert y["direction"].shape == (8, 4)
    assert np.allclose(y["direction"][:, :3], a.direction[8:16]) and np.allclose(y["direction"][:, 3], a.energy[8:16])


def test_augmentation_only_on_training_batches_and_counted(two_files):
    fa, _, a, _ = two_files
    idx = index_events([fa])
    ds = EventDataset(idx, 50, training=True, seed=1, augment=AugmentConfig(mirror=True, mirror_axes=("x",)))
    x, y = ds[0]
    pos = ds.epoch_order(0)[:50]
    flipped = y["direction"][:, 0] * a.direction[pos, 0] < 0
    assert 5 < flipped.sum() < 45  # about half the events mirrored in x
    assert np.allclose(y["direction"][:, 1:], a.direction[pos, 1:])
    # x-mirror flips the rows of every plane, nothing else
    assert np.array_equal(x["view_u"][flipped], a.U[pos][flipped][:, ::-1, :])
    assert np.array_equal(x["view_u"][~flipped], a.U[pos][~flipped])
    assert ds.augmented_events(0) == 50 and ds.augmented_events(1) == 0
    again = EventDataset(idx, 50, training=True, seed=1, augment=AugmentConfig(mirror=True, mirror_axes=("x",)))
    assert np.array_equal(again[0][1]["direction"], y["direction"])  # seeded per (seed, epoch, batch)
    off = EventDataset(idx, 50, training=True, seed=1, augment=AugmentConfig())
    assert np.allclose(off[0][1]["direction"], a.direction[pos]) and off.augmented_events(0) == 0


def test_missing_truth_and_energy_are_named(tmp_path):
    b = random_batch(10, shape=SHAPE)
    b.direction[3] = np.nan
    b.reco_energy[4] = np.nan
    f = write_events(tmp_path / "notruth.h5", b, source={})
    idx = index_events([f])
    with pytest.raises(InputError, match=r"notruth.h5 event 3: no true direction \(1 events without truth\)"):
        EventDataset(idx, 4)
    with pytest.raises(InputError, match=r"notruth.h5 event 4: energy_input needs a reconstructed energy > 0"):
        EventDataset(idx, 4, targets=False, energy_input=True)
    x = EventDataset(idx, 4, targets=False)[2]
    assert len(x) == 1 and x[0]["view_u"].shape == (2, *SHAPE)


def test_keras_fit_follows_epochs_and_resume(two_files):
    import keras

    fa, fb, _, _ = two_files

    class Recording(EventDataset):
        def __getitem__(self, i):
            self.served.append(self.locate(i))
            return super().__getitem__(i)

    ds = Recording(index_events([fa, fb]), 40, training=True, seed=2)
    ds.served = []
    inputs = {k: keras.Input(SHAPE, name=k) for k in ("view_u", "view_v", "view_x")}
    flat = keras.layers.Concatenate()([keras.layers.Flatten()(v) for v in inputs.values()])
    model = keras.Model(inputs, {"direction": keras.layers.Dense(3, name="direction")(flat)})
    model.compile("sgd", loss={"direction": "mse"})
    # a fit that starts (as after a resume) at epoch 1 must serve epoch 1's batches, then epoch 2's,
    # although Keras numbers the batches it asks for from 0 and prefetches across epoch ends
    model.fit(ds, steps_per_epoch=ds.steps_per_epoch, epochs=3, initial_epoch=1, shuffle=False, verbose=0,
              callbacks=[EpochSync(ds)])
    steps = ds.steps_per_epoch
    k = ds.served.index((1, 0))
    assert k <= 2  # before it only Keras's look at the batch shapes (start_epoch not yet set)
    trained = ds.served[k:]
    assert trained[: 2 * steps] == [(1, s) for s in range(steps)] + [(2, s) for s in range(steps)]


def test_default_dataset_generated_once_and_safe_concurrently(tmp_path, monkeypatch):
    import edkeras.events.default as default
    from edkeras.events.default import default_dataset
    from edkeras.events.eventfile import open_events

    monkeypatch.setenv("EDKERAS_DATA_DIR", str(tmp_path))
    calls = []
    real = default.simulate_to_file

    def counting(*args, **kwargs):
        calls.append(args)
        kwargs["progress"] = False
        return real(*args, **kwargs)

    monkeypatch.setattr(default, "simulate_to_file", counting)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(default_dataset(n_events=6, seed=11))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(results)) == 1
    path = results[0]
    from edkeras.events.default import simulator_tag

    assert path == tmp_path / f"default_n6_seed11_sim{simulator_tag()}.h5"
    mtime = path.stat().st_mtime_ns
    assert default_dataset(n_events=6, seed=11) == path and path.stat().st_mtime_ns == mtime and len(calls) == 1
    with open_events(path) as ev:
        assert len(ev) == 6 and ev.source.get("seed") in (11, None)
    with pytest.raises(InputError, match="n_events must be an integer >= 1"):
        default_dataset(n_events=0)


def test_hdf5_lock_is_the_lock_every_h5py_call_takes(two_files):
    """A chunk read under HDF5_LOCK must also hold off h5py calls made elsewhere (a writer,
    Keras saving weights): h5py's read_direct_chunk does not take h5py's own lock."""
    import time

    import h5py

    from edkeras.events.eventfile import HDF5_LOCK

    done = threading.Event()

    def open_elsewhere():
        with h5py.File(two_files[0], "r"):
            done.set()

    with HDF5_LOCK:
        t = threading.Thread(target=open_elsewhere)
        t.start()
        time.sleep(0.3)
        assert not done.is_set()  # the other thread's h5py call waits for the lock
    t.join(10)
    assert done.is_set()


def test_streaming_reads_stay_right_beside_a_writing_thread(two_files, tmp_path):
    """Chunk reads (reader threads) and another thread's HDF5 writes at once: before the
    reads took h5py's lock this corrupted HDF5 (segmentation fault, "no VOL object wrap
    context", "double free or corruption" at exit)."""
    fa, fb, a, b = two_files
    truth = _truth([a, b])
    ds = EventDataset(index_events([fa, fb]), 32, training=False, readers=2)
    stop, errors = threading.Event(), []

    def write_files():
        batch = random_batch(20, shape=SHAPE, seed=5)
        k = 0
        while not stop.is_set():
            try:
                write_events(tmp_path / f"w{k % 3}.h5", batch, source={}, overwrite=True)
            except Exception as e:  # reported by the assertion below
                errors.append(repr(e))
            k += 1

    writer = threading.Thread(target=write_files)
    writer.start()
    try:
        for _ in range(15):
            for i in range(len(ds)):
                x, _ = ds[i]
                assert np.array_equal(x["view_u"], truth["U"][i * 32 : (i + 1) * 32])
            ds._windows.clear()  # read the files again on the next pass
    finally:
        stop.set()
        writer.join(30)
    assert not errors
    assert all(c is not None for c in ds._codecs.values())  # the chunk path was the one raced
