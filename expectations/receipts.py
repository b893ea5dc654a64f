"""The answer a statistician gets for each file, in Spanish and English."""
from __future__ import annotations

import json
from pathlib import Path

import duckdb

from expectations.rules import RULES_BY_ID
from ingest.settings import Paths

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


def receipt_data(con: duckdb.DuckDBPyConnection, submission_id: int, duplicate_file: str | None = None) -> dict:
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
    if duplicate_file is not None:
        data.update(status="duplicate", duplicate_of=submission_id, file_name=duplicate_file,
                    original_file_name=sub[2], problems=[])
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
            select list(distinct trim(period) order by trim(period)),
                   list(distinct upper(trim(flow_type)) order by upper(trim(flow_type)))
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


def write_receipt(con: duckdb.DuckDBPyConnection, paths: Paths, submission_id: int,
                  duplicate_file: str | None = None) -> Path:
    data = receipt_data(con, submission_id, duplicate_file)
    folder = paths.outbox / data["reporting_country"]
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{Path(data['file_name']).name}.{submission_id}.{data['status']}"
    (folder / f"{stem}.json").write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    text_path = folder / f"{stem}.txt"
    text_path.write_text(render_text(data), encoding="utf-8")
    return text_path
