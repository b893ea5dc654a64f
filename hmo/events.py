"""The event log: what changed a figure after a file arrived, kept beside the archive.

The warehouse can be lost or outgrown; the archive (the bytes of every file)
and this log (when each arrived and what was decided about it) are what
`hmo rebuild` replays into a new one. One JSON file per event, named so that
sorting the names sorts the events, each written whole or not at all.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hmo.durable import write_text_atomically
from hmo.settings import Paths

# received: a file's arrival (replayed by `hmo rebuild`); verdict: the final
# answer given (kept by the rebuild); marts_rebuilt: the code lists or models
# changed and every published figure was rederived (the dbt project's
# fingerprint says which version of the project, kept in git); alias_added: a
# country's spelling of a name recorded by `hmo aliases add` (replayed into the
# alias files by `hmo rebuild`). A re-validation is a `received` event that
# names the submission it re-validates (`revalidates`).
KINDS = ("received", "verdict", "marts_rebuilt", "alias_added")


def record(paths: Paths, kind: str, **data: Any) -> Path:
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}")
    now = datetime.now(timezone.utc)
    paths.events.mkdir(parents=True, exist_ok=True)
    target = paths.events / f"{now:%Y%m%dT%H%M%S%f}-{kind}-{uuid.uuid4().hex[:8]}.json"
    return write_text_atomically(target, json.dumps({"kind": kind, "at": now.isoformat(), **data},
                                                    ensure_ascii=False, default=str))


def read_all(paths: Paths) -> list[dict[str, Any]]:
    """Every complete event, oldest first (a `.partial` left by a crash is not an event)."""
    if not paths.events.exists():
        return []
    return [json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(paths.events.glob("*.json"))]
