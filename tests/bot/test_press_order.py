"""One user's presses take turns in arrival order; everything else stays concurrent."""

from __future__ import annotations

import asyncio

import pytest
from telegram import CallbackQuery, Chat, Message, Update, User

from bot.press_order import PressesInOrder, end_turn, presser_of


def press(update_id: int, user_id: int) -> Update:
    user = User(user_id, f"U{user_id}", False)
    return Update(update_id, callback_query=CallbackQuery(f"q{update_id}", user, "instance", data="r:1:1"))


def message(update_id: int, user_id: int) -> Update:
    user = User(user_id, f"U{user_id}", False)
    chat = Chat(user_id, "private")
    return Update(update_id, message=Message(update_id, None, chat, from_user=user, text="hi"))  # type: ignore[arg-type]


async def test_one_users_presses_run_in_arrival_order_even_when_the_first_is_slower() -> None:
    processor = PressesInOrder()
    done: list[int] = []

    async def handle(update_id: int, delay: float) -> None:
        await asyncio.sleep(delay)
        done.append(update_id)

    # Without the line the second (quicker) press would finish first.
    await asyncio.gather(
        processor.process_update(press(1, 7), handle(1, 0.05)),
        processor.process_update(press(2, 7), handle(2, 0.0)),
        processor.process_update(press(3, 7), handle(3, 0.01)),
    )
    assert done == [1, 2, 3]
    assert len(processor.lines) == 0  # nothing kept once the presses are handled


async def test_other_users_presses_and_messages_do_not_wait() -> None:
    processor = PressesInOrder()
    released = asyncio.Event()

    async def waits() -> None:
        await asyncio.wait_for(released.wait(), 2)

    async def releases() -> None:
        released.set()

    # The first press waits for things that would never come if they were queued behind it.
    await asyncio.gather(
        processor.process_update(press(1, 7), waits()),
        processor.process_update(press(2, 8), releases()),
    )
    released.clear()
    await asyncio.gather(
        processor.process_update(press(3, 7), waits()),
        processor.process_update(message(4, 7), releases()),
    )


async def test_an_answered_press_lets_the_next_go_while_it_goes_on() -> None:
    processor = PressesInOrder()
    next_ran = asyncio.Event()
    turns_seen: list[bool] = []

    async def generates() -> None:
        end_turn()  # answered once admitted; the generation goes on
        end_turn()  # a second answer changes nothing
        await asyncio.wait_for(next_ran.wait(), 2)

    async def rates() -> None:
        turns_seen.append(len(processor.lines) == 1)
        next_ran.set()

    await asyncio.gather(
        processor.process_update(press(1, 7), generates()),
        processor.process_update(press(2, 7), rates()),
    )
    assert turns_seen == [True]
    assert len(processor.lines) == 0


async def test_a_failed_or_cancelled_press_does_not_block_the_line() -> None:
    processor = PressesInOrder()
    done: list[int] = []

    async def fails() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("handler failed")

    async def blocks() -> None:
        await asyncio.sleep(10)

    async def handle(update_id: int) -> None:
        done.append(update_id)

    first = asyncio.ensure_future(processor.process_update(press(1, 7), fails()))
    stuck = asyncio.ensure_future(processor.process_update(press(2, 8), blocks()))
    waiting = asyncio.ensure_future(processor.process_update(press(3, 8), handle(3)))
    await asyncio.sleep(0.005)
    waiting.cancel()  # cancelled while in line behind the stuck press
    stuck.cancel()
    with pytest.raises(RuntimeError):
        await first
    for task in (stuck, waiting):
        with pytest.raises(asyncio.CancelledError):
            await task
    await processor.process_update(press(4, 7), handle(4))
    await processor.process_update(press(5, 8), handle(5))
    assert done == [4, 5]
    assert len(processor.lines) == 0


def test_only_presses_have_a_presser() -> None:
    assert presser_of(press(1, 7)) == 7
    assert presser_of(message(2, 7)) is None
    assert presser_of(object()) is None
