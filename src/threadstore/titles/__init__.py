"""Automatic conversation titles: an optional OpenAI-compatible LLM, with a built-in summarizer fallback."""

from threadstore.titles.cleaning import clean_title
from threadstore.titles.generator import GeneratedTitle, TitleGenerator, Titler, build_title_generator
from threadstore.titles.llm import ChatCompletionsTitler
from threadstore.titles.summarizer import DEFAULT_TITLE, summarize

__all__ = [
    "DEFAULT_TITLE",
    "ChatCompletionsTitler",
    "GeneratedTitle",
    "TitleGenerator",
    "Titler",
    "build_title_generator",
    "clean_title",
    "summarize",
]
