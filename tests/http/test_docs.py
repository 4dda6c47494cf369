"""/docs (Swagger UI) and /redoc work without internet access: every script, style and icon they load comes
from this server, which serves it without a token, as it serves the pages and /openapi.json."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.harness.databases import JWT_SECRET
from threadstore.app import build_asgi
from threadstore.config import Settings

BASE = "http://threadstore.test"


class _Resources(HTMLParser):
    """The URLs a page makes the browser load: script src, link href (styles, icons), img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # The pages and assets touch no database: the app is served without its lifespan.
    settings = Settings(_env_file=None, jwt_secret=JWT_SECRET, data_dir=tmp_path)
    _, asgi = build_asgi(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url=BASE) as client:
        yield client


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_a_docs_page_loads_everything_from_this_server_without_a_token(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    # No other host is named anywhere in the page, so nothing can be fetched from one.
    assert re.findall(r"(?:https?:)?//[\w.-]+", html) == []
    parser = _Resources()
    parser.feed(html)
    assert any(url.endswith(".js") for url in parser.urls), parser.urls
    for url in parser.urls:
        absolute = urljoin(BASE + page, url)
        assert urlsplit(absolute).netloc == urlsplit(BASE).netloc, url
        asset = await client.get(absolute)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0, url


async def test_the_pages_load_the_document_from_this_server(client: httpx.AsyncClient) -> None:
    assert "url: '/openapi.json'" in (await client.get("/docs")).text
    assert 'spec-url="/openapi.json"' in (await client.get("/redoc")).text
    document = await client.get("/openapi.json")
    assert document.status_code == 200
    assert document.json()["openapi"].startswith("3.1")


async def test_the_assets_carry_their_types_and_an_unknown_one_is_a_problem(client: httpx.AsyncClient) -> None:
    script = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.headers["content-type"].startswith("text/javascript")
    style = await client.get("/docs/assets/swagger-ui.css")
    assert style.headers["content-type"].startswith("text/css")
    missing = await client.get("/docs/assets/nothing.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_the_docs_follow_the_root_path_of_a_proxy(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, jwt_secret=JWT_SECRET, data_dir=tmp_path)
    _, asgi = build_asgi(settings)
    transport = httpx.ASGITransport(app=asgi, root_path="/store")
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        html = (await client.get("/docs")).text
    assert "/store/docs/assets/swagger-ui-bundle.js" in html
    assert "url: '/store/openapi.json'" in html
