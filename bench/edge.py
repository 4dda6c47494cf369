"""What the HTTP edge limits cost per request: uvicorn's httptools protocol against threadstore's EdgeProtocol
(src/threadstore/http/edge.py), fed the same GET over a fake transport with a trivial app, so that only the
protocol differs. Prints CPU microseconds per request (thread time: steadier than wall time on a shared
machine), the minimum and the median of interleaved runs.

    .venv/bin/python bench/edge.py [--runs 25] [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from threadstore.http.edge import EdgeLimits, EdgeProtocol

# A GET as the benchmark's clients send it: a thread path, a bearer token, a few ordinary headers.
REQUEST = (
    b"GET /api/threads/thr_AAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    b"Authorization: Bearer " + b"x" * 150 + b"\r\nAccept: application/json\r\nUser-Agent: wrk\r\n\r\n"
)


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def write(self, data: Any) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def per_request(protocol: Callable[..., HttpToolsProtocol], requests: int) -> float:
    config = Config(app=app, log_config=None, access_log=False)
    config.load()
    connection = protocol(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    connection.connection_made(transport)
    started = time.thread_time()
    for _ in range(requests):
        connection.data_received(REQUEST)
        await asyncio.sleep(0)  # the request's task runs and answers
        await asyncio.sleep(0)
    elapsed = time.thread_time() - started
    assert transport.writes >= requests, "not every request was answered"
    connection.connection_lost(None)
    return elapsed / requests * 1e6


async def main(runs: int, requests: int) -> None:
    edge = functools.partial(EdgeProtocol, limits=EdgeLimits(32 * 1024, 100, 10.0, 1000))
    results: dict[str, list[float]] = {"uvicorn httptools": [], "threadstore edge": []}
    for _ in range(runs):
        results["uvicorn httptools"].append(await per_request(HttpToolsProtocol, requests))
        results["threadstore edge"].append(await per_request(edge, requests))
    for name, values in results.items():
        print(f"{name:18} min {min(values):6.2f}  median {statistics.median(values):6.2f} µs CPU per request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    uvloop.run(main(args.runs, args.requests))
