"""The web app at /app/ is served from the package without a token, under a strict Content-Security-Policy,
revalidated on every use, and loads nothing from another host: every file it references is one of its own."""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.harness.databases import JWT_SECRET
from threadstore.app import build_asgi, create_app
from threadstore.config import Settings
from threadstore.webapp.router import CONTENT_SECURITY_POLICY, STATIC

BASE = "http://threadstore.test"
ROOT = Path(__file__).resolve().parents[2]
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
FILES = sorted(path.name for path in STATIC.iterdir() if path.is_file())
# A URL naming a host: scheme-relative or absolute (a comment's "// text" is not one: no host follows).
OTHER_HOST = re.compile(r"(?:[a-z][a-z0-9+.-]*:)?//[\w-]+(?:\.[\w-]+)+|[a-z]+://", re.IGNORECASE)
MODULE_IMPORT = re.compile(r"""\bfrom\s+["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']""")


class _Resources(HTMLParser):
    """The URLs index.html makes the browser load: script src and link href."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value and not value.startswith("data:"):
                self.urls.append(value)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # Static files touch no database: the app is served without its lifespan.
    settings = Settings(_env_file=None, jwt_secret=JWT_SECRET, data_dir=tmp_path)
    _, asgi = build_asgi(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url=BASE) as client:
        yield client


def assert_protected(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-cache"


async def test_the_app_is_served_without_a_token_under_a_strict_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/app/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert_protected(response)
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY and "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert '<html lang="en">' in response.text


async def test_the_app_without_its_slash_redirects_to_it_on_this_host(client: httpx.AsyncClient) -> None:
    response = await client.get("/app", headers={"Host": "elsewhere.example"})
    assert response.status_code == 308
    assert response.headers["location"] == "/app/"


async def test_the_redirect_keeps_the_root_path_of_a_proxy(tmp_path: Path) -> None:
    _, asgi = build_asgi(Settings(_env_file=None, jwt_secret=JWT_SECRET, data_dir=tmp_path))
    transport = httpx.ASGITransport(app=asgi, root_path="/store")
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        response = await client.get("/app")
    assert response.headers["location"] == "/store/app/"


@pytest.mark.parametrize("name", FILES)
async def test_every_file_of_the_app_is_served_with_its_type(client: httpx.AsyncClient, name: str) -> None:
    response = await client.get(f"/app/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == TYPES[Path(name).suffix]
    assert_protected(response)
    assert response.content == (STATIC / name).read_bytes()


async def test_a_revalidated_file_is_not_sent_again_and_keeps_its_policy(client: httpx.AsyncClient) -> None:
    first = await client.get("/app/app.js")
    again = await client.get("/app/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert_protected(again)


@pytest.mark.parametrize("name", FILES)
def test_no_file_of_the_app_names_another_host(name: str) -> None:
    text = (STATIC / name).read_text(encoding="utf-8")
    assert OTHER_HOST.findall(text) == []


@pytest.mark.parametrize("path", ["/app/nothing.js", "/app/%2e%2e/router.py", "/app/..%2Frouter.py"])
async def test_an_unknown_file_is_a_problem_that_names_no_path(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "static" not in response.text and "router" not in response.text and str(STATIC) not in response.text


async def test_the_page_references_only_files_of_its_own(client: httpx.AsyncClient) -> None:
    parser = _Resources()
    parser.feed((await client.get("/app/")).text)
    assert "app.js" in parser.urls and "app.css" in parser.urls
    for url in parser.urls:
        assert "/" not in url, url  # relative, next to the page: works under a proxy's path prefix too
        assert (await client.get(f"/app/{url}")).status_code == 200, url


@pytest.mark.parametrize("name", [name for name in FILES if name.endswith(".js")])
def test_every_module_imports_only_modules_of_the_app(name: str) -> None:
    for match in MODULE_IMPORT.finditer((STATIC / name).read_text(encoding="utf-8")):
        imported = match.group(1) or match.group(2)
        assert imported.startswith("./"), imported
        assert (STATIC / imported[2:]).is_file(), imported


def test_the_app_has_no_inline_script_or_style() -> None:
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert "<style" not in html and " style=" not in html and re.search(r"\son[a-z]+=", html) is None


def test_a_wheel_carries_every_file_of_the_app() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["threadstore"]
    package = STATIC.parent.parent
    for name in FILES:
        relative = (STATIC / name).relative_to(package).as_posix()
        assert any(fnmatch(relative, pattern) for pattern in patterns), relative


def test_the_app_is_no_operation_of_the_api_document(tmp_path: Path) -> None:
    document = create_app(Settings(_env_file=None, jwt_secret=JWT_SECRET, data_dir=tmp_path)).openapi()
    assert [path for path in document["paths"] if path.startswith("/app")] == []
