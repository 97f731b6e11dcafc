"""``mg.detect_anomaly()``: make backward name the op whose gradient first went bad.

As in PyTorch, this is a debugging aid: while it is on, every gradient an op's
backward returns is checked for NaN and infinity, which costs a pass over each
gradient, so it is off by default.
"""

import contextlib

_enabled = False


@contextlib.contextmanager
def detect_anomaly():
    global _enabled
    previous, _enabled = _enabled, True
    try:
        yield
    finally:
        _enabled = previous


def check_gradient(fn, grad):
    """Raise if anomaly detection is on and ``grad`` (from ``fn.backward``) is not finite."""
    if not _enabled:
        return
    from .backend import get_xp

    data = grad.data
    if not bool(get_xp(data).isfinite(data).all()):
        kind = "NaN" if bool(get_xp(data).isnan(data).any()) else "infinite"
        raise FloatingPointError(
            f"detect_anomaly: {type(fn).__name__}.backward returned {kind} values "
            f"(gradient of shape {tuple(data.shape)}); this is the first op whose gradient went bad"
        )
