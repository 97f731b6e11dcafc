"""Batch normalisation (training mode) over x of shape (N, C, L).

Channel c has M = N*L values x[:, c, :]. Forward:
    mean[c]   = sum(x) / M
    var[c]    = sum((x - mean)^2) / M                (biased)
    invstd[c] = 1 / sqrt(var + eps)
    y         = (x - mean) * invstd * gamma + beta
Backward, with xhat = (x - mean) * invstd:
    gbeta[c]  = sum(gy)
    ggamma[c] = sum(gy * xhat)
    gx        = gamma * invstd * (gy - gbeta/M - xhat * ggamma/M)
(gbeta/M and ggamma/M are the means of gy and of gy*xhat over the channel.)

Each direction is two steps: per-channel sums (CPU: one channel per parallel
iteration, or row by row when L is 1; GPU: one block per channel, summed by a
shared-memory tree), then an elementwise pass. Sums are accumulated in float64,
whatever the data type; the few per-channel numbers in between are worked out
with the array library.
"""

from numba import cuda, float64, prange, void

from ._compile import cpu_launcher, cuda_kernel, device_body, host_body
from ._dispatch import array_module, check_shapes, contiguous, empty, grid, run

REDUCE_THREADS = 256  # threads per block for the per-channel sums (a power of two)


# ------------------------------------------------------- per-channel sums ---


def _channel_sums(u, v, c, a, b, start, step):
    """(sum of (u - a), sum of (u - a)*(v - b)) over channel c, in float64.

    Only every step-th value counts, from flat index k = n*L + l = start, so
    that `step` GPU threads can share a channel (start = thread, step = threads)
    while the CPU takes it whole (start = 0, step = 1).
    """
    N, _, L = u.shape
    su = 0.0
    suv = 0.0
    if L >= step:
        # Rows at least `step` long hold values for every thread: in row n the
        # indices k = start (mod step) are l = start - n*L (mod step), one modulo
        # per row, then a plain loop (which vectorises on the CPU).
        for n in range(N):
            first = (start - n * L) % step if step > 1 else 0  # no division when step is 1
            for l in range(first, L, step):
                du = u[n, c, l] - a
                su += du
                suv += du * (v[n, c, l] - b)
    else:
        # Shorter rows (L is 1 for a channels-last image seen as (N*H*W, C, 1)):
        # most rows hold nothing for this thread, so walk its own values instead,
        # k = start, start + step, ..., each split into its row and column.
        for k in range(start, N * L, step):
            n, l = k // L, k % L
            du = u[n, c, l] - a
            su += du
            suv += du * (v[n, c, l] - b)
    return su, suv


_channel_sums_cpu = host_body(_channel_sums)
_channel_sums_gpu = device_body(_channel_sums)


@device_body  # the GPU's only: a CPU loop sums a channel itself
def _block_sum(shared, value):
    """Sum of `value` over the threads of a block: a tree reduction in shared memory.

    Each round the first half of the active threads adds in the second half,
    so blockDim (a power of two) values take log2(blockDim) rounds.
    """
    t = cuda.threadIdx.x
    shared[t] = value
    cuda.syncthreads()
    half = cuda.blockDim.x // 2
    while half > 0:
        if t < half:
            shared[t] += shared[t + half]
        cuda.syncthreads()
        half //= 2
    total = shared[0]
    cuda.syncthreads()  # all threads have read shared[0] before it is reused
    return total


@cpu_launcher(reassociate=True)
def _sums_cpu(u, v, a, b, su, suv):
    # su[c] = sum of (u - a[c]),  suv[c] = sum of (u - a[c]) * (v - b[c])  over channel c
    N, C, L = u.shape
    if L == 1:
        # Rows of channels (a channels-last image seen as (N*H*W, C, 1), or
        # BatchNorm1d): channel c strides through memory, so read row by row
        # instead and add each row onto all C sums at once.
        for c in range(C):
            su[c] = 0.0
            suv[c] = 0.0
        for n in range(N):
            for c in range(C):
                du = u[n, c, 0] - a[c]
                su[c] += du
                suv[c] += du * (v[n, c, 0] - b[c])
    else:
        for c in prange(C):
            su[c], suv[c] = _channel_sums_cpu(u, v, c, a[c], b[c], 0, 1)


@cuda_kernel(
    "batch_norm_sums",
    lambda f: void(f[:, :, ::1], f[:, :, ::1], *[float64[::1]] * 4),
)
def _sums_cuda(u, v, a, b, su, suv):
    # Block c sums channel c; thread t takes every blockDim-th value.
    c, t = cuda.blockIdx.x, cuda.threadIdx.x
    shared = cuda.shared.array(REDUCE_THREADS, float64)
    partial_u, partial_uv = _channel_sums_gpu(u, v, c, a[c], b[c], t, cuda.blockDim.x)
    total_u = _block_sum(shared, partial_u)
    total_uv = _block_sum(shared, partial_uv)
    if t == 0:
        su[c] = total_u
        suv[c] = total_uv


def _channel_sums_of(u, v, a, b):
    """(su, suv) of ``_sums_cpu``, in float64, on u's device."""
    C = u.shape[1]
    su, suv = array_module(u).empty((2, C), dtype="float64")
    run(_sums_cpu, _sums_cuda, (C, REDUCE_THREADS), u, v, a, b, su, suv)
    return su, suv


# ------------------------------------------------------ elementwise passes ---


def _normalize_value(x, gamma, beta, mean, invstd, y, n, c, l):
    y[n, c, l] = (x[n, c, l] - mean[c]) * invstd[c] * gamma[c] + beta[c]


def _input_grad_value(gy, x, gamma, mean, invstd, mean_gy, mean_gy_xhat, gx, n, c, l):
    """mean_gy = gbeta/M and mean_gy_xhat = ggamma/M come per channel in x's dtype,
    so that a float32 value is worked out in float32 (a float64 factor here would
    turn the whole expression into float64: half the vector width on a CPU, and
    the slow double-precision units of a GPU)."""
    xhat = (x[n, c, l] - mean[c]) * invstd[c]
    gx[n, c, l] = gamma[c] * invstd[c] * (gy[n, c, l] - mean_gy[c] - xhat * mean_gy_xhat[c])


_normalize_value_cpu = host_body(_normalize_value)
_normalize_value_gpu = device_body(_normalize_value)
_input_grad_value_cpu = host_body(_input_grad_value)
_input_grad_value_gpu = device_body(_input_grad_value)

# CPU: one sample n per parallel iteration, its values in memory order (loops,
# not a flat index: L is 1 after a Linear layer, and dividing a flat index
# would cost more than the value's work). GPU: one thread per value, in memory
# order: flat index e = (n*C + c)*L + l.


@cpu_launcher
def _normalize_cpu(x, gamma, beta, mean, invstd, y):
    N, C, L = x.shape
    for n in prange(N):
        for c in range(C):
            if L == 1:  # a row of channels: one loop over c, which vectorises
                _normalize_value_cpu(x, gamma, beta, mean, invstd, y, n, c, 0)
            else:
                for l in range(L):
                    _normalize_value_cpu(x, gamma, beta, mean, invstd, y, n, c, l)


@cuda_kernel(
    "batch_norm_normalize",
    lambda f: void(f[:, :, ::1], f[::1], f[::1], f[::1], f[::1], f[:, :, ::1]),
)
def _normalize_cuda(x, gamma, beta, mean, invstd, y):
    _, C, L = x.shape
    for e in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        n, c, l = e // (C * L), e // L % C, e % L
        _normalize_value_gpu(x, gamma, beta, mean, invstd, y, n, c, l)


@cpu_launcher
def _input_grad_cpu(gy, x, gamma, mean, invstd, mean_gy, mean_gy_xhat, gx):
    N, C, L = x.shape
    for n in prange(N):
        for c in range(C):
            if L == 1:  # as in _normalize_cpu
                _input_grad_value_cpu(gy, x, gamma, mean, invstd, mean_gy, mean_gy_xhat, gx, n, c, 0)
            else:
                for l in range(L):
                    _input_grad_value_cpu(gy, x, gamma, mean, invstd, mean_gy, mean_gy_xhat, gx, n, c, l)


@cuda_kernel(
    "batch_norm_input_grad",
    lambda f: void(f[:, :, ::1], f[:, :, ::1], *[f[::1]] * 5, f[:, :, ::1]),
)
def _input_grad_cuda(gy, x, gamma, mean, invstd, mean_gy, mean_gy_xhat, gx):
    _, C, L = x.shape
    for e in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        n, c, l = e // (C * L), e // L % C, e % L
        _input_grad_value_gpu(gy, x, gamma, mean, invstd, mean_gy, mean_gy_xhat, gx, n, c, l)


# ---------------------------------------------------------------- public ---


def batch_norm_forward(x, gamma, beta, eps):
    """x (N, C, L), gamma and beta (C,) -> (y, mean, invstd, var), var the biased
    variance (for the running statistics: 1/invstd² - eps would lose its last bits,
    and may come out below 0 for a constant channel)."""
    x, gamma, beta = contiguous(x), contiguous(gamma), contiguous(beta)
    N, C, L = x.shape
    check_shapes("batch_norm_forward", (C,), gamma=gamma, beta=beta)
    # One pass over x: the sums of d = x - x[0, c, 0] and of d², shifted by a value
    # of the channel so that var = E[d²] - E[d]² does not cancel catastrophically.
    shift = x[0, :, 0].astype("float64")
    sum_d, sum_d2 = _channel_sums_of(x, x, shift, shift)
    mean_d = sum_d / (N * L)
    mean64 = shift + mean_d
    var64 = array_module(x).maximum(sum_d2 / (N * L) - mean_d**2, 0)
    invstd64 = 1 / array_module(x).sqrt(var64 + eps)
    mean, invstd, var = (a.astype(x.dtype) for a in (mean64, invstd64, var64))
    y = empty(x, x.shape)
    run(_normalize_cpu, _normalize_cuda, grid(x.size), x, gamma, beta, mean, invstd, y)
    return y, mean, invstd, var


def batch_norm_backward(gy, x, mean, invstd, gamma):
    """Gradients (gx, ggamma, gbeta) of batch_norm_forward; see the module docstring."""
    gy, x = contiguous(gy), contiguous(x)
    mean, invstd, gamma = contiguous(mean), contiguous(invstd), contiguous(gamma)
    N, C, L = x.shape
    check_shapes("batch_norm_backward", x.shape, gy=gy)
    check_shapes("batch_norm_backward", (C,), mean=mean, invstd=invstd, gamma=gamma)
    gbeta64, gy_dx = _channel_sums_of(gy, x, array_module(x).zeros(C), mean.astype("float64"))
    ggamma64 = gy_dx * invstd  # sum of gy * (x - mean) * invstd
    mean_gy, mean_gy_xhat = (s.astype(x.dtype) for s in (gbeta64 / (N * L), ggamma64 / (N * L)))
    gx = empty(x, x.shape)
    run(
        _input_grad_cpu, _input_grad_cuda, grid(x.size),
        gy, x, gamma, mean, invstd, mean_gy, mean_gy_xhat, gx,
    )
    return gx, ggamma64.astype(x.dtype), gbeta64.astype(x.dtype)
