"""Seconds from a fresh ``python`` to the end of the example's first DCGAN training step.

    python benchmarks/startup.py

Cold: numba compiles every kernel (one run, with an empty temporary cache folder
as ``NUMBA_CACHE_DIR``, so the cache in ``kernels/__pycache__`` is left alone).
Warm: the same again, now that the compiled kernels are cached in that folder
(what every run after the first one sees); the best of three runs.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

FIRST_STEP = """
from minigan.train import DCGAN_RUN_SETTINGS, Config, Trainer
trainer = Trainer(Config(model="dcgan", **DCGAN_RUN_SETTINGS))  # as examples/mnist_gan.py runs it
trainer.train_step(*next(iter(trainer.loader)))
"""


def seconds_to_first_step(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", FIRST_STEP], env=env, check=True)
    return time.perf_counter() - start


def measure():
    with tempfile.TemporaryDirectory() as cache_dir:
        cold = seconds_to_first_step(cache_dir)
        warm = min(seconds_to_first_step(cache_dir) for _ in range(3))
    return {"cold": cold, "warm": warm}


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()  # no options; --help
    result = measure()
    print(f"cold start {result['cold']:.1f} s, warm start {result['warm']:.1f} s")
