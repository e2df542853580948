from __future__ import annotations

import os

import pytest
import torch

# Tests must not touch the network or a user's cache.
os.environ.setdefault("CRACKSAM_CACHE", os.path.join(os.path.dirname(__file__), ".cache-never-used"))
# predict/serve/stream default to --runtime auto, which exports the model into that cache; the suite
# runs PyTorch unless a test asks otherwise (tests/test_runtime_cache.py uses a tmp cache).
os.environ.setdefault("CRACKSAM_RUNTIME", "torch")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def tiny_config():
    from cracksam.models import CrackSAMConfig, DeltaConfig

    def make(kind: str = "adapter+lora", image_size: int = 64, **kw):
        return CrackSAMConfig(backbone="tiny", image_size=image_size, delta=DeltaConfig(kind=kind), **kw)

    return make


@pytest.fixture
def images64():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 64, 64, generator=g) * 255

