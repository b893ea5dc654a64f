"""Encoding, delimiter and header of a delimited text file.

Only the first bytes decide the delimiter; the whole file decides the encoding,
because a Latin-1 byte can appear on the last line. A file whose first megabyte
is UTF-8 may be taken as UTF-8 on that evidence (`whole=False`) when DuckDB
reads it next: DuckDB rejects invalid UTF-8 anywhere in the file, and the
caller then asks again with `whole=True`.
"""
from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path

DELIMITERS = [",", ";", "\t", "|"]
_CHUNK = 1 << 20
# Bytes that Windows-1252 leaves undefined; a file holding them is read as Latin-1.
_UNDEFINED_IN_CP1252 = {0x81, 0x8D, 0x8F, 0x90, 0x9D}


class UnreadableText(ValueError):
    """The file is not text in any accepted encoding."""


@dataclass(frozen=True)
class TextLayout:
    encoding: str  # utf-8, utf-8-sig, cp1252 or latin-1
    delimiter: str
    header: list[str]
    header_line: int  # 1-based line of the header
    preamble: tuple[str, ...] = ()  # the skipped lines before the header (titles), as written


def detect_encoding(path: Path, whole: bool = True) -> str:
    with path.open("rb") as handle:
        head = handle.read(4)
        if head.startswith(b"PK\x03\x04"):
            raise UnreadableText("the file is a ZIP/XLSX container, not delimited text")
        if b"\x00" in head:
            raise UnreadableText("the file holds NUL bytes (binary or UTF-16), not UTF-8/Latin-1 text")
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := handle.read(_CHUNK):
                decoder.decode(chunk)
                if not whole:
                    break
            else:
                decoder.decode(b"", final=True)
            return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
        except UnicodeDecodeError:
            pass
        handle.seek(0)
        while chunk := handle.read(_CHUNK):
            if b"\x00" in chunk:
                raise UnreadableText("the file holds NUL bytes, not text")
            if _UNDEFINED_IN_CP1252.intersection(chunk):
                return "latin-1"
        return "cp1252"


def sniff(path: Path, encoding: str | None = None, delimiter: str | None = None,
          skip_lines: int = 0) -> TextLayout:
    encoding = encoding or detect_encoding(path)
    with path.open("r", encoding=encoding, newline="") as handle:
        lines = []
        preamble: list[str] = []
        for number, line in enumerate(handle, start=1):
            if number > skip_lines and line.strip():
                lines.append((number, line))
                break
            if number <= skip_lines:  # titles are the lines a profile skips; blank lines say nothing
                preamble.append(line.rstrip("\r\n"))
    if not lines:
        raise UnreadableText("the file is empty: no header row")
    header_line, text = lines[0]
    if delimiter is None:
        counts = {d: text.count(d) for d in DELIMITERS}
        delimiter = max(DELIMITERS, key=lambda d: counts[d])
        if counts[delimiter] == 0:
            delimiter = ","
    header = next(csv.reader(io.StringIO(text), delimiter=delimiter))
    return TextLayout(encoding, delimiter, [h.strip().lstrip("\ufeff") for h in header], header_line,
                      tuple(preamble))


def xlsx_to_csv(path: Path, target: Path, sheet: str | None = None) -> Path:
    """One sheet (the first unless named) as UTF-8 CSV, streamed row by row."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise UnreadableText(f"not a readable XLSX workbook: {exc}") from exc
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise UnreadableText(f"the workbook has no sheet {sheet!r} (it has {book.sheetnames})")
        worksheet = book[sheet] if sheet else book.worksheets[0]
        with target.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            for row in worksheet.iter_rows(values_only=True):
                writer.writerow(["" if v is None else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
                                 for v in row])
    finally:
        book.close()
    return target


def is_xlsx(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def to_utf8(path: Path, encoding: str, target: Path) -> Path:
    """DuckDB reads UTF-8 only (without the encodings extension); transcode in chunks."""
    if encoding in ("utf-8", "utf-8-sig"):
        return path
    with path.open("r", encoding=encoding, newline="") as source, target.open(
        "w", encoding="utf-8", newline=""
    ) as sink:
        while chunk := source.read(_CHUNK):
            sink.write(chunk)
    return target
