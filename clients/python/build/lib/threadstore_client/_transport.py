"""The one seam where httpx's exceptions are read (as httpx's own `_transports/default.py` maps httpcore's):
every transport failure leaves here as an `APIConnectionError` that says whether the request may have been
sent, which is what the retry decisions need."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from threadstore_client.errors import APIConnectionError, APITimeoutError

# Failures before a byte of the request left: nothing can have happened on the server.
_NOT_SENT: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except _NOT_SENT as error:
        kind = APITimeoutError if isinstance(error, httpx.TimeoutException) else APIConnectionError
        raise kind(f"could not connect: {error!r}", sent=False) from error
    except httpx.TimeoutException as error:
        raise APITimeoutError(f"no answer in time: {error!r}", sent=True) from error
    except httpx.TransportError as error:
        raise APIConnectionError(f"the connection failed: {error!r}", sent=True) from error
