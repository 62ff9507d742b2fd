"""The endpoint client's slot scheduler and its retry wait."""

from __future__ import annotations

import asyncio

import pytest
from tenacity import RetryCallState

from srpo_data.stage1.builder.client import EndpointError, PrioritySemaphore, _WaitRetryAfter
from srpo_data.stage1.builder.config import EndpointConfig


@pytest.mark.parametrize(
    "arrivals, expected_order",
    [
        pytest.param([("rev-a", 2), ("att-b", 0), ("ref-c", 1)], ["att-b", "ref-c", "rev-a"], id="lower-priority-value-first"),
        pytest.param([("a1", 0), ("a2", 0), ("a3", 0)], ["a1", "a2", "a3"], id="fifo-within-a-priority"),
        pytest.param([("r1", 2), ("a1", 0), ("r2", 2), ("a2", 0)], ["a1", "a2", "r1", "r2"], id="mixed"),
    ],
)
def test_priority_semaphore_grants_in_order(arrivals: list[tuple[str, int]], expected_order: list[str]) -> None:
    async def scenario() -> list[str]:
        sem = PrioritySemaphore(1)
        await sem.acquire()  # hold the only slot while the others queue up
        order: list[str] = []

        async def waiter(name: str, prio: int) -> None:
            await sem.acquire(prio)
            order.append(name)
            sem.release()

        tasks = []
        for name, prio in arrivals:
            tasks.append(asyncio.create_task(waiter(name, prio)))
            await asyncio.sleep(0)
        sem.release()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == expected_order


def test_priority_semaphore_cancelled_waiter_does_not_leak_a_slot() -> None:
    async def scenario() -> int:
        sem = PrioritySemaphore(1)
        await sem.acquire()
        cancelled = asyncio.create_task(sem.acquire(0))
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        sem.release()
        # The slot must be free again: two acquire/release rounds finish at once.
        for _ in range(2):
            await asyncio.wait_for(sem.acquire(), 1)
            sem.release()
        return sem._free

    assert asyncio.run(scenario()) == 1


@pytest.mark.parametrize(
    "retry_after, attempt, low, high",
    [
        pytest.param(None, 1, 0.1, 0.2, id="first-backoff"),
        pytest.param(None, 3, 0.4, 0.5, id="doubles"),
        pytest.param(None, 20, 1.0, 1.1, id="capped-at-backoff-max"),
        pytest.param(5.0, 1, 5.0, 5.0, id="retry-after-wins-when-longer"),
        pytest.param(0.01, 3, 0.4, 0.5, id="backoff-wins-when-longer"),
        pytest.param(999.0, 1, 30.0, 30.0, id="retry-after-capped"),
    ],
)
def test_wait_honours_retry_after(retry_after: float | None, attempt: int, low: float, high: float) -> None:
    cfg = EndpointConfig(base_url="http://h/v1", model="m", backoff_initial=0.1, backoff_max=1.0, max_retry_after=30.0)
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    state.set_exception((EndpointError, EndpointError("http_429", transient=True, retry_after=retry_after), None))
    wait = _WaitRetryAfter(cfg)(state)
    assert low <= wait <= high
