"""An upload from the portal into a country's inbox: streamed, counted, checked, then placed whole.

The form's body is parsed as it arrives (python-multipart's streaming
parser, the one Starlette uses) instead of through Starlette's `form()`,
which spools every file into the system's temporary folder before the
application sees a byte: here the CSRF field must come first (the form puts
it first), so a forged request is refused before any file byte is written,
and the size is counted as it comes, so a 200 MB body is cut at the limit
without filling the disk.

Each file goes to `<data>/work/uploads/` under a random name, never under the
name the browser sent; only when the whole body has arrived and every file
is acceptable are they linked into `<data>/inbox/<ISO3>/` (a hard link
appears whole or not at all, and never replaces a file waiting there). An
interrupted upload leaves nothing behind: the partial files are removed on
every way out. From the inbox on, an uploaded file is a dropped file: ingest
receives it, validation answers it.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from flows.service import Refused, safe_name
from hmo.settings import Paths

ALLOWED_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx")
MAX_BYTES_ENV = "HMO_PORTAL_MAX_BYTES"
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
MAX_FIELD_BYTES = 4096
MAX_FILES = 20


class UploadRefused(Refused):
    """An upload the portal does not take; `key` and `values` phrase it in the user's language (portal.texts)."""

    def __init__(self, status: int, key: str, **values: object) -> None:
        super().__init__(status, key)
        self.key = key
        self.values = values


@dataclass
class Stored:
    name: str            # as it now stands in the inbox
    sent_as: str         # as the browser named it
    sha256: str
    size: int


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)
    temp: Path | None = None
    handle: Any = None
    digest: Any = None
    size: int = 0


def configured_max_bytes() -> int:
    from flows.service import configured_max_bytes as parse

    return parse(MAX_BYTES_ENV, DEFAULT_MAX_BYTES)


def _disposition(value: str) -> tuple[str, str | None]:
    from python_multipart.multipart import parse_options_header

    _, options = parse_options_header(value)
    name = options.get(b"name", b"").decode("utf-8", errors="replace")
    filename = options.get(b"filename")
    return name, None if filename is None else filename.decode("utf-8", errors="replace")


async def receive(request: Any, paths: Paths, into: Path, limit: int,
                  csrf_ok: Callable[[str], bool]) -> list[Stored]:
    """The files of a multipart upload, placed in the folder `into` (a country's inbox, or a dry run's
    scratch folder); UploadRefused, with nothing placed, if not."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadRefused(413, "too_large")
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadRefused(400, "no_file")
    staging = paths.work / "uploads"
    staging.mkdir(parents=True, exist_ok=True)
    parts: list[_Part] = []
    state: dict[str, Any] = {"field": "", "value": "", "csrf_checked": False, "total": 0, "error": None}

    def refuse(error: UploadRefused) -> None:
        if state["error"] is None:
            state["error"] = error

    def on_part_begin() -> None:
        parts.append(_Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end].decode("latin-1")

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end].decode("utf-8", errors="replace")

    def on_header_end() -> None:
        parts[-1].headers[state["field"].lower()] = state["value"]
        state["field"] = state["value"] = ""

    def on_headers_finished() -> None:
        part = parts[-1]
        part.name, part.filename = _disposition(part.headers.get("content-disposition", ""))
        if not state["csrf_checked"] and part.name != "csrf":
            refuse(UploadRefused(403, "forbidden_form"))
            return
        if part.filename is not None and part.filename != "":
            if len([p for p in parts if p.filename]) > MAX_FILES:
                refuse(UploadRefused(400, "too_many"))
                return
            part.temp = staging / f"{secrets.token_hex(16)}.partial"
            part.handle = part.temp.open("xb")
            part.digest = hashlib.sha256()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["error"] is not None:
            return
        part = parts[-1]
        chunk = data[start:end]
        state["total"] += len(chunk)
        if state["total"] > limit:
            refuse(UploadRefused(413, "too_large"))
            return
        if part.handle is not None:
            part.handle.write(chunk)
            part.digest.update(chunk)
            part.size += len(chunk)
        elif len(part.value) + len(chunk) <= MAX_FIELD_BYTES:
            part.value.extend(chunk)
        else:
            refuse(UploadRefused(400, "no_file"))

    def on_part_end() -> None:
        part = parts[-1]
        if part.handle is not None:
            part.handle.close()
            part.handle = None
        if part.name == "csrf" and not state["csrf_checked"]:
            state["csrf_checked"] = True
            if not csrf_ok(part.value.decode("utf-8", errors="replace")):
                refuse(UploadRefused(403, "forbidden_form"))

    def on_end() -> None:
        state["complete"] = True

    parser = MultipartParser(boundary, {  # type: ignore[arg-type]
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end, "on_end": on_end})
    from starlette.requests import ClientDisconnect

    try:
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                if state["error"] is not None:
                    raise state["error"]
            parser.finalize()
        except ClientDisconnect:
            raise UploadRefused(400, "incomplete") from None
        except UploadRefused:
            raise
        except Exception as exc:  # python-multipart's own errors: a malformed body
            raise UploadRefused(400, "no_file") from exc
        if state["error"] is not None:
            raise state["error"]
        if not state["csrf_checked"]:
            raise UploadRefused(403, "forbidden_form")
        if not state.get("complete"):
            # The body ended before the form's closing boundary: the connection broke mid-file.
            raise UploadRefused(400, "incomplete")
        files = [p for p in parts if p.temp is not None]
        if not files:
            raise UploadRefused(400, "no_file")
        for part in files:
            sent = part.filename or ""
            try:
                safe_name(sent)
            except Refused:
                raise UploadRefused(400, "bad_name", name=sent) from None
            if not sent.lower().endswith(ALLOWED_SUFFIXES):
                raise UploadRefused(400, "bad_type", name=sent)
        return [_place(part, into) for part in files]
    finally:
        for part in parts:
            if part.handle is not None:
                part.handle.close()
            if part.temp is not None:
                with contextlib.suppress(FileNotFoundError):
                    part.temp.unlink()


def _place(part: _Part, inbox: Path) -> Stored:
    """Link the whole file into the inbox under its sent name, or `name (2).csv` if one by that name waits."""
    assert part.temp is not None and part.filename
    inbox.mkdir(parents=True, exist_ok=True)
    stem, dot, suffix = part.filename.rpartition(".")
    for attempt in range(1, 1000):
        name = part.filename if attempt == 1 else f"{stem} ({attempt}){dot}{suffix}"
        try:
            os.link(part.temp, inbox / name)
        except FileExistsError:
            continue
        return Stored(name, part.filename, part.digest.hexdigest(), part.size)
    raise UploadRefused(409, "bad_name", name=part.filename)
