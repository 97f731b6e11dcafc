"""minigan's random numbers: one seeded NumPy generator, like ``torch.manual_seed``.

Initial weights, noise, dropout masks and data shuffling draw from explicit NumPy
generators; the ones that are not handed one use this default. Its state is a small
dict of integers, so a checkpoint can save and restore it exactly.
"""

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Reset the default generator to a known seed; returns it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def default_generator():
    return _generator


def get_rng_state():
    """The default generator's state (a JSON-able dict)."""
    return _generator.bit_generator.state


def set_rng_state(state):
    _generator.bit_generator.state = state
