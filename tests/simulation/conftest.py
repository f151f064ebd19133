"""A small synthetic world shared by the simulator's tests (its latent part only: ms)."""

from __future__ import annotations

import pytest

from tastebud.data.synthetic import WorldSpec
from tastebud.simulation.users import UserModel


@pytest.fixture(scope="session")
def model() -> UserModel:
    return UserModel(WorldSpec(users=1000, items=400, days=1, seed=1))
