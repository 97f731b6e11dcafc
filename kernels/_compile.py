"""Compiling one work-item body for two targets, and the registry of CUDA kernels.

Every kernel in this package is written as a plain Python *body*: the work for
one output element (or one channel). Two launchers call it:

* a CPU launcher, ``@cpu_launcher``, that loops over the work items with
  ``prange``, compiled twice: ``njit(parallel=True)`` and serially
  (``_dispatch.run`` picks by the launch's size);
* a CUDA kernel, ``@cuda_kernel``, one thread per work item.

The body is compiled with ``njit(inline="always")`` for both: a CUDA kernel can
call an ``njit`` function (numba-cuda compiles it for the device), and this
needs no GPU to compile to PTX. The CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)
runs kernels as Python and cannot call ``njit`` code, so there the GPU copy of
the body is a ``cuda.jit(device=True)`` function instead.
"""

import types

from numba import config, cuda, float32, float64, njit

SIMULATOR = bool(config.ENABLE_CUDASIM)

FLOAT_TYPES = (float32, float64)

# name -> (CUDA dispatcher, [signature for float32, signature for float64]).
# The signatures are exactly the argument types the kernel is launched with,
# so each kernel can be compiled ahead of time (e.g. to PTX) without a GPU.
CUDA_KERNELS = {}


def host_body(f):
    """The body as called from a CPU launcher."""
    return njit(inline="always", cache=True)(f)


def device_body(f):
    """The body as called from a CUDA kernel (see the module docstring)."""
    if SIMULATOR:
        return cuda.jit(device=True)(f)
    return host_body(f)


class CpuLauncher:
    """One CPU loop over work items, compiled twice and cached on disk:
    ``parallel`` spreads the ``prange`` over the threads, ``serial`` runs it as a
    plain ``range`` (see ``_dispatch.run`` for which one runs when).

    A launcher writes into arrays it is given and allocates nothing, so it is
    compiled without Numba's reference counting (``_nrt=False``). With it, every
    call of an inlined body would count each array argument up and down again,
    which costs far more than the body's work: im2col ran 20 times slower.

    Each value is computed as written, rounding for rounding as NumPy would, so
    the parallel and the serial build, and machines of any vector width, give
    the same results to the bit. A loop that only sums may give that up
    (``reassociate=True``, i.e. ``fastmath={"reassoc"}`` and no other fast-math
    liberty: NaN and infinity still propagate), so that it can be vectorised:
    batch norm's per-channel sums ran 3 to 4 times faster. They are accumulated
    in float64, so the order hardly matters. Nowhere else: reassociation lets the
    compiler round differently in a vectorised loop than in its scalar remainder
    (e.g. (x - m)·s·g as (x - m)·(s·g)), and then a value's last bit depends on
    where it falls in the loop, and on which build ran.

    A division by zero gives inf or NaN, as in NumPy, instead of raising
    (``error_model="numpy"``): without the check in it, a loop that divides can
    be vectorised (Adam's update ran 3 times faster)."""

    def __init__(self, f, reassociate=False):
        options = dict(cache=True, _nrt=False, error_model="numpy", fastmath={"reassoc"} if reassociate else set())
        # Numba's disk cache tells compiled functions apart by name and bytecode,
        # not by compile options: each build goes under a name that carries its
        # options, so that a change of them compiles anew rather than loading an
        # older build from the cache.
        tag = "reassoc" if reassociate else "exact"
        self.parallel = njit(parallel=True, **options)(_renamed(f, f"parallel_{tag}"))
        self.serial = njit(**options)(_renamed(f, f"serial_{tag}"))


def _renamed(f, suffix):
    """A copy of function f whose qualified name ends in _suffix."""
    copy = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__, f.__closure__)
    copy.__qualname__ = f"{f.__qualname__}_{suffix}"
    return copy


def cpu_launcher(f=None, *, reassociate=False):
    """``@cpu_launcher``, or ``@cpu_launcher(reassociate=True)`` for a loop that sums
    (see CpuLauncher)."""
    if f is None:
        return lambda f: CpuLauncher(f, reassociate)
    return CpuLauncher(f, reassociate)


def cuda_kernel(name, signature):
    """Register ``f`` as CUDA kernel ``name``.

    ``signature(t)`` gives the launch signature for float type ``t``. The kernel
    itself is compiled lazily, on its first launch, for the types it gets, and
    kept on disk like the CPU launchers, so that the next process loads it.
    """

    def register(f):
        kernel = cuda.jit(f, cache=True)
        CUDA_KERNELS[name] = (kernel, [signature(t) for t in FLOAT_TYPES])
        return kernel

    return register
