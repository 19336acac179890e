"""Shared test fixtures: repository paths."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small tensor work stalls when two threads share a busy 2-core machine: every test
    runs with one (and a test that changes it, e.g. the CLI's --threads, does not leak)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
