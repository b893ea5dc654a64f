"""The report's charts: Vega-Lite through Altair, rendered to SVG by vl-convert.

The SVG goes inline into the HTML (it opens offline) and WeasyPrint draws the
same SVG into the PDF. Data are given inline (`alt.Data(values=...)`): no
file, no URL, nothing fetched.
"""
from __future__ import annotations

from datetime import date

import altair as alt
import vl_convert

from report.texts import t

# One colour per route, the same in every chart (and colour-blind safe: Okabe-Ito).
ROUTE_COLOURS = {"NORTH_BOUND": "#0072B2", "SOUTH_BOUND": "#E69F00", "EXTRACONTINENTAL": "#009E73",
                 "_U": "#999999"}
WIDTH, HEIGHT = 620, 220


def _svg(chart: alt.TopLevelMixin) -> str:
    svg = vl_convert.vegalite_to_svg(chart.to_dict())
    # The XML declaration is not allowed inside an HTML document.
    return svg[svg.index("<svg"):] if "<svg" in svg else svg


def _month(period: date) -> str:
    return period.strftime("%Y-%m")


def _route_scale(names: dict[str, str]) -> alt.Scale:
    return alt.Scale(domain=[names.get(code, code) for code in ROUTE_COLOURS], range=list(ROUTE_COLOURS.values()))


def by_route(series: list[tuple[date, str, int]], months: list[date], names: dict[str, str], language: str) -> str:
    """`names`: code -> name in the report's language (routes)."""
    values = [{"month": _month(m), "route": names.get(r, r), "persons": p} for m, r, p in series]
    chart = alt.Chart(alt.Data(values=values)).mark_line(point=True).encode(
        x=alt.X("month:O", title=t("month", language), sort=[_month(m) for m in months],
                scale=alt.Scale(domain=[_month(m) for m in months])),
        y=alt.Y("persons:Q", title=t("persons", language)),
        color=alt.Color("route:N", title=t("route", language), scale=_route_scale(names)),
    ).properties(width=WIDTH, height=HEIGHT)
    return _svg(chart)


def by_country(series: list[tuple[date, str, int]], months: list[date], language: str) -> str:
    values = [{"month": _month(m), "country": c, "persons": p} for m, c, p in series]
    chart = alt.Chart(alt.Data(values=values)).mark_bar().encode(
        x=alt.X("month:O", title=t("month", language), scale=alt.Scale(domain=[_month(m) for m in months])),
        y=alt.Y("sum(persons):Q", title=t("persons", language)),
        color=alt.Color("country:N", title=t("reporting_country", language)),
    ).properties(width=WIDTH, height=HEIGHT)
    return _svg(chart)


def top_nationalities(top: dict[str, list[tuple[str, int]]], names: dict[str, str], language: str) -> str:
    """`names`: code -> name in the report's language (routes and nationalities)."""
    values = [{"route": names.get(route, route), "nationality": names.get(code, code), "persons": persons}
              for route, lines in top.items() for code, persons in lines]
    chart = alt.Chart(alt.Data(values=values)).mark_bar().encode(
        y=alt.Y("nationality:N", title=t("nationality", language), sort="-x"),
        x=alt.X("persons:Q", title=t("persons", language)),
        color=alt.Color("route:N", legend=None, scale=_route_scale(names)),
        row=alt.Row("route:N", title=None),
    ).properties(width=WIDTH - 120, height=90).resolve_scale(y="independent")
    return _svg(chart)
