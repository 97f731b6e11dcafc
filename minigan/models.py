"""The GANs of the lecture notes, for 28×28 MNIST digits in [-1, 1].

Every discriminator returns a *logit* (one number per image, no sigmoid): the
sigmoid lives inside the loss, ``binary_cross_entropy_with_logits``, which is the
numerically stable way to compute log σ(x).
"""

from . import nn

LATENT_DIM = 100
IMAGE_SHAPE = (1, 28, 28)


def mlp_generator(latent_dim=LATENT_DIM, hidden=128):
    """G: z(100) -> Linear(128) -> LeakyReLU(0.01) -> Linear(784) -> tanh -> (1, 28, 28)."""
    return nn.Sequential(
        nn.Linear(latent_dim, hidden),
        nn.LeakyReLU(0.01),
        nn.Linear(hidden, 28 * 28),
        nn.Tanh(),
        nn.Unflatten(1, IMAGE_SHAPE),
    )


def mlp_discriminator(hidden=128):
    """D: (1, 28, 28) -> flatten 784 -> Linear(128) -> LeakyReLU(0.01) -> Linear(1) logit."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(28 * 28, hidden),
        nn.LeakyReLU(0.01),
        nn.Linear(hidden, 1),
    )


def dcgan_generator(latent_dim=LATENT_DIM, width=64):
    """G: z -> Linear(2w·7·7) -> BN -> ReLU -> (2w, 7, 7)
    -> ConvT(2w→w, 4, 2, 1) -> BN -> ReLU -> (w, 14, 14)
    -> ConvT(w→1, 4, 2, 1) -> tanh -> (1, 28, 28).

    DCGAN rules: fractionally-strided convolutions, batch norm everywhere but the
    output, ReLU inside and tanh at the output, N(0, 0.02) weights."""
    g = nn.Sequential(
        nn.Linear(latent_dim, 2 * width * 7 * 7),
        nn.BatchNorm1d(2 * width * 7 * 7),
        nn.ReLU(),
        nn.Unflatten(1, (2 * width, 7, 7)),
        nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1),
        nn.Tanh(),
    )
    return nn.init.dcgan_init_(g)


def dcgan_discriminator(width=64, batch_norm=True):
    """D: (1, 28, 28) -> Conv(1→w, 4, 2, 1) -> LeakyReLU(0.2) -> (w, 14, 14)
    -> Conv(w→2w, 4, 2, 1) -> BN -> LeakyReLU(0.2) -> (2w, 7, 7) -> Linear(1) logit.

    No batch norm on D's input layer (a DCGAN rule); ``batch_norm=False`` drops the
    other one too (a WGAN-GP critic must not normalise across the batch)."""
    layers = [
        nn.Conv2d(1, width, 4, stride=2, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(2 * width))
    layers += [nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(2 * width * 7 * 7, 1)]
    return nn.init.dcgan_init_(nn.Sequential(*layers))


MODELS = {
    "mlp": (mlp_generator, mlp_discriminator),
    "dcgan": (dcgan_generator, dcgan_discriminator),
}


def build(name):
    """(generator, discriminator) for a model name in MODELS."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(MODELS)}")
    make_g, make_d = MODELS[name]
    return make_g(), make_d()
