"""The monthly report's words, in Spanish and English (one language per file)."""
from __future__ import annotations

from datetime import date

from babel.dates import format_skeleton
from babel.numbers import format_decimal, format_percent

LANGUAGES = ("es", "en")

# A country-month's state (report.figures.q01_state) in words: the report's grid and the portal's calendar.
Q01_STATE_WORDS: dict[str, tuple[str, str]] = {
    "on_time": ("aceptado a tiempo", "accepted on time"),
    "late": ("aceptado con retraso", "accepted late"),
    "rejected": ("rechazado", "rejected"),
    "missing": ("falta", "missing"),
    "not_due": ("aún no vence", "not yet due"),
}

_TEXTS: dict[str, tuple[str, str]] = {
    "title": ("Informe mensual a la Presidencia Pro Tempore", "Monthly report to the Presidency Pro-Tempore"),
    "observatory": ("Observatorio de Movilidad Humana (CRM · CSM)", "Human Mobility Observatory (RCM · SACM)"),
    "month_of": ("Mes del informe: {period}", "Report month: {period}"),
    "generated": ("Generado el {when} a partir de los datos publicados el {published}.",
                  "Generated on {when} from the data published on {published}."),
    "headlines": ("Cifras principales", "Headline figures"),
    "persons_month": ("Personas en {period} (cuadros por nacionalidad)", "Persons in {period} (tables by nationality)"),
    "children_share": ("Niñas, niños y adolescentes (menores de 18)", "Children (under 18)"),
    "children_note": ("{share} de las personas de edad conocida en los cuadros por edad ({under} de {known}).",
                      "{share} of persons of known age in the tables by age ({under} of {known})."),
    "no_age": ("Ningún país envió cuadros por edad para este mes.", "No country sent tables by age for this month."),
    "reporting_rate": ("Tasa de envío", "Reporting rate"),
    "on_time_rate": ("Tasa de envío a tiempo", "On-time reporting rate"),
    "rates_note": ("Meses con un envío aceptado (a tiempo: a más tardar en su fecha de vencimiento) entre los meses "
                   "vencidos de los 24 meses hasta {period}, como DHIS2 calcula REPORTING_RATE y "
                   "REPORTING_RATE_ON_TIME.",
                   "Months with an accepted submission (on time: by their due date) among the months due of the 24 "
                   "months up to {period}, as DHIS2 computes REPORTING_RATE and REPORTING_RATE_ON_TIME."),
    "flows_by_route": ("Flujos por ruta, 24 meses", "Flows by route, 24 months"),
    "flows_by_country": ("Flujos por país informante, 24 meses", "Flows by reporting country, 24 months"),
    "top_nationalities": ("Principales nacionalidades por ruta en {period}", "Top nationalities per route in {period}"),
    "no_flows": ("Sin flujos aceptados en esta ventana.", "No accepted flows in this window."),
    "early_warning": ("Alerta temprana (Q02)", "Early warning (Q02)"),
    "early_warning_note": (
        "Flujos del mes (país × tipo de flujo × ruta, y sus principales nacionalidades) fuera de su rango "
        "habitual: el cambio desde el mes de referencia, ajustado por la estación (el mismo mes de años "
        "anteriores), comparado con la variación habitual de los últimos 24 meses (mediana y MAD). {judged} "
        "series evaluadas.",
        "The month's flows (country × flow type × route, and their top nationalities) beyond their usual range: "
        "the change from the reference month, adjusted for the season (the same month of earlier years), "
        "against the usual variation of the last 24 months (median and MAD). {judged} series judged."),
    "alert": ("{what}: {value} en {month}; rango habitual {low}–{high} para {month} dado {reference} ({reference_value}).",
              "{what}: {value} in {month}; usual range {low}–{high} for {month} given {reference} ({reference_value})."),
    "no_alerts": ("Ningún flujo del mes salió de su rango habitual.", "No flow of the month moved beyond its usual range."),
    "too_short": ("Series demasiado cortas para juzgar (menos de {months} meses antes de este): {series}.",
                  "Series too short to judge (fewer than {months} months before this one): {series}."),
    "revisions": ("Revisiones (Q04)", "Revisions (Q04)"),
    "revisions_since": ("Desde el informe anterior ({since}): {cells} cifras cambiaron en {slices} "
                        "combinaciones de país, mes y tipo de flujo.",
                        "Since the previous report ({since}): {cells} figures changed in {slices} "
                        "combinations of country, month and flow type."),
    "revisions_window": ("En los 24 meses del informe (no hay informe anterior): {cells} cifras cambiaron en "
                         "{slices} combinaciones de país, mes y tipo de flujo.",
                         "In the report's 24 months (there is no previous report): {cells} figures changed in "
                         "{slices} combinations of country, month and flow type."),
    "revisions_named": ("Revisiones de más del 5 % de una cifra publicada (o cifras que aparecen o desaparecen):",
                        "Revisions of more than 5 % of a published figure (or figures added or dropped):"),
    "cell": ("Cifra (punto · contraparte · sexo · edad · nacionalidad)",
             "Figure (border point · counterpart · sex · age · nationality)"),
    "previous": ("Antes", "Before"),
    "now": ("Ahora", "Now"),
    "change": ("Cambio", "Change"),
    "flow_type": ("Tipo de flujo", "Flow type"),
    "completeness": ("Completitud y puntualidad (Q01)", "Completeness and timeliness (Q01)"),
    "completeness_note": ("Cada celda: un mes de un país miembro. Cada mes vence el día fijado para el país "
                          "(seed reporting_deadlines) del mes siguiente.",
                          "Each cell: one month of one member country. Each month is due on the country's day "
                          "(seed reporting_deadlines) of the next month."),
    **{f"state_{state}": words for state, words in Q01_STATE_WORDS.items()},
    "country": ("País", "Country"),
    "conference": ("Conferencia", "Conference"),
    "overall": ("Todos los países miembros", "All member countries"),
    "conformity": ("Conformidad con el estándar", "Conformity with the standard"),
    "conformity_note": ("Envíos del mes y filas que incumplen cada regla, por país.",
                        "The month's submissions and rows failing each rule, per country."),
    "no_failures": ("Ningún envío del mes incumple una regla.", "No submission of the month fails a rule."),
    "rule": ("Regla", "Rule"),
    "severity": ("Gravedad", "Severity"),
    "meaning": ("Qué significa", "What it means"),
    "submissions": ("Envíos", "Submissions"),
    "rows": ("Filas", "Rows"),
    "data_docs": ("Cada validación, regla por regla: Great Expectations Data Docs",
                  "Every validation, rule by rule: Great Expectations Data Docs"),
    "month_submissions": ("Envíos del mes", "The month's submissions"),
    "file": ("Archivo", "File"),
    "status": ("Estado", "Status"),
    "coverage": ("Cobertura de la armonización (Q03)", "Harmonisation coverage (Q03)"),
    "coverage_note": ("{share} de las {rows} filas enviadas para {period} tienen todos sus valores con código "
                      "armonizado.",
                      "{share} of the {rows} rows sent for {period} have every value mapped to a harmonised code."),
    "waiting": ("Valores sin correspondencia que esperan un alias (`hmo aliases add`)",
                "Values that map to nothing, waiting for an alias (`hmo aliases add`)"),
    "none": ("Ninguno.", "None."),
    "column": ("Columna", "Column"),
    "value": ("Valor enviado", "Value as sent"),
    "month": ("Mes", "Month"),
    "persons": ("Personas", "Persons"),
    "route": ("Ruta", "Route"),
    "reporting_country": ("País informante", "Reporting country"),
    "nationality": ("Nacionalidad", "Nationality"),
    "status_accepted": ("aceptado", "accepted"),
    "status_rejected": ("rechazado", "rejected"),
    "status_received": ("recibido", "received"),
    "error": ("error", "error"),
    "warning": ("advertencia", "warning"),
}


def known(key: str) -> bool:
    return key in _TEXTS


def t(key: str, language: str, **values: object) -> str:
    text = _TEXTS[key][LANGUAGES.index(language)]
    return text.format(**values) if values else text


def month_name(period: date, language: str) -> str:
    """"agosto de 2024", "August 2024"."""
    return format_skeleton("yMMMM", period, locale=language)  # CLDR's own pattern for a month of a year


def percent(value: float | None, language: str) -> str:
    """A share already in percent (81.9 -> "81,9 %" in Spanish), by CLDR's rules for the language."""
    return "—" if value is None else format_percent(value / 100, "#,##0.0 %", locale=language)


def number(value: int | None, language: str) -> str:
    return "—" if value is None else format_decimal(value, locale=language)
