"""app/waits.py behaves as the asyncio Event and Queue it stands in for, where the app and
Uvicorn use them."""

import asyncio

from app.waits import Flag, Inbox


def test_flag_wakes_every_waiter_once_set_and_waits_again_once_cleared():
    async def go():
        flag = Flag()
        woken = []

        async def waiter(name):
            await flag.wait()
            woken.append(name)

        tasks = [asyncio.create_task(waiter(n)) for n in "abc"]
        await asyncio.sleep(0)
        assert woken == []
        assert not flag.is_set()
        flag.set()
        await asyncio.gather(*tasks)
        assert sorted(woken) == ["a", "b", "c"]
        assert await flag.wait() is True  # set: returns at once
        flag.clear()
        late = asyncio.create_task(flag.wait())
        await asyncio.sleep(0.01)
        assert not late.done()
        flag.set()
        assert await late is True

    asyncio.run(go())


def test_flag_waiter_is_a_future_for_asyncio_wait_and_a_cancelled_one_is_dropped():
    async def go():
        flag = Flag()
        gone = flag.waiter()
        gone.cancel()
        kept = flag.waiter()
        assert flag._waiters == [kept]  # the cancelled one did not stay
        timer = asyncio.ensure_future(asyncio.sleep(0.05))
        done, _ = await asyncio.wait({kept, timer}, return_when=asyncio.FIRST_COMPLETED)
        assert kept not in done
        flag.set()
        assert await kept is True
        assert flag.waiter().done()  # already set: done at once

    asyncio.run(go())


def test_a_wait_cancelled_leaves_the_flag_working_for_the_others():
    async def go():
        flag = Flag()
        cancelled = asyncio.create_task(flag.wait())
        other = asyncio.create_task(flag.wait())
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        flag.set()
        assert await other is True
        assert cancelled.cancelled()

    asyncio.run(go())


def test_inbox_is_first_in_first_out_and_get_waits_for_a_put():
    async def go():
        inbox = Inbox()
        assert inbox.empty()
        inbox.put_nowait(1)
        inbox.put_nowait(2)
        assert [await inbox.get(), await inbox.get()] == [1, 2]
        assert inbox.empty()
        getter = asyncio.create_task(inbox.get())
        await asyncio.sleep(0.01)
        assert not getter.done()
        inbox.put_nowait({"type": "websocket.disconnect"})
        assert await asyncio.wait_for(getter, 1) == {"type": "websocket.disconnect"}

    asyncio.run(go())


def test_two_getters_each_get_one_item():
    async def go():
        inbox = Inbox()
        getters = [asyncio.create_task(inbox.get()) for _ in range(2)]
        await asyncio.sleep(0)
        inbox.put_nowait("a")
        await asyncio.sleep(0.01)
        assert sum(g.done() for g in getters) == 1  # the other waits for the next item
        inbox.put_nowait("b")
        assert sorted(await asyncio.gather(*getters)) == ["a", "b"]

    asyncio.run(go())
