"""The GANs of the lecture notes, for 28×28 MNIST digits in [-1, 1].

Every discriminator returns a *logit* (one number per image, no sigmoid): the
sigmoid lives inside the loss, ``binary_cross_entropy_with_logits``, which is the
numerically stable way to compute log σ(x).
"""

from . import nn
from .nn import functional as F
from .ops import cat

LATENT_DIM = 100
IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
G_DEPTHS = (2, 4)  # dcgan_generator: its convolutions
D_DEPTHS = (2, 3)  # dcgan_discriminator: its strided convolutions


def mlp_generator(latent_dim=LATENT_DIM, hidden=128):
    """G: z(100) -> Linear(128) -> LeakyReLU(0.01) -> Linear(784) -> tanh -> (1, 28, 28)."""
    return nn.Sequential(
        nn.Linear(latent_dim, hidden),
        nn.LeakyReLU(0.01),
        nn.Linear(hidden, 28 * 28),
        nn.Tanh(),
        nn.Unflatten(1, IMAGE_SHAPE),
    )


def mlp_discriminator(hidden=128, extra_inputs=0):
    """D: (1, 28, 28) -> flatten 784 -> Linear(128) -> LeakyReLU(0.01) -> Linear(1) logit.

    ``extra_inputs``: more features after the 784 pixels (a conditional D's label)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28 + extra_inputs, hidden),
        nn.LeakyReLU(0.01),
        nn.Linear(hidden, 1),
    )


def dcgan_generator(latent_dim=LATENT_DIM, width=64, depth=2):
    """G: z -> Linear(2w·7·7) -> BN -> ReLU -> (2w, 7, 7)
    -> ConvT(2w→w, 4, 2, 1) -> BN -> ReLU -> (w, 14, 14)
    -> ConvT(w→1, 4, 2, 1) -> tanh -> (1, 28, 28).

    DCGAN rules: fractionally-strided convolutions, batch norm everywhere but the
    output, ReLU inside and tanh at the output, N(0, 0.02) weights.

    ``depth=4`` puts a Conv(c→c, 3, 1, 1) -> BN -> ReLU before each transposed
    convolution (at 7×7 and at 14×14), as the lecture notes' Keras G has a
    stride-1 convolution beside its upsampling ones: each pixel is then made from
    its neighbours' features at every scale, not only by the one Linear layer
    (see docs/results.md for what it changes)."""
    if depth not in G_DEPTHS:
        raise ValueError(f"dcgan_generator: depth must be one of {G_DEPTHS}, got {depth!r}")

    def refine(c):  # Conv(c→c, 3, 1, 1) -> BN -> ReLU keeps the size (none at depth 2)
        return [nn.Conv2d(c, c, 3, stride=1, padding=1), nn.BatchNorm2d(c), nn.ReLU()] if depth == 4 else []

    g = nn.Sequential(
        nn.Linear(latent_dim, 2 * width * 7 * 7),
        nn.BatchNorm1d(2 * width * 7 * 7),
        nn.ReLU(),
        nn.Unflatten(1, (2 * width, 7, 7)),
        *refine(2 * width),
        nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        *refine(width),
        nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1),
        nn.Tanh(),
    )
    return nn.init.dcgan_init_(g)


def dcgan_discriminator(width=64, batch_norm=True, in_channels=1, depth=2):
    """D: (1, 28, 28) -> Conv(1→w, 4, 2, 1) -> LeakyReLU(0.2) -> (w, 14, 14)
    -> Conv(w→2w, 4, 2, 1) -> BN -> LeakyReLU(0.2) -> (2w, 7, 7) -> Linear(1) logit.

    No batch norm on D's input layer (a DCGAN rule); ``batch_norm=False`` drops the
    other ones too (a WGAN-GP critic must not normalise across the batch: its
    gradient penalty is per sample). ``in_channels`` > 1 takes label planes too.

    ``depth=3`` adds Conv(2w→4w, 3, 2, 1) -> BN -> LeakyReLU(0.2) -> (4w, 4, 4)
    before the logit. With two layers, the logit is a *linear* sum of features that
    each see a 10×10 patch, so D can judge strokes but hardly the shape of a whole
    digit; the third layer's features see 18×18 and mix the patches non-linearly
    (see docs/results.md for what it changes)."""
    if depth not in D_DEPTHS:
        raise ValueError(f"dcgan_discriminator: depth must be one of {D_DEPTHS}, got {depth!r}")
    layers = [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
    layers += _downsample(width, 2 * width, 4, batch_norm)  # -> (2w, 7, 7)
    channels, side = 2 * width, 7
    if depth == 3:
        layers += _downsample(2 * width, 4 * width, 3, batch_norm)  # -> (4w, 4, 4)
        channels, side = 4 * width, 4
    layers += [nn.Flatten(), nn.Linear(channels * side * side, 1)]
    return nn.init.dcgan_init_(nn.Sequential(*layers))


def _downsample(c_in, c_out, kernel, batch_norm):
    """Conv(c_in→c_out, kernel, stride 2, padding 1) -> [BN] -> LeakyReLU(0.2): half the size."""
    bn = [nn.BatchNorm2d(c_out)] if batch_norm else []
    return [nn.Conv2d(c_in, c_out, kernel, stride=2, padding=1), *bn, nn.LeakyReLU(0.2)]


# --- conditional GAN: G(z, y) and D(x, y) for a digit class y --------------------------
class ConditionalGenerator(nn.Module):
    """G(z, y) = net([z, onehot(y)]): the class joins the noise as 10 more inputs."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, z, labels):
        return self.net(cat([z, F.one_hot(labels, NUM_CLASSES, z)], dim=1))


class ConditionalDiscriminator(nn.Module):
    """D(x, y): the one-hot class joins the image.

    ``as_planes=False`` (MLP): 10 more inputs after the 784 pixels.
    ``as_planes=True`` (DCGAN): 10 more image channels, plane y all ones and the
    others zero, so the first convolution sees the class at every position.
    """

    def __init__(self, net, as_planes):
        super().__init__()
        self.net, self.as_planes = net, as_planes

    def forward(self, x, labels):
        y = F.one_hot(labels, NUM_CLASSES, x)
        if self.as_planes:
            n, _, h, w = x.shape
            planes = y.reshape(n, NUM_CLASSES, 1, 1).expand((n, NUM_CLASSES, h, w))
            return self.net(cat([x, planes], dim=1))
        return self.net(cat([x.flatten(1), y], dim=1))


def _mlp(conditional, critic, d_depth, g_depth, latent_dim):
    if (d_depth, g_depth) != (2, 2):
        raise ValueError(f"d_depth and g_depth apply to the dcgan only (the MLP has no convolutions), got {d_depth}, {g_depth}")
    extra = NUM_CLASSES if conditional else 0
    return mlp_generator(latent_dim + extra), mlp_discriminator(extra_inputs=extra)


def _dcgan(conditional, critic, d_depth, g_depth, latent_dim):
    extra = NUM_CLASSES if conditional else 0
    D = dcgan_discriminator(batch_norm=not critic, in_channels=1 + extra, depth=d_depth)
    return dcgan_generator(latent_dim + extra, depth=g_depth), D


MODELS = {"mlp": _mlp, "dcgan": _dcgan}


def build(name, conditional=False, critic=False, d_depth=2, g_depth=2, latent_dim=LATENT_DIM):
    """(generator, discriminator) for a model name in MODELS.

    ``conditional``: G(z, y) and D(x, y) take the digit class y as well.
    ``critic``: a D fit for WGAN-GP (no batch norm; the MLP D has none anyway).
    ``d_depth``: the DCGAN D's strided convolutions, 2 or 3 (``dcgan_discriminator``).
    ``g_depth``: the DCGAN G's convolutions, 2 or 4 (``dcgan_generator``).
    ``latent_dim``: the size of G's noise z.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(MODELS)}")
    G, D = MODELS[name](conditional, critic, d_depth, g_depth, latent_dim)
    if conditional:
        G, D = ConditionalGenerator(G), ConditionalDiscriminator(D, as_planes=name == "dcgan")
    return G, D
