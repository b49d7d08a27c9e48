"""Part tests run tiny models: one intra-op thread is faster than two fighting over busy cores."""

from __future__ import annotations

import pytest

from tests.support import one_intraop_thread


@pytest.fixture(autouse=True)
def _single_thread():
    with one_intraop_thread():
        yield
