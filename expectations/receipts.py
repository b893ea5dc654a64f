"""The answer a statistician gets for each file, in Spanish and English."""
from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from expectations.rules import RULES_BY_ID
from ingest import events
from ingest.settings import Paths

# Most file systems allow 255 bytes a name; the receipt adds its id, verdict and
# suffix (~40 bytes), so the sender's name keeps at most this many.
_NAME_BYTES = 160
_RECEIPT_NAME = re.compile(r"\.(?P<kind>d?)(?P<id>[0-9]+)\.(?:accepted|rejected|duplicate)\.txt$")

_STATUS_TEXT = {
    "accepted": ("ACEPTADO", "ACCEPTED"),
    "rejected": ("RECHAZADO", "REJECTED"),
    "duplicate": ("DUPLICADO", "DUPLICATE"),
}


def _suggestions(con: duckdb.DuckDBPyConnection, values: list[str]) -> dict[str, list[str]]:
    """Closest known spellings for names that did not resolve; a hint, never applied."""
    if not values:
        return {}
    rows = con.execute(
        """
        with unknown as (select unnest(?::varchar[]) as value),
        scored as (
            select unknown.value, names.normalised_name, names.code,
                   jaro_winkler_similarity(
                       trim(regexp_replace(lower(strip_accents(unknown.value)), '[^a-z0-9]+', ' ', 'g')),
                       names.normalised_name) as score
            from unknown cross join intermediate.int_nationality_names as names
        )
        select value, list(normalised_name || ' (' || code || ')' order by score desc)[1:3]
        from scored where score > 0.8 group by value
        """,
        [values],
    ).fetchall()
    return {value: names for value, names in rows}


def receipt_data(con: duckdb.DuckDBPyConnection, submission_id: int, duplicate_id: int | None = None) -> dict:
    duplicate = None
    if duplicate_id is not None:
        duplicate = con.execute(
            "select submission_id, file_name, received_at from raw.duplicates where duplicate_id = ?",
            [duplicate_id],
        ).fetchone()
        submission_id = duplicate[0]
    sub = con.execute(
        """
        select submission_id, reporting_country, file_name, sha256, status, data_rows,
               encoding, delimiter, profile, notes, received_at, decided_at
        from raw.submissions where submission_id = ?
        """,
        [submission_id],
    ).fetchone()
    keys = ["submission_id", "reporting_country", "file_name", "sha256", "status", "data_rows",
            "encoding", "delimiter", "profile", "notes", "received_at", "decided_at"]
    data = {k: (str(v) if k.endswith("_at") and v is not None else v) for k, v in zip(keys, sub)}
    if duplicate is not None:
        data.update(status="duplicate", duplicate_id=duplicate_id, duplicate_of=submission_id,
                    file_name=duplicate[1], received_at=str(duplicate[2]), original_file_name=sub[2],
                    problems=[])
        return data
    failures = con.execute(
        """
        select rule_id, severity, source_row, column_name, value, detail
        from raw.rule_failures where submission_id = ?
        order by severity, source_row nulls first, rule_id, column_name
        """,
        [submission_id],
    ).fetchall()
    unknown_names = sorted({f[4] for f in failures if f[0] == "R02" and f[3] == "nationality" and f[4]})
    suggestions = _suggestions(con, unknown_names)
    data["problems"] = [
        {
            "rule": rule_id, "severity": severity, "row": row, "column": column, "value": value,
            "detail": detail if rule_id != "R02" or column != "nationality"
            else ", ".join(suggestions.get(value or "", [])) or None,
            "message_es": RULES_BY_ID[rule_id].message_es,
            "message_en": RULES_BY_ID[rule_id].message_en,
        }
        for rule_id, severity, row, column, value, detail in failures
    ]
    summed = con.execute(
        """
        select count(*) from intermediate.int_observations__resolved
        where submission_id = ? and (select sum_duplicates from raw.submissions where submission_id = ?)
        """,
        [submission_id, submission_id],
    ).fetchone()[0]
    if summed and summed != data["data_rows"]:
        data["notes"] = [*(data["notes"] or []),
                         f"{data['data_rows']} rows summed into {summed} observations with distinct codes / "
                         f"{data['data_rows']} filas sumadas en {summed} observaciones de códigos distintos"]
    if data["status"] == "accepted":
        data["periods"], data["flow_types"] = con.execute(
            """
            select coalesce(list(distinct trim(period) order by trim(period))
                                filter (where nullif(trim(period), '') is not null), []),
                   coalesce(list(distinct upper(trim(flow_type)) order by upper(trim(flow_type)))
                                filter (where nullif(trim(flow_type), '') is not null), [])
            from raw.observations where submission_id = ?
            """,
            [submission_id],
        ).fetchone()
    return data


def render_text(data: dict) -> str:
    es, en = _STATUS_TEXT[data["status"]]
    lines = [
        f"Observatorio de Movilidad Humana / Human Mobility Observatory",
        f"Archivo / File: {data['file_name']}  ({data['reporting_country']})",
        f"Envío / Submission: {data['submission_id']}   SHA-256: {data['sha256']}",
        f"Resultado / Verdict: {es} / {en}",
    ]
    if data["status"] == "duplicate":
        lines.append(
            f"Este archivo es idéntico al envío {data['duplicate_of']} ({data['original_file_name']}); no se cargó de nuevo. / "
            f"This file is identical to submission {data['duplicate_of']} ({data['original_file_name']}); nothing was loaded again."
        )
        return "\n".join(lines) + "\n"
    if data["status"] == "accepted":
        lines.append(f"Filas / Rows: {data['data_rows']}")
        lines.append(f"Periodos / Periods: {', '.join(data.get('periods') or [])}")
        lines.append(f"Tipos de flujo / Flow types: {', '.join(data.get('flow_types') or [])}")
    for note in data.get("notes") or []:
        lines.append(f"Nota / Note: {note}")
    errors = [p for p in data["problems"] if p["severity"] == "error"]
    warnings = [p for p in data["problems"] if p["severity"] == "warning"]
    lines.append(f"Errores / Errors: {len(errors)}   Advertencias / Warnings: {len(warnings)}")
    for problem in data["problems"]:
        lines.append(
            f"- [{problem['rule']}] {problem['severity']} fila/row {problem['row'] if problem['row'] is not None else '-'}"
            f", columna/column {problem['column'] or '-'}, valor/value {problem['value']!r}"
            + (f", detalle/detail: {problem['detail']}" if problem["detail"] else "")
        )
        lines.append(f"    ES: {problem['message_es']}")
        lines.append(f"    EN: {problem['message_en']}")
    return "\n".join(lines) + "\n"


def receipt_stem(file_name: str, receipt_id: str, status: str) -> str:
    """A receipt's name from the sender's: readable, always valid, never two alike.

    Slashes, control characters and a leading dot go; a name too long for the
    file system is cut (the id that follows keeps it unique).
    """
    name = unicodedata.normalize("NFC", file_name.replace("/", "_"))
    name = "".join("_" if unicodedata.category(ch).startswith("C") else ch for ch in name).lstrip(".") or "file"
    encoded = name.encode("utf-8")
    if len(encoded) > _NAME_BYTES:
        name = encoded[:_NAME_BYTES].decode("utf-8", errors="ignore") + "…"
    return f"{name}.{receipt_id}.{status}"


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


def write_receipt(con: duckdb.DuckDBPyConnection, paths: Paths, submission_id: int,
                  duplicate_id: int | None = None) -> Path:
    data = receipt_data(con, submission_id, duplicate_id)
    folder = paths.outbox / data["reporting_country"]
    folder.mkdir(parents=True, exist_ok=True)
    receipt_id = f"d{duplicate_id}" if duplicate_id is not None else str(submission_id)
    stem = receipt_stem(data["file_name"], receipt_id, data["status"])
    # The text file is written last: its presence is what says "answered" (answered()).
    _write_atomically(folder / f"{stem}.json", json.dumps(data, ensure_ascii=False, indent=2, default=str))
    text_path = folder / f"{stem}.txt"
    _write_atomically(text_path, render_text(data))
    return text_path


def answered(paths: Paths) -> set[tuple[str, int]]:
    """(kind, id) of every receipt in the outbox: kind "s" a submission, "d" a duplicate."""
    found: set[tuple[str, int]] = set()
    if not paths.outbox.exists():
        return found
    for folder in paths.outbox.iterdir():
        for entry in os.scandir(folder) if folder.is_dir() else ():
            match = _RECEIPT_NAME.search(entry.name)
            if match:
                found.add(("d" if match["kind"] else "s", int(match["id"])))
    return found


@dataclass
class Answers:
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (what, why)


def answer_due(con: duckdb.DuckDBPyConnection, paths: Paths) -> Answers:
    """Write every receipt that is due and not yet written, each on its own.

    Due: a rejection (final at once), an acceptance once the audit build has
    passed over it (main.hmo_audit), a duplicate. Whatever a crash left
    unanswered is found here on the next run, because "answered" is read from
    the outbox itself. One receipt that cannot be written never stops another.
    """
    done = answered(paths)
    submissions = con.execute(
        """
        select submission_id, status, reporting_country, file_name
        from raw.submissions
        where status = 'rejected'
           or (status = 'accepted'
               and submission_id <= (select coalesce(max(audited_through), 0) from main.hmo_audit))
        order by submission_id
        """
    ).fetchall()
    duplicates = con.execute(
        "select duplicate_id, reporting_country, file_name from raw.duplicates order by duplicate_id"
    ).fetchall()
    answers = Answers()
    for submission_id, status, country, file_name in submissions:
        if ("s", submission_id) in done:
            continue
        try:
            events.record(paths, "verdict", submission_id=submission_id, status=status)
            answers.written.append(write_receipt(con, paths, submission_id))
        except (OSError, duckdb.Error, ValueError, TypeError) as exc:
            answers.failed.append((f"{country}/{file_name} [submission {submission_id}]", f"{type(exc).__name__}: {exc}"))
    for duplicate_id, country, file_name in duplicates:
        if ("d", duplicate_id) in done:
            continue
        try:
            answers.written.append(write_receipt(con, paths, 0, duplicate_id=duplicate_id))
        except (OSError, duckdb.Error, ValueError, TypeError) as exc:
            answers.failed.append((f"{country}/{file_name} [duplicate {duplicate_id}]", f"{type(exc).__name__}: {exc}"))
    return answers
