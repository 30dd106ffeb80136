"""Shared fixtures."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """One intra-op thread: on a loaded 2-core machine, two threads per process oversubscribe
    the cores and slow small tensors down several-fold (up to ~100x measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
