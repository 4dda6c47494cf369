"""ChatCompletionsTitler and TitleGenerator against a real local HTTP server."""

from __future__ import annotations

import logging
import time

import pytest

from tests.titles.conftest import ChatServer
from threadstore.titles import (
    ChatCompletionsTitler,
    GeneratedTitle,
    TitleGenerator,
    build_title_generator,
    summarize,
)
from threadstore.titles.llm import MAX_PROMPT_CHARS

API_KEY = "sk-test-0123456789abcdef"
LISBON = "Can you help me plan a three day trip to Lisbon in March with kids?"


def make_titler(base_url: str, *, api_key: str | None = API_KEY, timeout: float = 5.0) -> ChatCompletionsTitler:
    return ChatCompletionsTitler(base_url, "test-model", api_key, timeout)


@pytest.mark.asyncio
async def test_success_sends_the_chat_completions_request(chat_server: ChatServer) -> None:
    async with make_titler(chat_server.url("ok") + "/") as titler:  # a trailing slash must not double up
        assert await titler.title_for(LISBON) == "Lisbon family trip"

    request = chat_server.last("ok")
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["model"] == "test-model"
    assert body["temperature"] == 0
    assert body["max_tokens"] == 32
    system, user = body["messages"]
    assert system["role"] == "system"
    assert "title" in system["content"].lower()
    assert "8 words" in system["content"]
    assert user == {"role": "user", "content": LISBON}


@pytest.mark.asyncio
async def test_no_authorization_header_without_a_key(chat_server: ChatServer) -> None:
    async with make_titler(chat_server.url("ok"), api_key=None) as titler:
        assert await titler.title_for("Best pizza dough recipe") == "Lisbon family trip"

    assert "authorization" not in chat_server.last("ok").headers


@pytest.mark.asyncio
async def test_long_messages_are_truncated_before_sending(chat_server: ChatServer) -> None:
    async with make_titler(chat_server.url("ok")) as titler:
        assert await titler.title_for("word " * 20_000) == "Lisbon family trip"

    sent = chat_server.last("ok").json()["messages"][1]["content"]
    assert len(sent) == MAX_PROMPT_CHARS


@pytest.mark.asyncio
async def test_one_pooled_client_serves_every_call(chat_server: ChatServer) -> None:
    async with make_titler(chat_server.url("ok")) as titler:
        client = titler._client
        assert await titler.title_for("one") == "Lisbon family trip"
        assert await titler.title_for("two") == "Lisbon family trip"
        assert titler._client is client
        assert not client.is_closed

    assert client.is_closed  # leaving the context (aclose) releases the pool


@pytest.mark.asyncio
async def test_quoted_multi_line_answer_is_cleaned(chat_server: ChatServer) -> None:
    async with make_titler(chat_server.url("quoted")) as titler:
        assert await titler.title_for(LISBON) == "Lisbon Family Trip"


@pytest.mark.asyncio
async def test_http_500_returns_none_and_logs_without_the_key(
    chat_server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_titler(chat_server.url("error")) as titler:
        with caplog.at_level(logging.WARNING, logger="threadstore.titles"):
            assert await titler.title_for(LISBON) is None

    assert "500" in caplog.text
    assert "upstream failed" in caplog.text  # the body is logged for diagnosis...
    assert API_KEY not in caplog.text  # ...but the key it echoed is not
    assert all(record.levelno == logging.WARNING for record in caplog.records)


@pytest.mark.asyncio
async def test_rate_limited_returns_none(chat_server: ChatServer) -> None:
    async with make_titler(chat_server.url("rate-limited")) as titler:
        assert await titler.title_for(LISBON) is None


@pytest.mark.parametrize(
    "scenario", ["html", "no-choices", "empty-choices", "null-content", "list-body", "punctuation"]
)
@pytest.mark.asyncio
async def test_garbage_answers_return_none(
    scenario: str, chat_server: ChatServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_titler(chat_server.url(scenario)) as titler:
        with caplog.at_level(logging.WARNING, logger="threadstore.titles"):
            assert await titler.title_for(LISBON) is None

    assert caplog.records, "a failure should leave a warning"
    assert API_KEY not in caplog.text


@pytest.mark.asyncio
async def test_slow_answer_is_abandoned_at_the_timeout(chat_server: ChatServer) -> None:
    async with make_titler(chat_server.url("slow"), timeout=0.3) as titler:
        started = time.monotonic()
        assert await titler.title_for(LISBON) is None
        assert time.monotonic() - started < 1.0


@pytest.mark.asyncio
async def test_connection_refused_returns_none(closed_port_url: str, caplog: pytest.LogCaptureFixture) -> None:
    async with make_titler(closed_port_url) as titler:
        with caplog.at_level(logging.WARNING, logger="threadstore.titles"):
            started = time.monotonic()
            assert await titler.title_for(LISBON) is None
            assert time.monotonic() - started < 1.0

    assert "ConnectError" in caplog.text
    assert API_KEY not in caplog.text


@pytest.mark.asyncio
async def test_message_without_letters_is_not_sent(chat_server: ChatServer) -> None:
    before = len(chat_server.requests)

    async with make_titler(chat_server.url("ok")) as titler:
        assert await titler.title_for("🎉 !!! 🎉") is None

    assert len(chat_server.requests) == before


@pytest.mark.parametrize("base_url", ["localhost:8000/v1", "ftp://example.com", "/v1"])
def test_unusable_base_url_is_rejected_at_construction(base_url: str) -> None:
    with pytest.raises(ValueError):
        ChatCompletionsTitler(base_url, "m", None, 1.0)


def test_non_positive_timeout_is_rejected() -> None:
    with pytest.raises(ValueError):
        ChatCompletionsTitler("http://127.0.0.1:9", "m", None, 0)


# --- TitleGenerator ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_generator_without_llm_uses_the_summarizer() -> None:
    generator = build_title_generator(None, None, None, 1.0)
    try:
        assert not generator.uses_llm
        assert await generator.generate(LISBON) == GeneratedTitle(summarize(LISBON), "fallback")
    finally:
        await generator.aclose()


@pytest.mark.parametrize(
    ("base_url", "model"),
    [(None, "m"), ("http://127.0.0.1:9/v1", None), ("", "m"), ("http://127.0.0.1:9/v1", "  ")],
)
def test_llm_is_configured_only_with_both_url_and_model(base_url: str | None, model: str | None) -> None:
    assert not build_title_generator(base_url, model, "key", 1.0).uses_llm


@pytest.mark.asyncio
async def test_generator_uses_the_llm_title_when_it_works(chat_server: ChatServer) -> None:
    generator = build_title_generator(chat_server.url("ok"), "test-model", API_KEY, 5.0)
    try:
        assert generator.uses_llm
        assert await generator.generate(LISBON) == GeneratedTitle("Lisbon family trip", "llm")
    finally:
        await generator.aclose()


@pytest.mark.parametrize("scenario", ["error", "html", "punctuation"])
@pytest.mark.asyncio
async def test_generator_falls_back_when_the_llm_fails(scenario: str, chat_server: ChatServer) -> None:
    generator = build_title_generator(chat_server.url(scenario), "test-model", API_KEY, 5.0)
    try:
        title = await generator.generate(LISBON)
    finally:
        await generator.aclose()

    assert title == GeneratedTitle(summarize(LISBON), "fallback")
    assert title.text.startswith("Three day trip to Lisbon")


@pytest.mark.asyncio
async def test_generator_falls_back_when_the_llm_is_unreachable(closed_port_url: str) -> None:
    generator = TitleGenerator(ChatCompletionsTitler(closed_port_url, "test-model", None, 1.0))
    try:
        title = await generator.generate("How do I reverse a list in Python?")
    finally:
        await generator.aclose()

    assert title == GeneratedTitle("Reverse a list in Python", "fallback")


@pytest.mark.asyncio
async def test_generator_falls_back_when_the_llm_is_too_slow(chat_server: ChatServer) -> None:
    generator = build_title_generator(chat_server.url("slow"), "test-model", None, 0.3)
    try:
        started = time.monotonic()
        title = await generator.generate(LISBON)
        assert time.monotonic() - started < 1.0
    finally:
        await generator.aclose()

    assert title.source == "fallback"


@pytest.mark.asyncio
async def test_generator_titles_symbol_only_messages_as_new_conversation(chat_server: ChatServer) -> None:
    generator = build_title_generator(chat_server.url("ok"), "test-model", None, 5.0)
    try:
        assert await generator.generate("👍👍") == GeneratedTitle("New conversation", "fallback")
    finally:
        await generator.aclose()
