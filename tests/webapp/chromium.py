"""Which Chromium the browser tests drive: the distribution's (`apt-get install chromium`; scripts/test installs
it when it can), or the one `THREADSTORE_CHROMIUM` names. Playwright only drives it through its
`executable_path`: nothing here, and nothing at test time, downloads a browser."""

from __future__ import annotations

import os
import shutil


def find_chromium() -> str | None:
    named = os.environ.get("THREADSTORE_CHROMIUM")
    if named:
        return named if os.access(named, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def launch_args() -> list[str]:
    """Chromium refuses to start its sandbox as root (containers, CI): there it runs without one."""
    return ["--no-sandbox"] if os.geteuid() == 0 else []
