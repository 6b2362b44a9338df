"""ClientPool: one thread per client at a time, at most `size` clients, waits bounded."""

from __future__ import annotations

import threading
import time

import pytest

from utils.client_pool import ClientPool, NoClientInTime


def test_clients_are_made_on_demand_up_to_the_size_and_reused() -> None:
    made: list[object] = []

    def factory() -> object:
        made.append(object())
        return made[-1]

    pool: ClientPool[object] = ClientPool(factory, size=2)
    deadline = time.monotonic() + 1
    with pool.lease(deadline) as first, pool.lease(deadline) as second:
        assert first is not second
        with pytest.raises(NoClientInTime), pool.lease(time.monotonic() + 0.05):
            pass
    with pool.lease(deadline) as again:
        assert again in made
    assert len(made) == 2


def test_a_waiting_lease_gets_the_client_given_back() -> None:
    pool: ClientPool[str] = ClientPool(lambda: "client", size=1)
    got: list[str] = []

    def wait_for_a_client() -> None:
        with pool.lease(time.monotonic() + 5) as client:
            got.append(client)

    with pool.lease(time.monotonic() + 1):
        waiter = threading.Thread(target=wait_for_a_client)
        waiter.start()
        time.sleep(0.05)
        assert got == []  # the only client is busy
    waiter.join(5)
    assert got == ["client"]


def test_a_failed_build_frees_its_place() -> None:
    attempts = iter([RuntimeError("no credentials"), "client"])

    def factory() -> str:
        result = next(attempts)
        if isinstance(result, Exception):
            raise result
        return result

    pool: ClientPool[str] = ClientPool(factory, size=1)
    with pytest.raises(RuntimeError), pool.lease(time.monotonic() + 1):
        pass
    with pool.lease(time.monotonic() + 0.1) as client:
        assert client == "client"
