"""The portal's audit log: who signed in (or failed to), uploaded, downloaded or signed out, and when.

One JSON object per line in `<data>/portal/audit.log`, each line written with
a single `write` on a file opened for appending, so lines from requests
served at the same time never interleave. Passwords are never in it.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hmo.settings import Paths


def audit_path(paths: Paths) -> Path:
    return paths.root / "portal" / "audit.log"


def record(paths: Paths, event: str, email: str | None, country: str | None, client: str | None,
           **detail: Any) -> None:
    line = json.dumps({"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "event": event,
                       "email": email, "country": country, "client": client, **detail},
                      ensure_ascii=False, default=str) + "\n"
    path = audit_path(paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def read_all(paths: Paths) -> list[dict[str, Any]]:
    path = audit_path(paths)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
