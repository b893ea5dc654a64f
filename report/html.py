"""A self-contained HTML quality report: who submitted, who is late, what failed."""
from __future__ import annotations

import html
import os
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from expectations.rules import RULES_BY_ID

_STATUS_COLOUR = {"accepted": "#2e7d32", "rejected": "#c62828", "missing": "#bdbdbd"}


def _table(headers: list[str], rows: list[tuple]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _status_grid(con: duckdb.DuckDBPyConnection) -> str:
    """Country × month as coloured cells: a chart with no plotting dependency."""
    rows = con.execute(
        """
        select reporting_country, strftime(period, '%Y-%m'), status, late
        from marts.fct_submission_status
        where period >= (select max(period) from marts.fct_submission_status) - interval 11 month
        order by reporting_country, period
        """
    ).fetchall()
    months = sorted({r[1] for r in rows})
    by_country: dict[str, dict[str, tuple[str, bool]]] = {}
    for country, month, status, late in rows:
        by_country.setdefault(country, {})[month] = (status, late)
    head = "<th>país / country</th>" + "".join(f"<th>{m}</th>" for m in months)
    body = []
    for country, cells in by_country.items():
        tds = "".join(
            f'<td title="{cells[m][0]}{" (late)" if cells[m][1] else ""}" '
            f'style="background:{_STATUS_COLOUR[cells[m][0]]}">{"!" if cells[m][1] else ""}</td>'
            for m in months
        )
        body.append(f"<tr><th>{country}</th>{tds}</tr>")
    return f'<table class="grid"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _data_docs_link(report: Path, data_docs: Path | None) -> str:
    if data_docs is None or not data_docs.exists():
        return ""
    # Relative, so the link holds wherever the data directory is copied or served.
    href = html.escape(os.path.relpath(data_docs, report.parent))
    return (f'<p>Cada validación, regla por regla / Every validation, rule by rule: '
            f'<a href="{href}">Great Expectations Data Docs</a></p>')


def write_report(con: duckdb.DuckDBPyConnection, target: Path, data_docs: Path | None = None) -> Path:
    """`data_docs`: the staff site of the Great Expectations Data Docs, linked when it exists."""
    submissions = con.execute(
        """
        select submission_id, reporting_country, file_name, status, data_rows,
               strftime(received_at, '%Y-%m-%d %H:%M'), strftime(decided_at, '%Y-%m-%d %H:%M')
        from marts.fct_submissions order by submission_id desc
        """
    ).fetchall()
    failures = con.execute(
        """
        select reporting_country, rule_id, severity, count(*) as rows_failing,
               count(distinct submission_id) as submissions
        from marts.fct_rule_failures
        group by all order by rule_id, reporting_country
        """
    ).fetchall()
    failures = [(c, r, f"{RULES_BY_ID[r].message_en}", s, n, k) for c, r, s, n, k in failures]
    late = con.execute(
        """
        select reporting_country, count(*) filter (where status = 'missing'),
               count(*) filter (where late), max(period) filter (where status = 'accepted')
        from marts.fct_submission_status group by all order by reporting_country
        """
    ).fetchall()
    totals = con.execute(
        """
        select strftime(period, '%Y-%m'), route, sum(count)
        from marts.fct_flows
        where sex = '_T' and age = '_T' and nationality <> '_T'
        group by all order by 1 desc, 2 limit 60
        """
    ).fetchall()
    refused = con.execute(
        """
        select path, reason, strftime(first_seen, '%Y-%m-%d %H:%M'), strftime(last_seen, '%Y-%m-%d %H:%M')
        from raw.refused_files order by path
        """
    ).fetchall()
    unmapped = con.execute(
        """
        select reporting_country, column_name, value, rows, submissions, ambiguous_between
        from marts.fct_unmapped_values
        where maps_now_to is null
        order by reporting_country, rows desc, value
        """
    ).fetchall()
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!doctype html>
<html lang="es"><head><meta charset="utf-8">
<title>Informe de calidad / Quality report — HMO</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; font-size: 13px; }}
table.grid td {{ width: 18px; text-align: center; color: white; }}
</style></head><body>
<h1>Observatorio de Movilidad Humana — Informe de calidad<br>Human Mobility Observatory — Quality report</h1>
<p>Generado / Generated: {generated}</p>
<h2>Estado de envíos por país y mes / Submission status by country and month (Q01)</h2>
<p>verde/green: accepted · rojo/red: rejected · gris/grey: missing · ! late (after the 15th of the next month)</p>
{_status_grid(con)}
<h2>Pendientes y atrasos / Missing and late months</h2>
{_table(["country", "months missing", "months late", "last accepted month"], late)}
<h2>Reglas incumplidas / Rule failures</h2>
{_table(["country", "rule", "meaning", "severity", "rows", "submissions"], failures)}
{_data_docs_link(target, data_docs)}
<h2>Valores sin correspondencia / Source values that did not map (Q03)</h2>
<p>A name fixed by an alias (<code>hmo aliases add</code>) leaves this table; its rejected files can be
validated again with <code>hmo revalidate</code>. / Un nombre resuelto con un alias sale de esta tabla.</p>
{_table(["country", "column", "value as sent", "rows", "submissions", "name of"], unmapped)
 if unmapped else "<p>ninguno / none</p>"}
<h2>Archivos no leídos / Files not read (left in the inbox)</h2>
{_table(["path", "reason", "first seen", "last seen"], refused) if refused else "<p>ninguno / none</p>"}
<h2>Envíos / Submissions</h2>
{_table(["id", "country", "file", "status", "rows", "received", "decided"], submissions)}
<h2>Flujos por ruta (por nacionalidad) / Flows by route (by-nationality tables)</h2>
{_table(["month", "route", "persons"], totals)}
</body></html>
"""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target
