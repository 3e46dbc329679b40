"""The built-in policies pass the same contract third-party policies use."""

import pytest

from daedal.core import FixedLength, GumbelTemperature, SemiAutoregressive
from daedal.core.testing.contract import PolicyContract


class TestFixedLength(PolicyContract):
    @pytest.fixture
    def policy(self):
        return FixedLength(gen_length=16)


class TestSemiAutoregressive(PolicyContract):
    @pytest.fixture
    def policy(self):
        return SemiAutoregressive(block_length=16, steps=32)


class TestSemiAutoregressiveRandom(PolicyContract):
    @pytest.fixture
    def policy(self):
        return SemiAutoregressive(block_length=32, steps=32, remasking="random")


class TestGumbelTemperature(PolicyContract):
    @pytest.fixture
    def policy(self):
        return GumbelTemperature(temperature=0.8)
