"""Batching a model's text chunks into deltas, pure: flush when `flush_chars` characters are buffered or
`flush_interval` seconds have passed since the last flush (checked as chunks arrive), never more than a delta
may hold."""

from __future__ import annotations

import time
from collections.abc import Callable

MAX_DELTA = 65_536  # characters (code points) a delta's text may hold (API.md)


class Batcher:
    def __init__(self, flush_chars: int, flush_interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        if flush_chars < 1:
            raise ValueError("flush_chars must be at least 1")
        self.flush_chars = min(flush_chars, MAX_DELTA)
        self.flush_interval = flush_interval
        self._clock = clock
        self._buffer: list[str] = []
        self._size = 0
        self._last = clock()

    def add(self, chunk: str) -> list[str]:
        """The texts to send now that `chunk` arrived (often none)."""
        if chunk:
            self._buffer.append(chunk)
            self._size += len(chunk)
        if self._size >= self.flush_chars or (self._size and self._clock() - self._last >= self.flush_interval):
            return self.rest()
        return []

    def rest(self) -> list[str]:
        """Everything buffered, as deltas of at most MAX_DELTA characters."""
        text = "".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        self._last = self._clock()
        return [text[i : i + MAX_DELTA] for i in range(0, len(text), MAX_DELTA)]


class Reply:
    """The deltas of one streamed reply still to send, and the stored length they start at: what a sender
    needs to resume after a failed delta (the same offset and text) or to flush before closing."""

    def __init__(self, thread_id: str, message_id: str) -> None:
        self.thread_id = thread_id
        self.message_id = message_id
        self.offset = 0
        self.pending: list[str] = []

    def queue(self, texts: list[str]) -> None:
        self.pending.extend(texts)

    def sent(self) -> None:
        """The first pending delta was stored."""
        self.offset += len(self.pending.pop(0))


def abort_reason(error: BaseException) -> str:
    """The `finish_reason` of a reply whose chunks stopped with `error`."""
    cancelled = isinstance(error, KeyboardInterrupt | GeneratorExit) or type(error).__name__ == "CancelledError"
    return "cancelled" if cancelled else "error"
