"""The loud end-of-run banner of a suite that was skipped because something it needs is missing."""

from __future__ import annotations

from typing import Any


def skipped_suite(terminalreporter: Any, suite: str, reason: str, remedy: str) -> None:
    bar = "!" * 78
    terminalreporter.write_line(bar, red=True, bold=True)
    terminalreporter.write_line(f"{suite} SUITE SKIPPED: {reason}", red=True, bold=True)
    terminalreporter.write_line(remedy, red=True)
    terminalreporter.write_line(bar, red=True, bold=True)
