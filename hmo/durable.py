"""Writes that survive a crash or a power cut: a file is there whole, or not at all."""
from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """Flush a file, or a folder's entries (so that a rename or a new file in it survives a power cut)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_text_atomically(path: Path, text: str, newline: str | None = None) -> Path:
    """`text` as `path`, through a hidden `.partial` beside it that is renamed once on disk: a reader sees
    the old file or the new one, and a crash leaves at most the `.partial`, which no reader takes, and an error
    not even that."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline=newline) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path
