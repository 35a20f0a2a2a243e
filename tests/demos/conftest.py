import pytest
import torch

from robreward.demos.record import record

@pytest.fixture(scope="session")
def reach_file(tmp_path_factory):
    """4 reach expert episodes, recorded once for the tests that only read."""
    path = tmp_path_factory.mktemp("demos") / "reach-expert.h5"
    record("reach", "expert", 4, path, seed=0, num_envs=4, progress=False)
    return path


@pytest.fixture
def random_policy():
    """A factory: random_policy(act_dim, seed) -> callable obs [B, D] -> uniform actions in [-1, 1]."""

    def make(act_dim, seed=0):
        gen = torch.Generator().manual_seed(seed)
        return lambda obs: torch.rand(obs.shape[0], act_dim, generator=gen) * 2 - 1

    return make
