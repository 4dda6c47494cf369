"""The wire form of a search answer (API.md "Search")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from threadstore.threads.schemas import ThreadOut


class SearchMatch(BaseModel):
    message_id: str | None = Field(description="The message that matched; null: the thread's title.")
    snippet: str = Field(
        description="At most 200 characters of the text around the match, each matched word in <mark>…</mark>, "
        "every other <, > and & escaped: ready to insert into a page."
    )


class SearchResult(BaseModel):
    object: Literal["search_result"]
    thread: ThreadOut
    score: float = Field(description="Higher is more relevant; depends only on this thread's own text.")
    matches: Annotated[list[SearchMatch], Field(min_length=1, max_length=3)]


class SearchResults(BaseModel):
    object: Literal["list"]
    data: list[SearchResult]
    next_cursor: str | None
    has_more: bool
