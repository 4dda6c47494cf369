"""Concurrency and durability torture for threadstore: race storms and kill -9 crash audits.

Everything here talks to a real `threadstore serve` process over HTTP, on a real database; the race tests
(tests/races/) run short versions of the same code, and `python -m scripts.torture --duration 600` runs the
long one. From the test suite it takes the harness's `ServeProcess` (the one way to run a real server) and
`serve_in_process` (the fake LLM), and the private-cluster helper used to kill PostgreSQL.
"""
