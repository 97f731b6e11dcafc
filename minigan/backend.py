"""The one place that chooses an array module.

A tensor on the CPU holds a NumPy array, a tensor on a GPU holds a CuPy array.
Everything else in minigan asks this module for ``xp`` (NumPy or CuPy) instead of
importing either directly, so the same op code runs on both devices. CuPy is
optional: it is imported only when a CUDA device is asked for.
"""

import ctypes
import numbers
import sys

import numpy as np

DEVICES = ("cpu", "cuda")
NUMERIC_KINDS = "biuf"  # NumPy's dtype kinds of the values a tensor may hold: bool, int, unsigned, float
_cupy = None  # the cupy module once it has been imported successfully


def cupy_or_none():
    """Return the cupy module if it is installed and sees a GPU that Numba can launch
    the kernels on too, else None."""
    global _cupy
    if _cupy is None:
        try:
            import cupy
            from numba import cuda

            if cupy.cuda.runtime.getDeviceCount() > 0 and cuda.is_available():
                _cupy = cupy
        except Exception:  # not installed, no driver, no device: all mean "no GPU"
            _cupy = False
    return _cupy or None


def resolve_device(device):
    """Turn a user's device name into "cpu" or "cuda" ("auto" picks CUDA when CuPy sees a GPU)."""
    if device is None:
        return "cpu"
    device = str(device)
    if device == "auto":
        return "cuda" if cupy_or_none() else "cpu"
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of 'cpu', 'cuda' or 'auto'")
    if device == "cuda" and cupy_or_none() is None:
        raise RuntimeError(
            "device 'cuda' was asked for but CuPy, or Numba's CUDA, cannot see a GPU: "
            "install minigan[cuda] on a machine with an NVIDIA GPU, or use device='cpu'"
        )
    return device


def xp_for(device):
    """The array module for a device name: numpy for "cpu", cupy for "cuda"."""
    return np if device == "cpu" else cupy_or_none()


def device_of(array):
    """The device name of a raw array."""
    return "cpu" if isinstance(array, np.ndarray) else _device_of_other(array)


def get_xp(array):
    """The array module that owns a raw array."""
    return np if isinstance(array, np.ndarray) else xp_for(_device_of_other(array))


def _device_of_other(array):
    """The device of what is not a NumPy array: a NumPy scalar is on the CPU, a CuPy
    array on the GPU, anything else is a mistake."""
    if isinstance(array, np.generic):
        return "cpu"
    cupy = cupy_or_none()
    if cupy is None or not isinstance(array, cupy.ndarray):
        raise TypeError(
            f"expected a NumPy or CuPy array, got {type(array).__name__}; a Tensor holds an array "
            "(mg.tensor(...) makes one from lists and numbers too)"
        )
    return "cuda"


def is_number(value):
    """Whether ``value`` is one real number (a Python or NumPy int or float), for the
    checks of hyper-parameters and settings. A bool is not one: True would pass as 1."""
    return type(value) in (int, float) or (isinstance(value, numbers.Real) and not isinstance(value, bool))


def is_int(value):
    """Whether ``value`` is one integer (Python's or NumPy's), a bool excepted."""
    # A plain int, by far the most common case, is told first: the test against the
    # abstract class numbers.Integral is slow, and the ops check every axis they get.
    return type(value) is int or (isinstance(value, numbers.Integral) and not isinstance(value, bool))


def check_number(value, name, who):
    """``value`` as a Python int or float if it is a number (see is_number), else a
    TypeError naming it. (NumPy's scalars become Python's: in NumPy's promotion a
    np.float64 counts as a float64 array, and a float32 tensor times it would be
    float64; a Python float takes the tensor's dtype, as a number does in PyTorch.)"""
    if not is_number(value):
        raise TypeError(f"{who}: {name} must be a number, got {value!r:.40} (a {type(value).__name__})")
    if type(value) in (int, float):
        return value
    return int(value) if is_int(value) else float(value)


def numeric_dtype(value, who=""):
    """The dtype of ``value`` (an array, a number or a list of numbers) as it is given,
    before any cast: a TypeError if its values are not numbers (cast to float, None
    would become NaN and a string the number it spells). ``who`` starts the message."""
    dtype = value.dtype if hasattr(value, "dtype") else np.asarray(value).dtype
    if not isinstance(dtype, np.dtype):  # e.g. a PyTorch tensor, whose dtype is PyTorch's own
        kind = type(value)
        raise TypeError(f"{who}expected a number, a list of numbers or a NumPy (or CuPy) array, got a "
                        f"{kind.__module__}.{kind.__qualname__}; for a PyTorch tensor t, pass t.detach().numpy()")
    if dtype.kind not in NUMERIC_KINDS:
        raise TypeError(f"{who}expected a number, a list of numbers or an array of them (bool, integer or "
                        f"floating point), got {value!r:.60} (a {type(value).__name__})")
    return dtype


def asarray_like(value, like):
    """``value`` (a number, a list or an array) as an array of the dtype and on the
    device of the array ``like``. An array on another device is an error, not a
    silent copy, and so are integers that the cast would wrap around."""
    xp, device = get_xp(like), device_of(like)
    given = numeric_dtype(value)
    if hasattr(value, "dtype") and device_of(value) != device:
        raise RuntimeError(
            f"an array on {device_of(value)} was given for a tensor on {device}; "
            f"move it first, e.g. mg.tensor(value, device={device!r})"
        )
    out = xp.asarray(value, dtype=like.dtype)
    # NumPy casts an integer array to a narrower integer type modulo 2^bits (a Python
    # int out of range raises by itself).
    if like.dtype.kind in "iu" and given.kind in "iu" and given != like.dtype and bool((out != xp.asarray(value)).any()):
        raise OverflowError(f"integer values of dtype {given} do not fit into a tensor of dtype {like.dtype}; "
                            "convert the tensor to a wider type first")
    return out


def to_device(array, device):
    """Copy a raw array to a device (no copy when it is already there)."""
    if device_of(array) == device:
        return array
    if device == "cpu":
        return array.get()
    return xp_for("cuda").asarray(array)


def to_numpy(array):
    """A NumPy copy of a raw array from any device."""
    return np.array(array) if isinstance(array, np.ndarray) else array.get()


def keep_freed_memory():
    """Ask glibc's malloc to keep large freed blocks for reuse (Linux only).

    A training step allocates and frees the same large temporaries again and
    again: the columns of a convolution are 12.8 MB at batch 64. By default
    glibc hands blocks that large back to the kernel on free (``munmap``, or
    trimming the heap), so the next step's array of the same size is fresh
    memory, which the kernel zeroes page by page on first touch. Keeping them
    in the heap (no mmap below 32 MB, glibc's largest allowed threshold; no
    trimming below 1 GiB) made the DCGAN step at batch 64 about 1.6 times
    faster (173 ms -> 105 ms with the thresholds at their starting values;
    glibc raises them on its own as it sees large frees, so the default lies in
    between). The process keeps its peak memory, as a caching allocator does.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): leave malloc alone
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))


keep_freed_memory()
