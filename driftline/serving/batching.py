"""Adaptive batching of single-row requests: concurrent calls share one pass through the pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Turn concurrent single calls into batch calls, adaptively, with no timer to tune.

    A call that finds the model idle runs at once, alone; calls that arrive while a batch is running wait for it
    and then run together as the next batch. So one client sees single-row latency, and many clients share
    each pass through the pipeline (whose per-call overhead is most of a single row's cost).
    """

    def __init__(self, run: Callable[[list[T]], Awaitable[list[R]]], max_size: int = 512) -> None:
        self.run = run
        self.max_size = max_size
        self.pending: list[tuple[T, asyncio.Future[R]]] = []
        self.draining = False

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self.pending.append((item, future))
        if not self.draining:
            self.draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[: self.max_size], self.pending[self.max_size :]
                try:
                    results = await self.run([item for item, _ in batch])
                except Exception as error:  # handed to every caller of this batch
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # the client may have gone away
                        future.set_result(result)
        finally:
            self.draining = False
