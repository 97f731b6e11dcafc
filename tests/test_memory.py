"""minigan keeps large freed blocks for reuse (backend.keep_freed_memory)."""

import subprocess
import sys

import pytest

# A training step in small: five 12 MB arrays alive at once (a convolution's
# columns are 12.8 MB at batch 64), then all freed. Count the page faults of the
# third such round: memory fresh from the kernel faults on first touch (about
# 2,000 times here, per 4 kB page or per 2 MB huge page); blocks that malloc
# kept and hands out again do not fault at all.
SCRIPT = """
import resource, numpy as np
{setup}
def faults_of_a_round():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    arrays = [np.ones(3 << 20, np.float32) for _ in range(5)]
    del arrays
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults_of_a_round()
faults_of_a_round()
print(faults_of_a_round())
"""


def faults(setup):
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(setup=setup)], capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_large_freed_blocks_are_reused_without_page_faults():
    from minigan import backend

    if not backend.keep_freed_memory():
        pytest.skip("not glibc's malloc: minigan leaves the allocator alone")
    kept, default = faults("import minigan"), faults("")
    assert kept < 100
    assert default > 10 * max(kept, 10)  # without minigan: so the check above can tell the difference
