"""The `threadstore` command: serve, migrate, reindex, token."""

from __future__ import annotations

import argparse
import sys

from threadstore.config import ConfigError, load_settings

DEFAULT_TOKEN_TTL = 24 * 3600


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="threadstore", description="The conversation store for AI chat apps.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP API (migrates the schema first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--no-migrate", action="store_true", help="do not upgrade the schema before serving")

    commands.add_parser(
        "migrate", help="upgrade the database schema to the latest revision, then index what search has not indexed"
    )

    reindex = commands.add_parser("reindex", help="rebuild the search index from the text, in batches, online")
    reindex.add_argument("--pending", action="store_true", help="only the rows not indexed yet")
    reindex.add_argument("--batch", type=_positive_int, default=500, help="rows per batch (default: 500)")

    token = commands.add_parser("token", help="print a JWT for a user, signed with the configured secret")
    token.add_argument("--user", required=True)
    # Always an expiry: a token that never expires is good forever once it leaks.
    token.add_argument(
        "--ttl", type=_positive_int, default=DEFAULT_TOKEN_TTL, help="seconds until it expires (default: 86400, a day)"
    )

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "migrate":
            return _migrate()
        if args.command == "reindex":
            return _reindex(pending=args.pending, batch=args.batch)
        return _token(args)
    except ConfigError as error:
        print(f"threadstore: {error}", file=sys.stderr)
        return 2


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _migrate() -> int:
    from threadstore.db import migrate
    from threadstore.db.bounds import SessionDefaults
    from threadstore.logs import configure

    settings = load_settings()
    configure(settings.log_level)
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    through_pooler = settings.database_pool_mode == "transaction"
    defaults = SessionDefaults.of(settings) if through_pooler else None
    migrate.run(settings.resolved_direct_database_url, role_defaults=defaults, backfill=migrate.Backfill.of(settings))
    print(f"schema is at revision {migrate.head_revision()}", file=sys.stderr)
    # Rows written before search (migration 0008) get their terms, in batches: the pass finds nothing to do once
    # they have them.
    return _reindex(pending=True, batch=500)


def _reindex(*, pending: bool, batch: int) -> int:
    import asyncio

    from threadstore.db.unit_of_work import Database
    from threadstore.logs import configure
    from threadstore.search.reindex import reindex

    settings = load_settings()
    configure(settings.log_level)

    async def run() -> None:
        database = Database.open(settings)
        try:
            progress = await reindex(database, pending=pending, batch=batch)
        finally:
            await database.dispose()
        rows = progress.rows
        print(f"indexed {rows['threads']} threads and {rows['messages']} messages", file=sys.stderr)

    asyncio.run(run())
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from threadstore.http.edge import uvicorn_options
    from threadstore.logs import configure

    settings = load_settings()
    configure(settings.log_level)
    _, note = settings.require_jwt_secret()  # fail before binding the port, and say where the secret is
    if note:
        print(f"threadstore: {note}", file=sys.stderr)
    if not args.no_migrate:
        _migrate()
    uvicorn.run(
        "threadstore.app:create_asgi_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        timeout_graceful_shutdown=10,
        **uvicorn_options(settings),
    )
    return 0


def _token(args: argparse.Namespace) -> int:
    from threadstore.auth import issue_token

    secret, note = load_settings().require_jwt_secret()
    if note:
        print(f"threadstore: {note}", file=sys.stderr)
    print(issue_token(secret, args.user, args.ttl))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
