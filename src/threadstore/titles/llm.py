"""Titles from any OpenAI-compatible chat-completions endpoint.

A title is a nicety: every failure (down, slow, rate-limited, nonsense answer) yields None so the caller can
fall back to the built-in summarizer. Failures are logged without the API key.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx

from threadstore.titles.cleaning import clean_title, has_alnum

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You name chat conversations. Reply with only a title of at most 8 words that names the topic of the "
    "conversation started by the user's message, not the way the request is phrased. Use the language of "
    "the message. No quotes, no trailing punctuation, no explanation."
)
# The topic is stated early; sending a whole paste would only cost tokens and latency.
MAX_PROMPT_CHARS = 4000
_MAX_LOGGED_BODY = 200


class ChatCompletionsTitler:
    """One pooled HTTP client per instance; call `aclose()` when done."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None,
        timeout: float,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        try:
            url = httpx.URL(f"{base_url.rstrip('/')}/chat/completions")
        except httpx.InvalidURL as exc:
            raise ValueError("base_url is not a valid URL") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("base_url must be an http(s) URL with a host")
        self._url = url
        # Userinfo and query strings can hold credentials too; logs show only where the request went.
        self._where = str(url.copy_with(userinfo=b"", query=None))
        self._model = model
        self._api_key = api_key or None
        self._timeout = timeout
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        self._client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(timeout), transport=transport)

    async def title_for(self, text: str) -> str | None:
        """A cleaned title for a conversation starting with `text`, or None on any failure."""
        if not has_alnum(text):
            return None
        payload = {
            "model": self._model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": text[:MAX_PROMPT_CHARS]},
            ],
            "temperature": 0,
            "max_tokens": 32,
        }
        try:
            # httpx.Timeout bounds each phase (connect, each read...); this bounds the whole exchange, so a
            # server trickling bytes cannot hold the caller beyond `timeout`.
            with anyio.fail_after(self._timeout):
                response = await self._client.post(self._url, json=payload)
        except TimeoutError:
            logger.warning("Title LLM at %s did not answer within %.1f s", self._where, self._timeout)
            return None
        except httpx.HTTPError as exc:
            logger.warning(
                "Title LLM request to %s failed: %s: %s",
                self._where,
                type(exc).__name__,
                self._redact(str(exc)),
            )
            return None
        return self._title_from(response)

    def _title_from(self, response: httpx.Response) -> str | None:
        if not response.is_success:
            logger.warning(
                "Title LLM at %s answered HTTP %d: %s",
                self._where,
                response.status_code,
                self._redact(response.text[:_MAX_LOGGED_BODY]),
            )
            return None
        try:
            body: Any = response.json()
        except ValueError:
            logger.warning("Title LLM at %s answered with a body that is not JSON", self._where)
            return None
        content = _message_content(body)
        if content is None:
            logger.warning("Title LLM at %s answered without choices[0].message.content", self._where)
            return None
        title = clean_title(content)
        if title is None:
            logger.warning("Title LLM at %s answered with no usable title", self._where)
        return title

    def _redact(self, message: str) -> str:
        return message.replace(self._api_key, "***") if self._api_key else message

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> ChatCompletionsTitler:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _message_content(body: Any) -> str | None:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None
