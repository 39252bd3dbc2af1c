"""Pytest fixtures around the iQmetrix simulator.

conftest.py imports these (`from tests.simulator_fixtures import simulator  # noqa`), so every
test can ask for `simulator`: a fresh fake accounts host on a free 127.0.0.1 port, with the demo
account, stopped after the test. Its base URL is `simulator.url`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from onboarding.simulator import Simulator


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    sim = Simulator(host="127.0.0.1", port=0)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
