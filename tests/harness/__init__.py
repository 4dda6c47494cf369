"""The test harness: one way to build and reach the service, whatever the test needs of it.

- `databases`: a fresh SQLite or PostgreSQL database per run or per test, and the settings for it.
- `client`: `Api`, the one client of the service (user-authenticated requests, helpers, event streams).
- `app`: `running_api`, the app in this process, through httpx's ASGI transport or on a real socket,
  leak-checked after shutdown.
- `server`: `serve_in_process`, uvicorn on a free port in this event loop (the app, fake LLM servers).
- `processes`: `ServeProcess`, real `threadstore serve` processes (several per database, SIGKILL, restart).

The fixtures (`backend`, `api`, `user`, `create_thread`, `pg_server`, `private_pg`) are in tests/conftest.py.
"""
