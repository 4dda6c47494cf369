"""The interactive API docs, /docs (Swagger UI) and /redoc, with their scripts and styles served from the
package (assets/, under /docs/assets/): they work on a machine without internet access, and load nothing
from another host. No token is needed for any of them (API.md)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "assets"
ASSETS_PATH = "/docs/assets"
TITLE = "threadstore API"

router = APIRouter(include_in_schema=False)


def assets() -> StaticFiles:
    """The app mounts this at ASSETS_PATH."""
    return StaticFiles(directory=ASSETS)


def _root(request: Request) -> str:
    # Behind a proxy that serves the app under a prefix, every URL of the page carries it (as FastAPI's own do).
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json",
        title=TITLE,
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
        # No OAuth2 here, and no online validator badge: Swagger UI would ask validator.swagger.io.
        oauth2_redirect_url=None,
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_redoc_html(
        openapi_url=f"{root}/openapi.json",
        title=TITLE,
        redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
        with_google_fonts=False,
    )
