"""Fixtures of the thread endpoint tests (the harness itself lives in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.conftest import new_user


@pytest.fixture
def other_user() -> str:
    """A second user, whose threads the first must never see or touch (and the other way round)."""
    return new_user()
