"""The three GAN losses of the lecture notes, each a D loss and a G loss.

D's output is a logit ℓ, and D(x) = σ(ℓ) is the probability that x is real. With
BCE(ℓ, t) = -[t·log σ(ℓ) + (1 - t)·log(1 - σ(ℓ))]:

* ``minimax`` (the original game, min_G max_D V):
      V(D, G) = E log D(x) + E log(1 - D(G(z)))
      D loss  = BCE(ℓ_real, t) + BCE(ℓ_fake, 0)      (= -V when t = 1)
      G loss  = E log(1 - D(G(z))) = -BCE(ℓ_fake, 0)
  Early on D rejects the fakes confidently, D(G(z)) ≈ 0, where log(1 - D) is flat:
  G's gradient vanishes.
* ``nonsaturating``: the same D loss, but G minimises -E log D(G(z)) = BCE(ℓ_fake, 1),
  whose gradient is strongest exactly when D(G(z)) ≈ 0.
* ``wgan-gp`` (Wasserstein GAN with gradient penalty): D is a *critic* whose score
  is not a probability. It estimates the Wasserstein distance
      W ≈ E D(x) - E D(G(z))
  which the critic maximises and G minimises, under the constraint that D is
  1-Lipschitz, enforced softly by the gradient penalty (see ``gradient_penalty``):
      D loss = E D(G(z)) - E D(x) + λ·E (‖∇D(x̂)‖₂ - 1)²
      G loss = -E D(G(z))

One-sided label smoothing: D's target for real digits is t = 0.9 instead of 1 (never
for the fakes), so D is never rewarded for being certain. Only the BCE losses have
targets; the critic has none.

Each ``d_loss`` returns (loss, D's raw outputs on the real batch, on the fake batch).
"""

from . import backend
from .autograd import enable_grad, grad
from .nn import functional as F
from .random import default_generator
from .tensor import Tensor


def _full(value, like):
    return Tensor(backend.get_xp(like.data).full(like.shape, value, dtype=like.dtype))


class _BCELoss:
    """The D loss that minimax and non-saturating share."""

    def __init__(self, real_target=0.9):
        if not 0 < real_target <= 1:
            raise ValueError(f"label smoothing target must be in (0, 1], got {real_target}")
        self.real_target = real_target

    def d_loss(self, D, real, fake, cond=()):
        d_real, d_fake = D(real, *cond), D(fake, *cond)
        loss = F.binary_cross_entropy_with_logits(d_real, _full(self.real_target, d_real)) + \
            F.binary_cross_entropy_with_logits(d_fake, _full(0.0, d_fake))
        return loss, d_real, d_fake

    @staticmethod
    def d_value(logit):
        """D's output as the learner reads it: the probability σ(ℓ) of "real"."""
        return logit.sigmoid()


class Minimax(_BCELoss):
    def g_loss(self, d_fake):
        return -F.binary_cross_entropy_with_logits(d_fake, _full(0.0, d_fake))  # E log(1 - σ(ℓ))


class NonSaturating(_BCELoss):
    def g_loss(self, d_fake):
        return F.binary_cross_entropy_with_logits(d_fake, _full(1.0, d_fake))  # -E log σ(ℓ)


def gradient_penalty(D, real, fake, cond=(), generator=None):
    """E (‖∇ₓ D(x̂)‖₂ - 1)² at random points x̂ = ε·x + (1 - ε)·G(z), ε ~ U(0, 1) per sample.

    The optimal critic has gradient norm 1 almost everywhere between the two
    distributions, so the penalty pulls it there. ∇ₓ D(x̂) is computed with
    ``create_graph=True``: it is itself a graph, and the penalty's gradient with
    respect to D's weights differentiates through it (double backward).
    """
    rng = generator or default_generator()
    eps = backend.to_device(rng.random((real.shape[0],) + (1,) * (real.ndim - 1)), real.device).astype(real.dtype)
    # x̂ is a new leaf: the penalty is about D's slope at x̂, not about how x̂ was made.
    x_hat = Tensor(eps * real.data + (1 - eps) * fake.data, requires_grad=True)
    with enable_grad():  # the slope is needed even where the loss is only evaluated
        (slope,) = grad(D(x_hat, *cond).sum(), x_hat, create_graph=True)  # each sample's own ∇D
    # A tiny constant under the root keeps the norm differentiable at a zero gradient.
    norms = ((slope * slope).flatten(1).sum(1) + 1e-12).sqrt()
    return ((norms - 1) ** 2).mean()


class WGANGP:
    def __init__(self, gp_weight=10.0, generator=None):
        self.gp_weight = gp_weight
        self.generator = generator or default_generator()  # draws the interpolation ε

    def d_loss(self, D, real, fake, cond=()):
        d_real, d_fake = D(real, *cond), D(fake, *cond)
        penalty = gradient_penalty(D, real, fake, cond, self.generator)
        return d_fake.mean() - d_real.mean() + self.gp_weight * penalty, d_real, d_fake

    def g_loss(self, d_fake):
        return -d_fake.mean()

    @staticmethod
    def d_value(score):
        return score  # a critic's score is not a probability: shown as it is


LOSSES = {"minimax": Minimax, "nonsaturating": NonSaturating, "wgan-gp": WGANGP}


def make(name, real_target=0.9, gp_weight=10.0, generator=None):
    """The loss object for a name in LOSSES (``real_target`` for the BCE losses,
    ``gp_weight`` λ and the ε generator for WGAN-GP)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}: expected one of {', '.join(LOSSES)}")
    if name == "wgan-gp":
        return WGANGP(gp_weight, generator)
    return LOSSES[name](real_target)
