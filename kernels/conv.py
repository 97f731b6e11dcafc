"""im2col and its adjoint col2im: the data movement behind convolution.

For an input x of shape (N, C, H, W), a kernel of kh x kw taps, stride (sh, sw)
and zero padding (ph, pw), the output grid is OH x OW with
    OH = (H + 2*ph - kh) // sh + 1,   OW = (W + 2*pw - kw) // sw + 1.
im2col lays every receptive field out as one column of a matrix
    cols[r, q] = x[n, c, oh*sh - ph + i, ow*sw - pw + j]   (0 in the padding)
    r = (c*kh + i)*kw + j   (which tap),   q = (n*OH + oh)*OW + ow   (which output pixel)
so convolution becomes one matrix product, weights (F, C*kh*kw) @ cols.
col2im is its adjoint (transpose): it sends every column entry back to the
pixel it was read from, summing where receptive fields overlap. A CUDA thread
gathers the entries of one pixel; the CPU loop scatters them, channel by
channel (see _col2im_cpu for why).
"""

from numba import cuda, int64, prange, void

from ._compile import cpu_launcher, cuda_kernel, device_body, host_body
from ._dispatch import contiguous, empty, grid, run


@host_body  # plain integer arithmetic: callable from Python, CPU, GPU and simulator alike
def _out_size(size, k, s, p):
    return (size + 2 * p - k) // s + 1


# ---------------------------------------------------------------- im2col ---


def _im2col_entry(x, cols, r, q, n, c, h, w):
    """cols[r, q] = x[n, c, h, w], or 0 if (h, w) lies in the zero padding."""
    H, W = x.shape[2], x.shape[3]
    cols[r, q] = x[n, c, h, w] if 0 <= h < H and 0 <= w < W else 0


_im2col_entry_cpu = host_body(_im2col_entry)
_im2col_entry_gpu = device_body(_im2col_entry)


@cpu_launcher
def _im2col_cpu(x, cols, kh, kw, sh, sw, ph, pw):
    # One row r = (c, i, j) of cols per parallel iteration; the nested loops
    # walk its columns q = (n, oh, ow) in order, so the writes are contiguous.
    N, C, H, W = x.shape
    OH, OW = _out_size(H, kh, sh, ph), _out_size(W, kw, sw, pw)
    for r in prange(cols.shape[0]):
        c, i, j = r // (kh * kw), r // kw % kh, r % kw
        q = 0
        for n in range(N):
            for oh in range(OH):
                h = oh * sh - ph + i
                for ow in range(OW):
                    _im2col_entry_cpu(x, cols, r, q, n, c, h, ow * sw - pw + j)
                    q += 1


@cuda_kernel(
    "im2col", lambda f: void(f[:, :, :, ::1], f[:, ::1], *[int64] * 6)
)
def _im2col_cuda(x, cols, kh, kw, sh, sw, ph, pw):
    # One thread per entry of cols; neighbouring threads write neighbouring q.
    OH, OW = _out_size(x.shape[2], kh, sh, ph), _out_size(x.shape[3], kw, sw, pw)
    rows, width = cols.shape
    for e in range(cuda.grid(1), rows * width, cuda.gridsize(1)):
        r, q = e // width, e % width
        c, i, j = r // (kh * kw), r // kw % kh, r % kw
        n, oh, ow = q // (OH * OW), q // OW % OH, q % OW
        _im2col_entry_gpu(x, cols, r, q, n, c, oh * sh - ph + i, ow * sw - pw + j)


def im2col(x, kh, kw, sh, sw, ph, pw):
    """(N, C, H, W) -> cols of shape (C*kh*kw, N*OH*OW); see the module docstring."""
    x = contiguous(x)
    N, C, H, W = x.shape
    OH, OW = _out_size(H, kh, sh, ph), _out_size(W, kw, sw, pw)
    cols = empty(x, (C * kh * kw, N * OH * OW))
    run(_im2col_cpu, _im2col_cuda, grid(cols.size), x, cols, kh, kw, sh, sw, ph, pw)
    return cols


# ---------------------------------------------------------------- col2im ---


@host_body  # plain integer arithmetic, like _out_size
def _inside(tap, s, p, size, out):
    """The output positions lo <= o < hi whose tap ``tap`` reads inside the image:
    0 <= o*s - p + tap < size, i.e. (p - tap)/s <= o < (size + p - tap)/s, rounded
    up (ceil(a/s) = (a + s - 1) // s, also for negative a), and 0 <= o < out."""
    return max(0, (p - tap + s - 1) // s), min(out, (size + p - tap + s - 1) // s)


def _col2im_pixel(cols, x, n, c, h, w, kh, kw, sh, sw, ph, pw, OH, OW):
    """x[n, c, h, w] = sum of the column entries read from that pixel.

    Output row oh reads input row h through tap i = h + ph - oh*sh, and a tap
    exists when 0 <= i < kh, i.e. (h + ph - kh)/sh < oh <= (h + ph)/sh; with
    0 <= oh < OH that is oh_lo <= oh <= oh_hi below (// floors, also for
    negatives). Columns alike. No other work item writes x[n, c, h, w], so
    there are no races.
    """
    hp, wp = h + ph, w + pw  # the pixel's position in the padded image
    oh_lo, oh_hi = max(0, (hp - kh) // sh + 1), min(OH - 1, hp // sh)
    ow_lo, ow_hi = max(0, (wp - kw) // sw + 1), min(OW - 1, wp // sw)
    acc = 0.0  # float64 accumulator, for float32 data too
    for oh in range(oh_lo, oh_hi + 1):
        i = hp - oh * sh
        for ow in range(ow_lo, ow_hi + 1):
            j = wp - ow * sw
            acc += cols[(c * kh + i) * kw + j, (n * OH + oh) * OW + ow]
    x[n, c, h, w] = acc


_col2im_pixel_gpu = device_body(_col2im_pixel)


def _col2im_tap(cols, x, c, i, j, r, sh, sw, ph, pw, OH, OW):
    """Add row r = (c*kh + i)*kw + j of cols, tap (i, j) of channel c, onto the
    pixels of x[:, c] it was read from, skipping the reads from the padding."""
    N, _, H, W = x.shape
    oh_lo, oh_hi = _inside(i, sh, ph, H, OH)
    ow_lo, ow_hi = _inside(j, sw, pw, W, OW)
    for n in range(N):
        for oh in range(oh_lo, oh_hi):
            q = (n * OH + oh) * OW
            for ow in range(ow_lo, ow_hi):
                x[n, c, oh * sh - ph + i, ow * sw - pw + j] += cols[r, q + ow]


_col2im_tap_cpu = host_body(_col2im_tap)


@cpu_launcher
def _col2im_cpu(cols, x, kh, kw, sh, sw, ph, pw):
    # The CPU adds entries onto pixels (scatter) where a CUDA thread gathers
    # them (below): one channel c per parallel iteration, so no two iterations
    # write one pixel; it reads its kh*kw rows of cols left to right, one after
    # the other. Gathering on a CPU is several times slower: it spends its time
    # on the integer divisions of each pixel's tap range, which here are worked
    # out once per row of cols. Sums are in x's precision.
    N, C, H, W = x.shape
    OH, OW = _out_size(H, kh, sh, ph), _out_size(W, kw, sw, pw)
    for c in prange(C):
        for n in range(N):
            for h in range(H):
                for w in range(W):
                    x[n, c, h, w] = 0
        for i in range(kh):
            for j in range(kw):
                _col2im_tap_cpu(cols, x, c, i, j, (c * kh + i) * kw + j, sh, sw, ph, pw, OH, OW)


@cuda_kernel(
    "col2im", lambda f: void(f[:, ::1], f[:, :, :, ::1], *[int64] * 6)
)
def _col2im_cuda(cols, x, kh, kw, sh, sw, ph, pw):
    # One thread per input pixel (n, c, h, w), in memory order.
    N, C, H, W = x.shape
    OH, OW = _out_size(H, kh, sh, ph), _out_size(W, kw, sw, pw)
    for e in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        n, c, h, w = e // (C * H * W), e // (H * W) % C, e // W % H, e % W
        _col2im_pixel_gpu(cols, x, n, c, h, w, kh, kw, sh, sw, ph, pw, OH, OW)


def col2im(cols, N, C, H, W, kh, kw, sh, sw, ph, pw):
    """The adjoint of ``im2col``: cols (C*kh*kw, N*OH*OW) -> x (N, C, H, W)."""
    cols = contiguous(cols)
    x = empty(cols, (N, C, H, W))
    run(_col2im_cpu, _col2im_cuda, grid(x.size), cols, x, kh, kw, sh, sw, ph, pw)
    return x
