"""The command line as a user meets it: `token`, `migrate`, and `serve` answering the README walk-through
on the SQLite default in a real uvicorn process."""

from __future__ import annotations

import stat
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.conftest import JWT_SECRET
from tests.harness.processes import THREADSTORE, ServeProcess, threadstore_env


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*THREADSTORE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_token_is_signed_with_the_configured_secret(tmp_path: Path) -> None:
    result = _cli("token", "--user", "alice", "--ttl", "60", env=threadstore_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert 0 < claims["exp"] - time.time() <= 60


def test_token_expires_in_a_day_unless_told_otherwise(tmp_path: Path) -> None:
    result = _cli("token", "--user", "alice", env=threadstore_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), JWT_SECRET, algorithms=["HS256"])
    assert isinstance(claims["exp"], int)
    assert abs(claims["exp"] - (time.time() + 86_400)) < 60


def test_sqlite_default_generates_a_private_secret_once(tmp_path: Path) -> None:
    first = _cli("token", "--user", "a", env=threadstore_env(tmp_path, jwt_secret=None), cwd=tmp_path)
    second = _cli("token", "--user", "a", env=threadstore_env(tmp_path, jwt_secret=None), cwd=tmp_path)
    secret_file = tmp_path / "data" / "jwt-secret"
    assert first.returncode == second.returncode == 0
    assert "generated a JWT secret" in first.stderr
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip()
    for result in (first, second):
        assert jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"])["sub"] == "a"


def test_postgres_without_a_secret_is_refused(tmp_path: Path) -> None:
    env = threadstore_env(tmp_path, database_url="postgresql+asyncpg://postgres@127.0.0.1:5432/x", jwt_secret=None)
    result = _cli("token", "--user", "a", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "THREADSTORE_JWT_SECRET must be set" in result.stderr


def test_short_secret_is_refused(tmp_path: Path) -> None:
    result = _cli("token", "--user", "a", env=threadstore_env(tmp_path, jwt_secret="short"), cwd=tmp_path)
    assert result.returncode == 2
    assert "at least 32 bytes" in result.stderr


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    result = _cli("migrate", env=threadstore_env(tmp_path, jwt_secret=None), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "threadstore.db").exists()
    assert "schema is at revision" in result.stderr


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """`threadstore serve` with nothing configured, and a token the CLI issued with the secret it generated."""
    async with ServeProcess(tmp_path, jwt_secret=None) as server:
        await server.wait_ready()
        token = _cli("token", "--user", "alice", env=server.env, cwd=tmp_path).stdout.strip()
        yield server.base_url, token


def test_serve_answers_the_readme_walkthrough_on_sqlite(served: tuple[str, str]) -> None:
    base, token = served
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=auth, timeout=10) as client:
        first = "Can you help me plan a three day trip to Lisbon in March with kids?"
        created = client.post("/api/threads", json={"metadata": {"topic": "travel"}, "messages": [{"content": first}]})
        assert created.status_code == 201
        thread = created.json()["id"]
        appended = client.post(
            f"/api/threads/{thread}/messages",
            headers={"Idempotency-Key": "7d1c6e2a"},
            json={"role": "assistant", "content": "Day one: Belém and the riverside."},
        )
        assert appended.status_code == 201 and appended.json()["seq"] == 2
        listed = client.get("/api/threads").json()
        assert [t["id"] for t in listed["data"]] == [thread]
        messages = client.get(f"/api/threads/{thread}/messages", params={"order": "desc", "limit": 10}).json()
        assert [m["seq"] for m in messages["data"]] == [2, 1]
        renamed = client.post(f"/api/threads/{thread}/auto-rename")
        assert renamed.status_code == 200
        assert renamed.headers["x-title-source"] == "fallback"
        assert "Lisbon" in renamed.json()["title"]
        patched = client.patch(
            f"/api/threads/{thread}",
            headers={"If-Match": '"3"'},
            json={"metadata": {"topic": None, "season": "spring"}},
        )
        assert patched.status_code == 200
        assert patched.json()["metadata"] == {"season": "spring"}


def test_a_short_kept_secret_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "jwt-secret").write_text("abc\n")
    result = _cli("token", "--user", "a", env=threadstore_env(tmp_path, jwt_secret=None), cwd=tmp_path)
    assert result.returncode == 2
    assert "shorter than 32 bytes" in result.stderr


def test_instances_starting_together_share_one_generated_secret(tmp_path: Path) -> None:
    """Several processes creating the secret at once: the file appears whole, once, and all use it."""
    env = threadstore_env(tmp_path, jwt_secret=None)
    processes = [
        subprocess.Popen(
            [*THREADSTORE, "token", "--user", "a"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    tokens = [p.communicate(timeout=60)[0].strip() for p in processes]
    assert [p.returncode for p in processes] == [0] * 6
    secret = (tmp_path / "data" / "jwt-secret").read_text().strip()
    assert len(secret) >= 32
    for token in tokens:
        assert jwt.decode(token, secret, algorithms=["HS256"])["sub"] == "a"
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["jwt-secret"]  # no temporary files left


@pytest.mark.parametrize("ttl", ["0", "-5"])
def test_token_ttl_must_be_positive(tmp_path: Path, ttl: str) -> None:
    result = _cli("token", "--user", "a", "--ttl", ttl, env=threadstore_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "positive" in result.stderr


async def test_workers_log_with_the_request_id(tmp_path: Path) -> None:
    """With --workers N every worker is a new process: it must set up logging itself."""
    async with ServeProcess(tmp_path, args=["--workers", "2"], settings={"log_level": "INFO"}) as server:
        response = await server.api.client.get("/api/threads", headers={"X-Request-ID": "trace-me-123"})
        assert response.status_code == 401
    assert "[request_id=trace-me-123] request refused: 401 unauthorized" in server.log()
