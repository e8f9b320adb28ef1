"""Objects made once per asyncio event loop: a redis.asyncio connection, a future, a task is bound
to the loop that made it, so each loop (daphne's, a test's) gets its own."""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def one_per_event_loop(factory: Callable[[], T]) -> Callable[[], T]:
    """Turn `factory` into a getter of its result for the running loop, made there on first use."""
    made: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()

    @functools.wraps(factory)
    def for_the_running_loop() -> T:
        loop = asyncio.get_running_loop()
        value = made.get(loop)
        if value is None:
            value = made[loop] = factory()
        return value

    return for_the_running_loop
