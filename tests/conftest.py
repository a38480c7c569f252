import os
import signal
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # reference_impl / official_layouts helpers

torch.set_num_threads(2)

# Interrupt tests send SIGINT as a terminal's Ctrl-C does. A shell starts background jobs with
# SIGINT ignored (and runs keep an ignored signal ignored, on purpose), so give this process and
# the commands it starts the interactive default whatever shell launched the suite.
signal.signal(signal.SIGINT, signal.default_int_handler)

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "benchmarks")


@pytest.fixture
def benchmarks_on_path():
    """benchmarks/ is a folder of scripts, not a package: importable for one test."""
    sys.path.insert(0, BENCHMARKS)
    yield
    sys.path.remove(BENCHMARKS)


# Tiny clip geometry used across model tests: 4 frames of 32x32 -> token grid (2, 2, 2).
FRAMES, SIZE = 4, 32


@pytest.fixture
def clip():
    return torch.randn(2, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def tiny():
    """Options that shrink any video model of the registry to the test geometry."""
    return dict(num_frames=FRAMES, img_size=SIZE, depth=2)
