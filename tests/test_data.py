import gzip
import itertools
import os
import warnings

import numpy as np
import pytest

from minigan import data
from minigan.data import DataError, DataLoader, mnist
from minigan.train import Config, Trainer


# --------------------------------------------------------------------------
# The bundled 5k set and its cache
# --------------------------------------------------------------------------

@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    """Point the default cache at a fresh temp folder."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MINIGAN_CACHE", str(folder))
    return folder


def test_5k_all_shapes_range_labels(cache_env):
    x, y = mnist()
    assert x.shape == (5000, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (5000,) and y.dtype == np.int64
    assert x.min() == -1.0 and x.max() == 1.0
    assert np.array_equal(np.bincount(y, minlength=10), np.full(10, 500))
    # real digits: mostly background, some ink in the middle
    assert (x == -1.0).mean() > 0.7
    assert x[:, :, 10:18, 10:18].mean() > x[:, :, :3, :3].mean()


def test_5k_splits_are_disjoint_stratified(cache_env):
    x_all, _ = mnist(split="all")
    x_tr, y_tr = mnist(split="train")
    x_te, y_te = mnist(split="test")
    assert len(x_tr) == 4000 and len(x_te) == 1000
    assert np.array_equal(np.bincount(y_tr, minlength=10), np.full(10, 400))
    assert np.array_equal(np.bincount(y_te, minlength=10), np.full(10, 100))
    flat = lambda a: {r.tobytes() for r in a.reshape(len(a), -1)}
    assert not flat(x_tr) & flat(x_te)
    assert flat(x_tr) | flat(x_te) == flat(x_all)


def test_5k_cache_is_written_then_read(cache_env, monkeypatch):
    x1, y1 = mnist()
    files = list(cache_env.glob("mnist5k-*.npz"))
    assert len(files) == 1
    assert not list(cache_env.glob(".tmp-*"))
    with np.load(files[0], allow_pickle=False) as f:
        assert set(f.files) == {"pixels", "labels"}

    def no_parse(path):
        raise AssertionError("should have read the cache")
    monkeypatch.setattr(data, "_parse_5k_csv", no_parse)
    x2, y2 = mnist()
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)


def test_cache_dir_argument_and_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("MINIGAN_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_cache_dir() == str(tmp_path / "xdg" / "minigan")
    mnist(split="test", cache_dir=tmp_path / "explicit")
    assert list((tmp_path / "explicit").glob("mnist5k-*.npz"))
    assert not (tmp_path / "xdg").exists()


def test_cache_key_changes_with_source(cache_env, monkeypatch, tmp_path):
    real = data._mnist_5k_path()
    copy = tmp_path / "mnist_5k.csv.gz"
    copy.write_bytes(open(real, "rb").read())
    monkeypatch.setattr(data, "_mnist_5k_path", lambda: str(copy))
    mnist()
    os.utime(copy, ns=(1, 1))  # "edited" source
    mnist()
    assert len(list(cache_env.glob("mnist5k-*.npz"))) == 2


def test_damaged_cache_is_rebuilt(cache_env):
    x1, _ = mnist()
    (cache_file,) = cache_env.glob("mnist5k-*.npz")
    cache_file.write_bytes(b"not an npz")
    x2, _ = mnist()
    assert np.array_equal(x1, x2)
    with np.load(cache_file, allow_pickle=False) as f:
        assert f["pixels"].shape == (5000, 28, 28)


def test_unwritable_cache_warns_once(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")  # a file where the folder should go
    monkeypatch.setattr(data, "_unwritable_caches", set())
    with pytest.warns(RuntimeWarning, match="cache not written"):
        x, _ = mnist(split="test", cache_dir=blocker / "sub")
    assert x.shape == (1000, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mnist(split="test", cache_dir=blocker / "sub")


@pytest.mark.parametrize("limit", [3000, 256])
def test_a_limited_run_keeps_every_class(limit):
    """The bundled file is sorted by class: a limit takes digits from all of it."""
    trainer = Trainer(Config(model="mlp", conditional=True, limit=limit, batch_size=8, metrics=False))
    _, labels = trainer.loader.arrays
    counts = np.bincount(labels, minlength=10)
    assert len(labels) == limit
    assert counts.min() >= limit // 10 and counts.max() <= -(-limit // 10)


def test_bad_split_name():
    with pytest.raises(DataError, match="'validation'.*train"):
        mnist(split="validation")


# --------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------

def idx_bytes(array, magic):
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return magic.to_bytes(4, "big") + dims + array.astype(np.uint8).tobytes()


def write_idx(folder, name, array, magic):
    payload = idx_bytes(array, magic)
    if name.endswith(".gz"):
        payload = gzip.compress(payload)
    (folder / name).write_bytes(payload)
    return folder / name


def fake_set(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    return images, rng.integers(0, 10, size=n)


@pytest.fixture
def idx_dir(tmp_path):
    """train: 7 digits as raw files; t10k: 3 digits as .gz, dotted names."""
    train, test = fake_set(7, 1), fake_set(3, 2)
    write_idx(tmp_path, "train-images-idx3-ubyte", train[0], 0x803)
    write_idx(tmp_path, "train-labels-idx1-ubyte", train[1], 0x801)
    write_idx(tmp_path, "t10k-images.idx3-ubyte.gz", test[0], 0x803)
    write_idx(tmp_path, "t10k-labels.idx1-ubyte.gz", test[1], 0x801)
    return tmp_path, train, test


def test_idx_loads_raw_gz_and_splits(idx_dir):
    folder, (tr_x, tr_y), (te_x, te_y) = idx_dir
    x, y = mnist(folder, split="train")
    assert x.shape == (7, 1, 28, 28) and x.dtype == np.float32
    assert y.dtype == np.int64 and np.array_equal(y, tr_y)
    assert np.array_equal(x[:, 0], tr_x / np.float32(127.5) - 1)
    assert x[0, 0, 0, 0] == -1.0 and x[0, 0, 0, 1] == 1.0
    x, y = mnist(str(folder), split="test")
    assert len(x) == 3 and np.array_equal(y, te_y)
    x, y = mnist(folder, split="all")
    assert len(x) == 10 and np.array_equal(y, np.concatenate([tr_y, te_y]))


def test_idx_truncated(idx_dir):
    folder = idx_dir[0]
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    expected = 16 + 7 * 28 * 28
    with pytest.raises(DataError, match=rf"train-images-idx3-ubyte.*expected "
                                        rf"{expected} bytes.*found {expected - 5}"):
        mnist(folder, split="train")


def test_idx_trailing_bytes(idx_dir):
    folder = idx_dir[0]
    path = folder / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: expected 15 bytes.*found 16"):
        mnist(folder, split="train")


def test_idx_truncated_gzip_stream(idx_dir):
    folder = idx_dir[0]
    path = folder / "t10k-images.idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match="t10k-images.idx3-ubyte.gz"):
        mnist(folder, split="test")


def test_idx_wrong_magic(idx_dir):
    folder, (tr_x, _), _ = idx_dir
    # a labels magic on an images file
    write_idx(folder, "train-images-idx3-ubyte", tr_x, 0x801)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: bad magic "
                                        r"number 0x00000801, expected 0x00000803"):
        mnist(folder, split="train")


def test_a_gzipped_idx_file_without_gz_in_its_name_is_named_as_such(idx_dir):
    folder, (tr_x, _), _ = idx_dir
    write_idx(folder, "train-images-idx3-ubyte.gz", tr_x, 0x803)
    os.replace(os.path.join(folder, "train-images-idx3-ubyte.gz"), os.path.join(folder, "train-images-idx3-ubyte"))
    with pytest.raises(DataError, match=r"bad magic number 0x1f8b.*\(the file is gzipped: name it with .gz at the end\)"):
        mnist(folder, split="train")


def test_idx_label_out_of_range(idx_dir):
    folder = idx_dir[0]
    write_idx(folder, "train-labels-idx1-ubyte", np.array([1, 2, 3, 12, 0, 0, 0]), 0x801)
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: label 12 out of range"):
        mnist(folder, split="train")


def test_idx_count_mismatch(idx_dir):
    folder = idx_dir[0]
    write_idx(folder, "train-labels-idx1-ubyte", np.zeros(6), 0x801)
    with pytest.raises(DataError, match="count mismatch.*7 images.*6 labels"):
        mnist(folder, split="train")


def test_idx_missing_folder(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=r"nope does not exist.*"
                                                r"train-images-idx3-ubyte"):
        mnist(missing)


def test_idx_folder_that_is_a_file(tmp_path):
    a_file = tmp_path / "mnist.gz"
    a_file.write_bytes(b"")
    with pytest.raises(NotADirectoryError, match=r"mnist.gz is not a folder; "
                                                 r"expected a folder holding train-images-idx3-ubyte"):
        mnist(a_file)


def test_idx_missing_file(idx_dir):
    folder = idx_dir[0]
    (folder / "t10k-labels.idx1-ubyte.gz").unlink()
    mnist(folder, split="train")  # the train files are still fine
    with pytest.raises(FileNotFoundError, match=r"test labels.*"
                                                r"t10k-labels-idx1-ubyte"):
        mnist(folder, split="all")


# --------------------------------------------------------------------------
# DataLoader
# --------------------------------------------------------------------------

def toy(n=10):
    return np.arange(n) * 10, np.arange(n)


def epoch_batches(loader):
    # islice: a loader that never stops fails here instead of hanging
    capped = itertools.islice(loader, len(loader) + 1)
    return [tuple(b.copy() for b in batch) for batch in capped]


def same(batches_a, batches_b):
    return len(batches_a) == len(batches_b) and all(
        all(np.array_equal(p, q) for p, q in zip(a, b))
        for a, b in zip(batches_a, batches_b))


def test_loader_yields_tuples_of_matching_rows():
    x, y = toy()
    loader = DataLoader((x, y), batch_size=3)
    batches = epoch_batches(loader)
    assert len(loader) == 3 == len(batches)  # 10 // 3, last partial dropped
    for bx, by in batches:
        assert bx.shape == (3,) and np.array_equal(bx, by * 10)


def test_loader_deterministic_per_seed_and_differs_per_epoch():
    a = DataLoader(toy(50), batch_size=5, seed=3)
    b = DataLoader(toy(50), batch_size=5, seed=3)
    c = DataLoader(toy(50), batch_size=5, seed=4)
    a0, b0, c0 = epoch_batches(a), epoch_batches(b), epoch_batches(c)
    assert same(a0, b0) and not same(a0, c0)
    a1 = epoch_batches(a)
    assert a.epoch == 2 and not same(a0, a1)


def test_loader_covers_each_sample_once_without_drop_last():
    loader = DataLoader(toy(10), batch_size=4, drop_last=False, seed=1)
    assert len(loader) == 3
    for _ in range(3):
        batches = epoch_batches(loader)
        assert [len(b[0]) for b in batches] == [4, 4, 2]
        assert sorted(np.concatenate([b[1] for b in batches])) == list(range(10))


def test_loader_no_shuffle_is_in_order():
    loader = DataLoader(toy(6), batch_size=2, shuffle=False)
    assert [list(b[1]) for b in epoch_batches(loader)] == [[0, 1], [2, 3], [4, 5]]


def test_loader_resume_mid_epoch_and_across_boundary():
    data_ = toy(23)
    reference = DataLoader(data_, batch_size=4, seed=7)
    full = epoch_batches(reference) + epoch_batches(reference) + epoch_batches(reference)

    for stop in (1, 3, 5, 7, 11):  # 5 batches/epoch: 5 is the boundary
        first = DataLoader(data_, batch_size=4, seed=7)
        served = []
        while len(served) < stop:
            for batch in first:
                served.append(batch)
                if len(served) == stop:
                    break
        state = first.state_dict()
        assert state["epoch"] == stop // 5 and state["position"] == stop % 5
        # round trip through an .npz-like form (0-d arrays)
        state = {k: np.asarray(v) for k, v in state.items()}
        resumed = DataLoader(data_, batch_size=4, seed=999)
        resumed.load_state_dict(state)
        rest = []
        while len(served) + len(rest) < len(full):
            rest += epoch_batches(resumed)
        assert same(served + rest, full), stop


def test_loader_break_and_iterate_again_continues():
    loader = DataLoader(toy(20), batch_size=2, seed=0)
    reference = epoch_batches(DataLoader(toy(20), batch_size=2, seed=0))
    it = iter(loader)
    got = [next(it), next(it)]
    assert loader.position == 2 and loader.epoch == 0
    got += epoch_batches(loader)
    assert same(got, reference) and loader.epoch == 1 and loader.position == 0


def test_state_dict_plain_values():
    loader = DataLoader(toy(), batch_size=2, seed=5)
    next(iter(loader))
    state = loader.state_dict()
    assert {"epoch", "position", "seed"} <= set(state)
    assert all(type(v) is int for v in state.values())
    assert state["epoch"] == 0 and state["position"] == 1 and state["seed"] == 5


def test_loader_refuses_the_state_of_other_arrays_of_the_same_size():
    x, y = toy(10)
    state = DataLoader((x, y), batch_size=2, seed=1).state_dict()
    DataLoader((x.copy(), y.copy()), batch_size=2).load_state_dict(state)  # the same values: the same batches
    other = y.copy()
    other[3] = 0
    with pytest.raises(ValueError, match=r"^the arrays differ from those the state was saved with \(CRC-32 "
                                         r"0x[0-9a-f]{8} there, 0x[0-9a-f]{8} here\); resuming would serve different batches$"):
        DataLoader((x, other), batch_size=2).load_state_dict(state)
    # A state from before loaders recorded a fingerprint is taken unchecked.
    DataLoader((x, other), batch_size=2).load_state_dict({k: v for k, v in state.items() if k != "fingerprint"})


def test_state_after_last_batch_points_to_next_epoch():
    loader = DataLoader(toy(4), batch_size=2)
    it = iter(loader)
    next(it), next(it)
    assert loader.state_dict()["epoch"] == 1
    assert loader.state_dict()["position"] == 0


def test_old_iterator_is_retired_by_load_state_dict():
    loader = DataLoader(toy(), batch_size=2)
    it = iter(loader)
    next(it)
    loader.load_state_dict({"epoch": 0, "position": 0, "seed": 0})
    with pytest.raises(RuntimeError, match="replaced"):
        next(it)


def test_loader_takes_a_seed_of_any_size():
    seed = 2**70  # NumPy's generators take any non-negative int, as the run's --seed does
    loader = DataLoader(toy(10), batch_size=10, seed=seed)
    assert np.array_equal(epoch_batches(loader)[0][1], np.random.default_rng([seed, 0]).permutation(10))
    loader.load_state_dict(loader.state_dict())
    assert loader.seed == seed


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "4"])
def test_loader_bad_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(toy(), batch_size=bad)


def test_loader_input_errors():
    with pytest.raises(ValueError, match=r"equal lengths.*\[10, 9\]"):
        DataLoader((np.zeros(10), np.zeros(9)), batch_size=2)
    with pytest.raises(TypeError, match="tuple"):
        DataLoader(np.zeros(10), batch_size=2)
    with pytest.raises(ValueError, match="no batch"):
        DataLoader(toy(3), batch_size=4)
    loader = DataLoader(toy(10), batch_size=2)
    with pytest.raises(ValueError, match="batch_size=5.*batch_size=2"):
        loader.load_state_dict({"epoch": 0, "position": 0, "seed": 0,
                                "batch_size": 5})
    # a KeyError ('position') and a TypeError (list indices) before
    with pytest.raises(ValueError, match="^the loader's state has no position and seed$"):
        loader.load_state_dict({"epoch": 0})
    with pytest.raises(ValueError, match="a loader's state is a dict with the counters epoch, position, seed, got a list"):
        loader.load_state_dict([0, 0, 0])
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        loader.load_state_dict({"epoch": 0, "position": 0, "seed": -1})


def test_idx_dims_whose_product_overflows_64_bits(idx_dir):
    # 2³¹·2³¹·4 = 2⁶⁴ wrapped round to 0 in int64: the 16-byte header "fitted", and
    # NumPy's reshape failed with a ValueError of its own
    folder = idx_dir[0]
    dims = b"".join(d.to_bytes(4, "big") for d in (2**31, 2**31, 4))
    (folder / "train-images-idx3-ubyte").write_bytes((0x803).to_bytes(4, "big") + dims)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: expected 18446744073709551632 bytes.*found 16"):
        mnist(folder, split="train")


def test_a_loader_works_out_its_fingerprint_only_when_a_state_needs_it(monkeypatch):
    import zlib
    calls = []
    monkeypatch.setattr(zlib, "crc32", lambda *args: calls.append(args) or 7)
    loader = DataLoader((np.zeros((4, 2)), np.zeros(4)), batch_size=2)
    assert calls == []  # nothing at start-up
    assert loader.state_dict()["fingerprint"] == loader.state_dict()["fingerprint"] == 7
    assert len(calls) == 2  # once per array, for both state dicts
