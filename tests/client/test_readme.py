"""The README's Python client example runs as written: its code block, with `OPENAI_BASE_URL` pointing at a
local OpenAI-compatible stub that streams a chat completion, stores the streamed reply in a real server. And
`pip install ./clients/python` works in a fresh virtualenv, whose client then talks to a server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.harness.databases import new_user
from tests.harness.processes import ServeProcess
from threadstore_client import AsyncClient

from .conftest import token_of

ROOT = Path(__file__).resolve().parents[2]
WORDS = ["Day ", "one: ", "Belém ", "and ", "pastéis 🥐. ", "Day ", "two: ", "the ", "aquarium."]


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Python client", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "the README's Python client section has no python code block"
    return found.group(1)


class _ChatCompletions(BaseHTTPRequestHandler):
    """`POST …/chat/completions` with `stream: true`, answered as OpenAI does: SSE `data:` chunks, `[DONE]`."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path.endswith("/chat/completions") and body["stream"] is True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        deltas = [{"role": "assistant", "content": ""}] + [{"content": word} for word in WORDS] + [{}]
        for n, delta in enumerate(deltas):
            chunk = {
                "id": "chatcmpl-stub",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if n == len(deltas) - 1 else None}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def openai_stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatCompletions)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.sqlite_only
async def test_the_readme_example_stores_a_streamed_openai_reply(server: ServeProcess, openai_stub: str) -> None:
    user = new_user()
    env = {
        **os.environ,
        "THREADSTORE_URL": server.base_url,
        "THREADSTORE_TOKEN": token_of(user),
        "OPENAI_BASE_URL": openai_stub,
        "OPENAI_API_KEY": "sk-stub",
    }
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", readme_example()], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"completed {''.join(WORDS)}"
    async with AsyncClient(server.base_url, token_of(user)) as client:
        (thread,) = [t async for t in client.threads.list_all()]
        question, reply = [m async for m in client.messages.list_all(thread.id)]
    assert question.content == "Plan three days in Lisbon with kids"
    assert (reply.role, reply.content, reply.model, reply.status) == (
        "assistant",
        "".join(WORDS),
        "gpt-4o-mini",
        "completed",
    )


@pytest.mark.sqlite_only
async def test_the_client_installs_in_a_fresh_virtualenv_and_calls_a_server(
    server: ServeProcess, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"

    def install() -> None:
        # From a copy: pip's build writes build/ and *.egg-info next to the sources it builds.
        source = shutil.copytree(
            ROOT / "clients" / "python", tmp_path / "source", ignore=shutil.ignore_patterns("build")
        )
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only what pip installed
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", str(source)],
            check=True,
            timeout=600,
            env=env,
        )

    await asyncio.to_thread(install)
    user = new_user()
    script = (
        "import sys\n"
        "from threadstore_client import Client\n"
        "with Client(sys.argv[1], sys.argv[2]) as client:\n"
        "    thread = client.threads.create(title='from a fresh venv')\n"
        "    print(client.threads.get(thread.id).title)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = await asyncio.to_thread(
        subprocess.run,
        [str(python), "-c", script, server.base_url, token_of(user)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "from a fresh venv"
