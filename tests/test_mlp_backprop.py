"""The MLP GAN's gradients against backprop written out by hand in NumPy.

G: z (N, 100) -> Linear(100, 128) -> LeakyReLU(0.01) -> Linear(128, 784) -> tanh -> (N, 1, 28, 28)
D: x (N, 1, 28, 28) -> flatten (N, 784) -> Linear(784, 128) -> LeakyReLU(0.01) -> Linear(128, 1) = logit

Notation: for a loss L, "dX" below is dL/dX, an array of X's shape. Linear layers
compute y = x·Wᵀ + b with W of shape (out, in), as in PyTorch.
Everything is float64, so minigan and the hand-written version agree to ~1e-12.
"""

import numpy as np
import pytest

import minigan as mg
from minigan import optim
from minigan.models import mlp_discriminator, mlp_generator
from minigan.nn import functional as F
from minigan.train import gan_step

N = 8
SLOPE = 0.01  # LeakyReLU's negative slope
REAL_TARGET = 0.9  # one-sided label smoothing, as in gan_step


# --- the hand-written layers -------------------------------------------------------------------
def linear_forward(x, W, b):
    return x @ W.T + b


def linear_backward(dy, x, W):
    """y[n, o] = Σ_i x[n, i]·W[o, i] + b[o], so
    dx[n, i] = Σ_o dy[n, o]·W[o, i]   ->  dx = dy·W
    dW[o, i] = Σ_n dy[n, o]·x[n, i]   ->  dW = dyᵀ·x
    db[o]    = Σ_n dy[n, o]"""
    return dy @ W, dy.T @ x, dy.sum(axis=0)


def leaky_forward(h):
    return np.where(h > 0, h, SLOPE * h)


def leaky_backward(dy, h):
    """y = h where h > 0, else SLOPE·h: the local slope is 1 or SLOPE."""
    return dy * np.where(h > 0, 1.0, SLOPE)


def sigmoid(s):
    return 1 / (1 + np.exp(-s))


def bce_with_logits_mean(s, target):
    """mean over n of -[t·log σ(s) + (1 - t)·log(1 - σ(s))] (the logits here are small)."""
    p = sigmoid(s)
    return np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p)))


def bce_with_logits_mean_backward(s, target):
    """d/ds of -[t·log σ + (1 - t)·log(1 - σ)] = σ(s) - t, using σ' = σ(1 - σ);
    the mean over N rows divides each row's gradient by N."""
    return (sigmoid(s) - target) / s.shape[0]


# --- the two networks, by hand ----------------------------------------------------------------
def numpy_params(module):
    """The parameters as float64 NumPy arrays, by name (copies)."""
    return {name: p.data.copy() for name, p in module.named_parameters()}


def d_forward(P, x):
    """D's forward; returns the logit and what the backward pass needs."""
    x_flat = x.reshape(x.shape[0], -1)  # Flatten: (N, 1, 28, 28) -> (N, 784)
    h1 = linear_forward(x_flat, P["1.weight"], P["1.bias"])  # (N, 128)
    a1 = leaky_forward(h1)
    logit = linear_forward(a1, P["3.weight"], P["3.bias"])  # (N, 1)
    return logit, (x_flat, h1, a1)


def d_backward(P, dlogit, saved, x_shape):
    """D's backward from d(loss)/d(logit): parameter gradients and d(loss)/dx."""
    x_flat, h1, a1 = saved
    da1, dW3, db3 = linear_backward(dlogit, a1, P["3.weight"])  # through the last Linear
    dh1 = leaky_backward(da1, h1)  # through LeakyReLU
    dx_flat, dW1, db1 = linear_backward(dh1, x_flat, P["1.weight"])  # through the first Linear
    grads = {"1.weight": dW1, "1.bias": db1, "3.weight": dW3, "3.bias": db3}
    return grads, dx_flat.reshape(x_shape)  # Flatten's backward is a reshape back


def g_forward(P, z):
    h1 = linear_forward(z, P["0.weight"], P["0.bias"])  # (N, 128)
    a1 = leaky_forward(h1)
    h2 = linear_forward(a1, P["2.weight"], P["2.bias"])  # (N, 784)
    image = np.tanh(h2)
    return image.reshape(-1, 1, 28, 28), (h1, a1, image)  # Unflatten: (N, 784) -> (N, 1, 28, 28)


def g_backward(P, dimage, z, saved):
    h1, a1, image = saved
    dimage = dimage.reshape(image.shape)  # Unflatten's backward is a reshape back
    dh2 = dimage * (1 - image**2)  # tanh' = 1 - tanh²
    da1, dW2, db2 = linear_backward(dh2, a1, P["2.weight"])
    dh1 = leaky_backward(da1, h1)
    _, dW0, db0 = linear_backward(dh1, z, P["0.weight"])
    return {"0.weight": dW0, "0.bias": db0, "2.weight": dW2, "2.bias": db2}


def numpy_d_step_grads(PD, PG, z, real):
    """Gradients of D's loss: BCE(D(x), 0.9) + BCE(D(G(z)), 0), with G(z) a constant."""
    fake, _ = g_forward(PG, z)
    logit_real, saved_real = d_forward(PD, real)
    logit_fake, saved_fake = d_forward(PD, fake)
    loss = bce_with_logits_mean(logit_real, REAL_TARGET) + bce_with_logits_mean(logit_fake, 0.0)
    # The loss is a sum of two terms, and D's parameters are used in both:
    # their gradients are the sums of the two backward passes.
    grads_real, _ = d_backward(PD, bce_with_logits_mean_backward(logit_real, REAL_TARGET), saved_real, real.shape)
    grads_fake, _ = d_backward(PD, bce_with_logits_mean_backward(logit_fake, 0.0), saved_fake, fake.shape)
    return loss, {k: grads_real[k] + grads_fake[k] for k in grads_real}


def numpy_g_step_grads(PD, PG, z):
    """Gradients of G's loss BCE(D(G(z)), 1): back through D (to its input), then through G."""
    fake, saved_g = g_forward(PG, z)
    logit, saved_d = d_forward(PD, fake)
    loss = bce_with_logits_mean(logit, 1.0)
    _, dfake = d_backward(PD, bce_with_logits_mean_backward(logit, 1.0), saved_d, fake.shape)
    return loss, g_backward(PG, dfake, z, saved_g)


# --- the setup --------------------------------------------------------------------------------
@pytest.fixture
def gan():
    mg.manual_seed(0)
    G, D = mlp_generator(), mlp_discriminator()
    for p in [*G.parameters(), *D.parameters()]:
        p.data = p.data.astype(np.float64)
    rng = np.random.default_rng(42)
    z = rng.standard_normal((N, 100))
    real = np.tanh(rng.standard_normal((N, 1, 28, 28)))  # in [-1, 1] like the images
    return G, D, z, real


def targets(value):
    return mg.tensor(np.full((N, 1), value))


def assert_grads_equal(module, expected):
    for name, p in module.named_parameters():
        assert p.grad is not None, name
        assert p.grad.dtype == np.float64
        np.testing.assert_allclose(p.grad, expected[name], rtol=1e-10, atol=1e-15, err_msg=name)


def test_d_step_gradients_match_numpy_backprop(gan):
    G, D, z, real = gan
    fake = G(mg.tensor(z))
    loss_d = F.binary_cross_entropy_with_logits(D(mg.tensor(real)), targets(REAL_TARGET)) + \
        F.binary_cross_entropy_with_logits(D(fake.detach()), targets(0.0))
    loss_d.backward()

    expected_loss, expected = numpy_d_step_grads(numpy_params(D), numpy_params(G), z, real)
    assert loss_d.item() == pytest.approx(expected_loss, rel=1e-12)
    assert_grads_equal(D, expected)
    assert all(p.grad is None for p in G.parameters())  # the fakes were detached


def test_g_step_gradients_match_numpy_backprop(gan):
    G, D, z, real = gan
    loss_g = F.binary_cross_entropy_with_logits(D(G(mg.tensor(z))), targets(1.0))
    loss_g.backward()

    expected_loss, expected = numpy_g_step_grads(numpy_params(D), numpy_params(G), z)
    assert loss_g.item() == pytest.approx(expected_loss, rel=1e-12)
    assert_grads_equal(G, expected)


def test_gan_step_moves_parameters_by_adams_first_step(gan):
    G, D, z, real = gan
    lr, eps = 1e-3, 1e-8
    PD0, PG0 = numpy_params(D), numpy_params(G)
    opt_d = optim.Adam(D.parameters(), lr=lr, eps=eps)
    opt_g = optim.Adam(G.parameters(), lr=lr, eps=eps)
    gan_step(G, D, opt_g, opt_d, mg.tensor(real), mg.tensor(z))

    # Adam's first step: m = (1 - β1)·g and v = (1 - β2)·g², so after bias correction
    # m̂ = g and v̂ = g², and the step is -lr·g/(|g| + eps).
    def adam_first_step(params, grads):
        return {k: params[k] - lr * grads[k] / (np.sqrt(grads[k] ** 2) + eps) for k in params}

    # D moved by the first step on the D-loss gradients at the starting weights.
    _, gd = numpy_d_step_grads(PD0, PG0, z, real)
    expected_d = adam_first_step(PD0, gd)
    for name, p in D.named_parameters():
        np.testing.assert_allclose(p.data - PD0[name], expected_d[name] - PD0[name], rtol=1e-9, atol=1e-15, err_msg=name)

    # G's loss is taken through the *updated* D (gan_step scores the fakes again).
    _, gg = numpy_g_step_grads(numpy_params(D), PG0, z)
    expected_g = adam_first_step(PG0, gg)
    for name, p in G.named_parameters():
        np.testing.assert_allclose(p.data - PG0[name], expected_g[name] - PG0[name], rtol=1e-9, atol=1e-15, err_msg=name)

    # G's step did not compute D's weight gradients (they would be thrown away): D's
    # gradients are still those of its own loss, and D is trainable again.
    for name, p in D.named_parameters():
        np.testing.assert_allclose(p.grad, gd[name], rtol=1e-9, atol=1e-15, err_msg=name)
        assert p.requires_grad


def test_gan_step_keeps_a_frozen_parameter_of_d_frozen(gan):
    # G's step freezes all of D for its backward pass; afterwards each of D's
    # parameters gets its own setting back, so a layer frozen by the caller stays so.
    G, D, z, real = gan
    frozen = D[1].weight
    frozen.requires_grad_(False)
    before = frozen.data.copy()
    opt_d, opt_g = optim.Adam(D.parameters()), optim.Adam(G.parameters())
    for _ in range(2):
        gan_step(G, D, opt_g, opt_d, mg.tensor(real), mg.tensor(z))
    assert not frozen.requires_grad and D[1].bias.requires_grad
    np.testing.assert_array_equal(frozen.data, before)
