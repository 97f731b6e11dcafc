"""minigan's random numbers: one seeded NumPy generator, like ``torch.manual_seed``.

Initial weights, noise, dropout masks and data shuffling draw from explicit NumPy
generators; the ones that are not handed one use this default. Its state is a small
dict of integers, so a checkpoint can save and restore it exactly.
"""

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Reseed the default generator; returns it.

    It is reseeded in place (its state becomes that of a fresh generator with this
    seed) rather than replaced, so objects that hold it draw from the new stream too.
    """
    _generator.bit_generator.state = np.random.default_rng(seed).bit_generator.state
    return _generator


def default_generator():
    return _generator


def get_rng_state():
    """The default generator's state (a JSON-able dict)."""
    return _generator.bit_generator.state


def set_rng_state(state):
    _generator.bit_generator.state = state
