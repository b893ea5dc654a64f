"""Write the monthly report to the PPT: reports/<YYYY-MM>/report.<lang>.html and .pdf.

The figures come from the published copy of the warehouse (report.figures),
so writing a report never waits for a run nor makes one wait. The HTML is one
file with its charts inline (it opens offline); the PDF is WeasyPrint's
rendering of the same HTML, so both hold the same figures.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import partial
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from hmo.settings import Paths
from hmo.warehouse import open_published
from report import charts, figures
from report.figures import MonthlyFigures, NoReportableMonth
from report.early_warning import MIN_MONTHS
from report.texts import LANGUAGES, known, month_name, number, percent, t

TEMPLATES = Path(__file__).parent / "templates"
FIGURES = "figures.json"


@dataclass(frozen=True)
class Written:
    period: date
    language: str
    html: Path
    pdf: Path | None


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                       undefined=StrictUndefined, keep_trailing_newline=True)


def report_folder(paths: Paths, period: date) -> Path:
    return paths.reports / period.strftime("%Y-%m")


def render_html(f: MonthlyFigures, language: str, published: datetime, data_docs: str | None) -> str:
    names = f.labels.get(language, {})
    drawn = {
        "routes": charts.by_route(f.route_series, f.months, names, language) if f.route_series else "",
        "countries": charts.by_country(f.country_series, f.months, language) if f.country_series else "",
        "nationalities": charts.top_nationalities(f.top_nationalities, names, language)
        if f.top_nationalities else "",
    }

    def series_name(country: str, flow_type: str, route: str, nationality: str | None) -> str:
        parts = [names.get(country, country), names.get(flow_type, flow_type).lower(), names.get(route, route).lower()]
        return ", ".join(parts + ([names.get(nationality, nationality)] if nationality else []))

    too_short = "; ".join(series_name(*key) for key in f.warning.too_short)
    template = _environment().get_template("monthly.html.j2")
    return template.render(
        f=f, lang=language, names=names, charts=drawn, data_docs=data_docs, known=known,
        period=f.period.strftime("%Y-%m"),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        published=published.strftime("%Y-%m-%d %H:%M UTC"),
        t=partial(t, language=language), number=partial(number, language=language),
        percent=partial(percent, language=language), month_name=partial(month_name, language=language),
        series_name=series_name, too_short=too_short, min_months=MIN_MONTHS,
    )


def _write_atomically(target: Path, data: bytes) -> None:
    partial_file = target.with_name(f".{target.name}.{os.getpid()}.partial")
    partial_file.write_bytes(data)
    partial_file.replace(target)  # a reader sees the old report or the new one, never half of one


def write_monthly(paths: Paths, period: date | None = None, languages: tuple[str, ...] = LANGUAGES,
                  pdf: bool = True, data_docs: Path | None = None, today: date | None = None) -> list[Written]:
    """The report for `period` (default: the latest month with accepted data) in each language."""
    for language in languages:
        if language not in LANGUAGES:
            raise NoReportableMonth(f"--language {language!r}: the report is written in {' or '.join(LANGUAGES)}")
    try:
        # Taken before opening (as flows.query does): if a new copy lands in between, the time shown is at
        # worst older than the data read, never newer.
        published = datetime.fromtimestamp(paths.published.stat().st_mtime, timezone.utc)
    except FileNotFoundError:
        raise NoReportableMonth("nothing is published yet: run `hmo run` first") from None
    con = open_published(paths.published)
    try:
        period = period or figures.latest_period(con)
        f = figures.gather(con, period, today, previous_report(paths, period))
    finally:
        con.close()
    folder = report_folder(paths, f.period)
    folder.mkdir(parents=True, exist_ok=True)
    # Relative, so the link holds wherever the data directory is copied or served.
    docs = os.path.relpath(data_docs, folder) if data_docs is not None and data_docs.exists() else None
    written = []
    for language in languages:
        html = render_html(f, language, published, docs)
        html_path = folder / f"report.{language}.html"
        _write_atomically(html_path, html.encode("utf-8"))
        pdf_path = None
        if pdf:
            from weasyprint import HTML  # imported here: 1 s, and only a report needs it

            pdf_path = folder / f"report.{language}.pdf"
            _write_atomically(pdf_path, HTML(string=html, base_url=str(folder)).write_pdf())
        written.append(Written(f.period, language, html_path, pdf_path))
    _write_atomically(folder / FIGURES, json.dumps(headline(f), indent=2, ensure_ascii=False).encode("utf-8"))
    return written


def headline(f: MonthlyFigures) -> dict:
    """The report's headline figures as data: what the next report reads (when this one was written)."""
    return {
        "period": f.period.strftime("%Y-%m"),
        "generated_at": datetime.now(timezone.utc).isoformat(),
        "persons": f.persons,
        "persons_by_route": f.route_totals,
        "children_under_18": f.children[0],
        "persons_of_known_age": f.children[1],
        "reporting_rate": f.reporting_rate,
        "on_time_rate": f.on_time_rate,
        "alerts": len(f.warning.alerts),
        "revisions_named": len(f.revisions.named),
    }


def previous_report(paths: Paths, period: date) -> datetime | None:
    """When the report of the month before `period` was last written, if it was."""
    before = figures.window(period, 2)[0]
    try:
        written = json.loads((report_folder(paths, before) / FIGURES).read_text(encoding="utf-8"))
        return datetime.fromisoformat(written["generated_at"])
    except (FileNotFoundError, KeyError, ValueError):
        return None
