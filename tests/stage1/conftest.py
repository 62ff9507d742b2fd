"""Fixtures of the builder tests: scripted OpenAI-compatible servers on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from srpo_data.offline.fake_endpoint import FakeEndpoint, Script


@pytest.fixture
def fake_server() -> Iterator[Callable[..., FakeEndpoint]]:
    """Factory: ``fake_server(answers=..., **script_fields)`` -> a started FakeEndpoint."""
    started: list[FakeEndpoint] = []

    def start(**kw: object) -> FakeEndpoint:
        srv = FakeEndpoint(Script(**kw))  # type: ignore[arg-type]
        srv.start_in_thread()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
