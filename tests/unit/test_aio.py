"""update_async: the same update on a worker thread, cancellable from asyncio."""

from __future__ import annotations

import asyncio
import threading

import pytest

import mpupdate
from mpupdate import Outcome
from mpupdate.errors import Step
from mpupdate.fakes import FakeMpClient, FakeUpdate


def test_update_async_returns_the_result_and_reports_progress_on_the_loop_thread() -> None:
    threads: set[int] = set()
    percents: list[int] = []

    def progress(p: mpupdate.Progress) -> None:
        threads.add(threading.get_ident())
        percents.append(p.percent)

    async def main() -> mpupdate.UpdateResult:
        result = await mpupdate.update_async(
            backend=FakeMpClient("updated", delivery="thread"), progress=progress
        )
        await asyncio.sleep(0)  # let the last progress callbacks run
        return result

    result = asyncio.run(main())
    assert result.outcome is Outcome.UPDATED
    assert threads == {threading.get_ident()}
    assert percents[-1] == 100
    assert len(percents) == 16


def test_update_async_raises_update_error_like_update() -> None:
    async def main() -> None:
        await mpupdate.update_async(backend=FakeMpClient("network-failure", delivery="thread"))

    with pytest.raises(mpupdate.UpdateNetworkError) as caught:
        asyncio.run(main())
    assert caught.value.function is Step.UPDATE_COMPLETE


def test_cancelling_the_task_aborts_the_update_and_closes_it() -> None:
    running = threading.Event()

    def hold(update: FakeUpdate, index: int, item: object) -> None:
        if index == 5:  # the DLL's worker waits here, mid-update, until the abort arrives
            running.set()
            update.abort_event.wait(10)

    fake = FakeMpClient("cancelled", delivery="thread", before_notify=hold)

    async def main() -> None:
        task = asyncio.ensure_future(mpupdate.update_async(backend=fake))
        await asyncio.get_running_loop().run_in_executor(None, running.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert fake.updates[0].aborted
    assert fake.updates[0].complete_hresult == 0x80004004
    assert fake.open_handles == {}


def test_a_raising_progress_function_cancels_and_comes_out_of_the_await() -> None:
    # progress runs on the loop thread, after the fact: hold the DLL's worker at the seventh
    # notification until the abort arrives, so the update is still running when it raises.
    def hold(update: FakeUpdate, index: int, item: object) -> None:
        if index == 6:
            update.abort_event.wait(10)

    fake = FakeMpClient("cancelled", delivery="thread", before_notify=hold)

    def explode(p: mpupdate.Progress) -> None:
        if p.percent >= 10:
            raise RuntimeError("enough")

    async def main() -> None:
        await mpupdate.update_async(backend=fake, progress=explode)

    with pytest.raises(RuntimeError, match="enough"):
        asyncio.run(main())
    assert fake.updates[0].aborted
    assert fake.updates[0].delivered[-1] == 0x800D
    assert fake.updates[0].complete_hresult == 0x80004004
