"""The SDK's mocked-transport fixtures, for the commands built on it."""

from tests.unit.sdk.conftest import sleeps

__all__ = ["sleeps"]
