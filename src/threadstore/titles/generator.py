"""Choosing between the configured LLM and the built-in summarizer for a conversation's title."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from threadstore.titles.llm import ChatCompletionsTitler
from threadstore.titles.summarizer import summarize


class Titler(Protocol):
    """What the generator needs from an LLM client; `ChatCompletionsTitler` is the real one."""

    async def title_for(self, text: str) -> str | None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class GeneratedTitle:
    text: str
    source: Literal["llm", "fallback"]


class TitleGenerator:
    def __init__(self, llm: Titler | None) -> None:
        self._llm = llm

    @property
    def uses_llm(self) -> bool:
        return self._llm is not None

    async def generate(self, first_user_message: str) -> GeneratedTitle:
        """Never fails: the LLM's title when it gives a usable one, the summarizer's otherwise."""
        if self._llm is not None:
            title = await self._llm.title_for(first_user_message)
            if title:
                return GeneratedTitle(title, "llm")
        return GeneratedTitle(summarize(first_user_message), "fallback")

    async def aclose(self) -> None:
        if self._llm is not None:
            await self._llm.aclose()


def build_title_generator(
    base_url: str | None, model: str | None, api_key: str | None, timeout: float
) -> TitleGenerator:
    """An LLM-backed generator only when both the endpoint and the model are configured.

    Blank values count as unset, since deployments often export empty variables rather than none.
    """
    base_url = (base_url or "").strip()
    model = (model or "").strip()
    if not base_url or not model:
        return TitleGenerator(None)
    return TitleGenerator(ChatCompletionsTitler(base_url, model, (api_key or "").strip() or None, timeout))
