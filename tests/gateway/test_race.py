"""``race``: an exchange runs until it ends, its client leaves, or its watch ends the stream, and a
cancel from outside (the server shutting the request down) is never mistaken for either."""

from __future__ import annotations

import asyncio

import pytest

from gateway.sessions.watch import StreamWatch
from gateway.upstream.relay import race


class Client:
    """An ASGI ``receive`` whose disconnect the test sends."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def receive(self) -> dict[str, str]:
        return await self.messages.get()

    def leave(self) -> None:
        self.messages.put_nowait({"type": "http.disconnect"})


async def _held(log: list[str]) -> None:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        log.append("work cancelled")
        raise
    finally:
        await asyncio.sleep(0)  # cleanup that awaits, as closing an upstream does
        log.append("work cleaned up")


def test_work_that_ends_wins():
    async def scenario() -> str:
        client = Client()
        watch = StreamWatch(raw_token="t", session_id=None)
        return await race(asyncio.sleep(0.01), receive=client.receive, watch=watch)

    assert asyncio.run(scenario()) == "done"


def test_the_watch_ends_the_work_and_is_named():
    async def scenario() -> tuple[str, list[str], int]:
        log: list[str] = []
        watch = StreamWatch(raw_token="t", session_id=None)
        asyncio.get_running_loop().call_later(0.05, watch.end, "token_invalid")
        outcome = await race(_held(log), receive=Client().receive, watch=watch)
        await asyncio.sleep(0)  # the task goes on awaiting: no cancel of ours is left over
        task = asyncio.current_task()
        assert task is not None
        return outcome, log, task.cancelling()

    assert asyncio.run(scenario()) == ("watch", ["work cancelled", "work cleaned up"], 0)


def test_a_client_that_leaves_ends_the_work():
    async def scenario() -> tuple[str, list[str]]:
        log: list[str] = []
        client = Client()
        asyncio.get_running_loop().call_later(0.05, client.leave)
        outcome = await race(_held(log), receive=client.receive, watch=None)
        return outcome, log

    assert asyncio.run(scenario()) == ("client", ["work cancelled", "work cleaned up"])


def test_an_error_of_the_work_is_raised():
    async def failing() -> None:
        await asyncio.sleep(0)
        raise LookupError("upstream gone")

    async def scenario() -> None:
        await race(failing(), receive=Client().receive, watch=StreamWatch(raw_token="t", session_id=None))

    with pytest.raises(LookupError, match="upstream gone"):
        asyncio.run(scenario())


def test_a_cancel_from_outside_goes_on_even_when_the_watch_ends_too():
    async def scenario() -> tuple[bool, list[str]]:
        log: list[str] = []
        watch = StreamWatch(raw_token="t", session_id=None)
        racing = asyncio.ensure_future(race(_held(log), receive=Client().receive, watch=watch))
        await asyncio.sleep(0.02)
        watch.end("token_invalid")  # both in the same turn of the loop
        racing.cancel()
        try:
            await racing
        except asyncio.CancelledError:
            return True, log
        return False, log

    cancelled, log = asyncio.run(scenario())
    assert cancelled, "race swallowed the server's cancel"
    assert log == ["work cancelled", "work cleaned up"]


def test_the_client_task_is_not_left_behind():
    async def scenario() -> set[asyncio.Task[object]]:
        before = asyncio.all_tasks()
        await race(asyncio.sleep(0), receive=Client().receive, watch=None)
        return asyncio.all_tasks() - before

    assert asyncio.run(scenario()) == set()


def test_a_cancel_from_outside_while_the_client_reader_winds_down_goes_on():
    async def slow_to_stop() -> dict[str, str]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0.1)  # a receive that takes a while to stop: race waits for it
            raise
        return {}

    async def scenario() -> bool:
        racing = asyncio.ensure_future(race(asyncio.sleep(0.01), receive=slow_to_stop, watch=None))
        await asyncio.sleep(0.05)  # the work is done; race is waiting for the client reader
        racing.cancel()
        try:
            await racing
        except asyncio.CancelledError:
            return True
        return False

    assert asyncio.run(scenario()), "race swallowed the server's cancel"
