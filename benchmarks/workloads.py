"""What the benchmark times: the DCGAN's ops at their real shapes and whole GAN
training steps, each written once for minigan and once, identically, for PyTorch.

Every workload is a function ``make(framework, batch)`` that builds its inputs
and returns a closure running one timed iteration. ``framework`` is the module
``minigan`` or ``torch``; both are called through the same names where their
APIs agree (they do almost everywhere: minigan follows PyTorch).
"""

import dataclasses

import numpy as np

import minigan

LATENT_DIM = 100
REAL_TARGET = 0.9  # one-sided label smoothing, as in minigan.train


@dataclasses.dataclass
class Workload:
    name: str
    make: object  # make(framework, batch) -> closure
    flops: object = None  # flops(batch) for compute-bound rows
    bytes: object = None  # bytes(batch) for memory-bound rows
    values: object = None  # values(batch): the size of a memory-bound row's input
    group: str = "op"


# ------------------------------------------------------------- helpers ---


def _random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _tensor(fw, array, requires_grad=False):
    return fw.tensor(array, requires_grad=requires_grad)


def _functional(fw):
    if fw.__name__ == "torch":
        import torch.nn.functional as F
    else:
        import minigan.nn.functional as F
    return F


def _like(fw, y, values):
    """A tensor holding ``values`` (an array of y's shape), laid out in memory like
    y, as ``torch.randn_like(y)`` would be."""
    if fw.__name__ == "torch":
        g = fw.empty_like(y)  # memory_format=torch.preserve_format
        g.copy_(fw.from_numpy(values))
        return g
    a = np.empty_like(y.data)  # order="K": y's strides
    a[...] = values
    return fw.tensor(a)


def _forward_backward(fw, inputs, forward):
    """A closure: y = forward(*inputs), then y.backward(g) for a fixed random g.

    g is laid out like y: in a network, the gradient that reaches an op comes
    from the ops after it, which work in the layout of its output (minigan's
    convolutions give channels-last outputs, PyTorch's NCHW ones; see
    minigan/ops/layout.py). The values are the same for both frameworks.
    The gradients of the previous iteration are dropped first, so each iteration
    does the same work (no accumulation into existing ``.grad``)."""
    y = forward(*inputs)
    g = _like(fw, y, _random(tuple(y.shape), 99))

    def run():
        for t in inputs:
            t.grad = None
        forward(*inputs).backward(g)

    return run


# ----------------------------------------------------------- single ops ---


def _conv_shapes(batch, c_in, c_out, size, transposed):
    out = size * 2 if transposed else size // 2  # kernel 4, stride 2, padding 1
    x = (batch, c_in, size, size)
    w = (c_in, c_out, 4, 4) if transposed else (c_out, c_in, 4, 4)
    return x, w, (batch, c_out, out, out)


def conv_workload(c_in, c_out, size, transposed):
    """conv2d (or conv_transpose2d) with a 4×4 kernel, stride 2, padding 1, no bias;
    forward, then backward to the input and the weight."""

    def make(fw, batch):
        x, w, _ = _conv_shapes(batch, c_in, c_out, size, transposed)
        F = _functional(fw)
        op = F.conv_transpose2d if transposed else F.conv2d
        inputs = (_tensor(fw, _random(x, 1), True), _tensor(fw, _random(w, 2) * 0.05, True))
        return _forward_backward(fw, inputs, lambda a, b: op(a, b, None, 2, 1))

    def flops(batch):
        # One multiply-add per (output pixel, input channel, tap) in the forward
        # pass (for the transposed conv: per input pixel); the two gradients are
        # products of the same size.
        x, w, y = _conv_shapes(batch, c_in, c_out, size, transposed)
        pixels = x[0] * x[2] * x[3] if transposed else y[0] * y[2] * y[3]
        return 3 * 2 * pixels * c_in * c_out * 16

    kind = "conv_transpose2d" if transposed else "conv2d"
    name = f"{kind} {c_in}→{c_out} ({size}×{size})"
    return Workload(name, make, flops=flops)


def batch_norm_workload(channels, size):
    """Training-mode batch norm with running statistics, forward and backward."""

    def make(fw, batch):
        F = _functional(fw)
        shape = (batch, channels, size, size)
        running = [_tensor(fw, np.zeros(channels, np.float32)), _tensor(fw, np.ones(channels, np.float32))]
        inputs = (
            _tensor(fw, _random(shape, 1), True),
            _tensor(fw, np.ones(channels, np.float32), True),
            _tensor(fw, np.zeros(channels, np.float32), True),
        )
        return _forward_backward(fw, inputs, lambda x, w, b: F.batch_norm(x, *running, w, b, training=True))

    return _memory_bound(f"batch norm 2d ({channels}×{size}×{size})", make, channels, size)


def leaky_relu_workload(channels, size, slope=0.2):
    def make(fw, batch):
        F = _functional(fw)
        shape = (batch, channels, size, size)
        inputs = (_tensor(fw, _random(shape, 1), True),)
        return _forward_backward(fw, inputs, lambda x: F.leaky_relu(x, slope))

    return _memory_bound(f"leaky ReLU ({channels}×{size}×{size})", make, channels, size)


def _memory_bound(name, make, channels, size):
    """A memory-bound row over (batch, channels, size, size) arrays: its unavoidable
    traffic is five of them, 4 bytes a value (read x, write y; read x and gy, write gx)."""
    def values(batch):
        return batch * channels * size * size

    return Workload(name, make, bytes=lambda batch: 5 * 4 * values(batch), values=values)


OPS = [
    conv_workload(1, 64, 28, transposed=False),
    conv_workload(64, 128, 14, transposed=False),
    conv_workload(128, 64, 7, transposed=True),
    conv_workload(64, 1, 14, transposed=True),
    batch_norm_workload(64, 14),
    leaky_relu_workload(64, 14),
]


# ------------------------------------------------------------ the models ---


def mlp_gan(fw):
    """G: z(100) -> Linear(128) -> LeakyReLU(0.01) -> Linear(784) -> tanh;
    D: 784 -> Linear(128) -> LeakyReLU(0.01) -> Linear(1) logit."""
    nn = fw.nn
    G = nn.Sequential(
        nn.Linear(LATENT_DIM, 128), nn.LeakyReLU(0.01), nn.Linear(128, 784), nn.Tanh(),
        nn.Unflatten(1, (1, 28, 28)),
    )
    D = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.LeakyReLU(0.01), nn.Linear(128, 1))
    return G, D


def dcgan(fw):
    """minigan.models' DCGAN (width 64), layer for layer (tests/test_benchmarks.py checks it)."""
    nn = fw.nn
    G = nn.Sequential(
        nn.Linear(LATENT_DIM, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1), nn.Tanh(),
    )
    D = nn.Sequential(
        nn.Conv2d(1, 64, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, stride=2, padding=1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1),
    )
    return G, D


def _copy_weights(src, dst):
    """Give the PyTorch model minigan's initial weights (same numbers in both)."""
    import torch

    with torch.no_grad():
        for (_, a), (_, b) in zip(src.named_parameters(), dst.named_parameters()):
            b.copy_(torch.from_numpy(np.array(a.data)))


def gan_step_workload(name, build):
    """One training step of minigan.train.gan_step: D on real (target 0.9) and on
    detached fakes (target 0), D's Adam update; then D re-scores the same fakes,
    G's non-saturating loss (D's weights frozen), G's Adam update. BCE with logits; Adam(2e-4, (0.5, 0.999))."""

    def make(fw, batch):
        F = _functional(fw)
        minigan.manual_seed(0)
        G, D = build(fw)
        if fw.__name__ == "torch":  # start from minigan's weights
            minigan.manual_seed(0)
            for a, b in zip(build(minigan), (G, D)):
                _copy_weights(a, b)
        opt_g = fw.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = fw.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        real = _tensor(fw, np.tanh(_random((batch, 1, 28, 28), 3)))
        z = _tensor(fw, _random((batch, LATENT_DIM), 4))
        targets = {t: _tensor(fw, np.full((batch, 1), t, np.float32)) for t in (REAL_TARGET, 0.0, 1.0)}

        def step():
            fake = G(z)
            loss_d = F.binary_cross_entropy_with_logits(D(real), targets[REAL_TARGET]) + \
                F.binary_cross_entropy_with_logits(D(fake.detach()), targets[0.0])
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            D.requires_grad_(False)  # G's step needs no weight gradients of D
            loss_g = F.binary_cross_entropy_with_logits(D(fake), targets[1.0])
            opt_g.zero_grad()
            loss_g.backward()
            D.requires_grad_(True)
            opt_g.step()

        return step

    return Workload(f"{name} training step", make, group="step")


STEPS = [gan_step_workload("MLP GAN", mlp_gan), gan_step_workload("DCGAN", dcgan)]
