"""Ending event streams when the server is asked to stop.

Uvicorn runs the lifespan shutdown only after every open response has finished, and an event stream never
finishes by itself: it would hold shutdown for the whole graceful timeout and then be cut off. So the exit
signal itself is chained: the streams end first (cleanly: the client resumes with Last-Event-ID), then the
server's own handler runs as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def on_exit_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Runs `callback` on the event loop when SIGINT/SIGTERM arrives, then the previous handler. Returns
    a function that puts the previous handlers back (if nobody replaced ours meanwhile)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals can only be handled in the main thread
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handler(sig: int, frame: FrameType | None) -> None:
        # A handler left behind (another app in this process replaced ours and restored it late) may
        # outlive its loop: the previous handler must run regardless.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback)
        before = previous[sig]
        if callable(before):
            before(sig, frame)
        elif before == signal.SIG_DFL:
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)

    for sig in _SIGNALS:
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, before in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, before)

    return restore
