"""The ops that ``python -m minigan.gradcheck`` checks, each on small random float64
inputs. A new op registers itself here with ``@case(name, *input_shapes)``; its
function maps the input tensors to the op's output. ``second_order=False`` marks an
op whose backward is not differentiable again (it is then checked to first order)."""

from collections import namedtuple

import numpy as np

from ..losses import gradient_penalty
from ..nn import functional as F
from ..ops import cat, conv2d_weight
from ..tensor import Tensor

Case = namedtuple("Case", "name fn make_inputs second_order")
CASES = []


def case(name, *shapes, second_order=True, seed=0):
    def make_inputs():
        rng = np.random.default_rng(seed)
        return [Tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]

    def register(fn):
        CASES.append(Case(name, fn, make_inputs, second_order))
        return fn

    return register


def _positive(x):
    return x * x + 0.5  # keeps log, pow and div away from 0


# --- arithmetic, with broadcasting --------------------------------------------------
case("add (broadcast)", (3, 4), (4,))(lambda a, b: a + b)
case("sub (broadcast)", (3, 1), (1, 4))(lambda a, b: a - b)
case("mul (broadcast)", (2, 3, 4), (3, 1))(lambda a, b: a * b)
case("div (broadcast)", (3, 4), (4,))(lambda a, b: a / _positive(b))
case("neg", (3, 4))(lambda a: -a)
case("pow (scalar exponent)", (3, 4))(lambda a: _positive(a) ** 1.5)
case("pow (tensor exponent)", (3, 4), (3, 4))(lambda a, b: _positive(a) ** b)
case("pow (constant base)", (3, 4))(lambda a: 2.0**a)
case("node used twice", (3, 4))(lambda a: a * a + a)
case("matmul", (3, 4), (4, 5))(lambda a, b: a @ b)
case("matmul (batched)", (2, 3, 4), (4, 2))(lambda a, b: a @ b)
case("linear", (4, 5), (3, 5), (3,))(lambda x, w, b: F.linear(x, w, b))
case("linear (no bias)", (4, 5), (3, 5))(lambda x, w: F.linear(x, w))

# --- elementwise functions --------------------------------------------------------------
case("exp", (3, 4))(lambda a: a.exp())
case("log", (3, 4))(lambda a: _positive(a).log())
case("tanh", (3, 4))(lambda a: a.tanh())
case("sigmoid", (3, 4))(lambda a: a.sigmoid())
case("relu", (3, 4))(lambda a: F.relu(a))
case("leaky_relu", (3, 4))(lambda a: F.leaky_relu(a, 0.2))
case("clamp", (3, 4))(lambda a: a.clamp(-0.5, 0.5))
case("abs", (3, 4))(lambda a: a.abs())
case("sqrt", (3, 4))(lambda a: _positive(a).sqrt())

# --- reductions and shapes ----------------------------------------------------------
case("sum (all)", (3, 4))(lambda a: a.sum())
case("sum (dim 1, keepdim)", (3, 4))(lambda a: a.sum(1, keepdim=True))
case("mean (dims 0, 2)", (2, 3, 4))(lambda a: a.mean((0, 2)))
case("reshape", (3, 4))(lambda a: a.reshape(2, 6))
case("permute", (2, 3, 4))(lambda a: a.permute(2, 0, 1))
case("index by slices", (4, 5))(lambda a: a[1:3, ::2])
case("cat", (2, 3), (4, 3))(lambda a, b: cat([a, b], dim=0))
case("cat (dim 1, three inputs)", (2, 1, 2), (2, 3, 2), (2, 2, 2))(lambda a, b, c: cat([a, b, c], dim=1))
case("index by int, None and ...", (3, 4, 2))(lambda a: a[1, None, ..., ::-1])
case("expand", (3, 1))(lambda a: a.expand(2, 3, 4))
case("flatten", (2, 3, 4))(lambda a: a.flatten())

# --- losses -------------------------------------------------------------------------------
case("bce_with_logits (target 0.9)", (6, 1))(
    lambda x: F.binary_cross_entropy_with_logits(x, Tensor(np.full((6, 1), 0.9)))
)
case("bce_with_logits (x, t; sum)", (5, 1), (5, 1))(
    lambda x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid(), reduction="sum")
)
case("binary_cross_entropy", (6, 1))(lambda x: F.binary_cross_entropy(x.sigmoid(), Tensor(np.full((6, 1), 0.9))))
case("binary_cross_entropy (x,t,none)", (5,), (5,))(
    lambda x, y: F.binary_cross_entropy(x.sigmoid(), y.sigmoid(), reduction="none")
)
case("mse_loss", (3, 4), (3, 4))(lambda a, b: F.mse_loss(a, b))
case("log_softmax", (3, 5))(lambda x: F.log_softmax(x, dim=1))
case("log_softmax (dim -1, 3-D)", (2, 2, 3))(lambda x: F.log_softmax(x, dim=-1))
case("cross_entropy", (4, 5))(lambda x: F.cross_entropy(x, np.array([0, 4, 2, 2])))

# --- convolutions, batch norm, pooling (on the hand-written kernels) -------------------------
case("conv2d (stride 2, pad 1)", (2, 2, 5, 4), (3, 2, 3, 3), (3,))(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1))
case("conv2d (1x1, pad 0)", (1, 3, 3, 3), (2, 3, 1, 1))(lambda x, w: F.conv2d(x, w))
# Padding larger than the kernel and a stride larger than it (skipped pixels), along H only.
case("conv2d (1x2, s(3,1), p(2,0))", (1, 2, 3, 4), (2, 2, 1, 2))(
    lambda x, w: F.conv2d(x, w, stride=(3, 1), padding=(2, 0))
)
# More filters than taps (O >= kh·kw·C): the weight gradient's other product order.
case("conv2d (5 filters, 4 taps)", (2, 1, 3, 3), (5, 1, 2, 2), (5,))(lambda x, w, b: F.conv2d(x, w, b))
case("conv_transpose2d (s2, p1, op1)", (2, 3, 3, 2), (3, 2, 3, 3), (2,))(
    lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
)
# A 1x1 kernel with stride (2, 3) leaves gaps in the output, padding 1 >= the kernel
# crops it, and the size comes as output_size.
case("conv_transpose2d (1x1, s(2,3))", (1, 2, 2, 3), (2, 3, 1, 1))(
    lambda x, w: F.conv_transpose2d(x, w, stride=(2, 3), padding=(0, 1), output_size=(4, 5))
)
case("conv2d_weight", (2, 2, 4, 4), (2, 3, 2, 2))(lambda x, gy: conv2d_weight(x, gy, (3, 2, 3, 3), stride=2, padding=1))
case("batch_norm 2d (training)", (4, 3, 2, 2), (3,), (3,), second_order=False)(
    lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True)
)
case("batch_norm 1d (training)", (5, 3), (3,), (3,), second_order=False)(
    lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True)
)
case("conv-bn-leaky-conv chain", (2, 2, 4, 4), (3, 2, 3, 3), (3,), (3,), (2, 3, 2, 2), second_order=False)(
    # between the convolutions the images are channels-last (see ops/layout.py)
    lambda x, w1, g, b, w2: F.conv2d(
        F.leaky_relu(F.batch_norm(F.conv2d(x, w1, stride=2, padding=1), None, None, g, b, training=True), 0.2), w2
    )
)
case("batch_norm 2d (eps 0.1, no w/b)", (3, 2, 2, 2), second_order=False)(
    lambda x: F.batch_norm(x, None, None, training=True, eps=0.1)
)
case("batch_norm 2d (eval)", (4, 3, 2, 2), (3,), (3,))(
    lambda x, g, b: F.batch_norm(
        x, Tensor(np.linspace(-1, 1, 3)), Tensor(np.linspace(0.5, 2, 3)), g, b, training=False
    )
)
case("avg_pool2d (2x2)", (2, 2, 4, 5))(lambda x: F.avg_pool2d(x, 2))
case("avg_pool2d (2x3)", (2, 2, 4, 7))(lambda x: F.avg_pool2d(x, (2, 3)))
case("upsample (nearest, x2)", (2, 2, 3, 2))(lambda x: F.interpolate(x, scale_factor=2))
case("dropout (fixed mask)", (3, 4))(
    lambda x: F.dropout(x, 0.5, training=True, generator=np.random.default_rng(7))
)


# --- the WGAN-GP gradient penalty: its gradient goes through a gradient -------------------
def _penalty_of_critic(w_conv, w_lin):
    """The penalty E(‖∇D(x̂)‖ - 1)² of a tiny conv critic as a function of its weights,
    at fixed digits and a fixed ε: its gradient needs double backward."""
    rng = np.random.default_rng(1)
    real, fake = Tensor(rng.standard_normal((2, 1, 4, 4))), Tensor(rng.standard_normal((2, 1, 4, 4)))

    def critic(x):
        h = F.leaky_relu(F.conv2d(x, w_conv, stride=2, padding=1), 0.2)
        return F.linear(h.flatten(1), w_lin)

    return gradient_penalty(critic, real, fake, generator=rng)


case("gradient_penalty (conv critic)", (3, 1, 3, 3), (1, 12))(_penalty_of_critic)
