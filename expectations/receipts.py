"""The answer a statistician gets for each file, in Spanish and English.

A receipt speaks the file's language: columns by the headers the file uses
(raw.submissions.column_names), every detail phrased in Spanish and in English
from the language-neutral detail the rules record (expectations/rules.py), and
for a country name that did not resolve, the close names the Observatory knows
and what to do next.
"""
from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from expectations.rules import RULES_BY_ID
from expectations.suites import data_docs_index
from hmo import events
from ingest.layout import STANDARD_COLUMNS, normalise_name
from hmo.durable import write_text_atomically
from hmo.settings import Paths

# Most file systems allow 255 bytes a name; the receipt adds its id, verdict and
# suffix (~40 bytes), so the sender's name keeps at most this many.
_NAME_BYTES = 160
_RECEIPT_NAME = re.compile(r"\.(?P<kind>d?)(?P<id>[0-9]+)\.(?:accepted|rejected|duplicate)\.txt$")

_STATUS_TEXT = {
    "accepted": ("ACEPTADO", "ACCEPTED"),
    "rejected": ("RECHAZADO", "REJECTED"),
    "duplicate": ("DUPLICADO", "DUPLICATE"),
}


_SEVERITY_TEXT = {"error": "error", "warning": "advertencia/warning"}

# Columns whose values are country names or codes: an unresolved one gets "did you mean".
_NAME_COLUMNS = ("nationality", "counterpart_country")
# Code lists a receipt quotes when a value is not one of their codes.
_CODE_LISTS = {"flow_type": "cl_flow_type", "sex": "cl_sex", "age": "cl_age", "obs_status": "cl_obs_status"}
# Jaro-Winkler similarity from which a known spelling counts as close: typos
# (`Venezuelaa` 0.98, `Moldavia`/`Moldova` 0.89) pass, an unrelated word
# sharing letters (`Narnia`/`Armenia` 0.85) does not.
_CLOSE = 0.88
_MAX_CANDIDATES = 3
# "Did you mean" compares each distinct unknown name with every known spelling
# (thousands): beyond this many names a file gets the next step without candidates.
_MAX_LOOKED_UP = 500

_CROSS_SECTIONS = {  # C02's cross-section -> (es, en)
    "age": ("el cuadro por edad", "the table by age"),
    "nationality": ("el cuadro por nacionalidad", "the table by nationality"),
    "sex": ("el cuadro por sexo", "the table by sex"),
    "sex x nationality": ("el cuadro por sexo y nacionalidad", "the table by sex and nationality"),
}
_NUMBER_WORDS = {2: ("dos", "two"), 3: ("tres", "three"), 4: ("cuatro", "four")}
# What the reader (ingest/sniff.py, ingest/submissions.py) says when a file is
# not a table, in Spanish; matched at the start of the English text.
_READ_ERRORS_ES = {
    "no data rows": "el archivo no tiene filas de datos",
    "the file is empty": "el archivo está vacío: no tiene fila de encabezado",
    "the file is a ZIP/XLSX container": "el archivo es un contenedor ZIP/XLSX, no texto delimitado",
    "the file holds NUL bytes": "el archivo contiene bytes NUL (binario o UTF-16): no es texto UTF-8 ni Latin-1",
    "not a readable XLSX workbook": "no es un libro XLSX legible",
    "the workbook has no sheet": "el libro no tiene la hoja que el perfil indica",
    "not a well-formed table": "no es una tabla bien formada (p. ej. filas con más columnas que el encabezado, "
                               "o comillas sin cerrar)",
}
_READ_ERRORS_EN = {"no data rows": "the file has no data rows"}
# Details the rules already write in both languages ("en / es"), as (es, en).
_BILINGUAL_DETAILS = {
    "empty / vacío": ("vacío: la columna es obligatoria", "empty: the column is required"),
    "a spreadsheet formula, not a code / una fórmula de hoja de cálculo, no un código":
        ("una fórmula de hoja de cálculo, no un código", "a spreadsheet formula, not a code"),
}


@dataclass(frozen=True)
class Said:
    """One detail in both languages."""

    es: str
    en: str


@dataclass(frozen=True)
class Country:
    code: str
    name_en: str
    name_es: str

    def named(self, language: str) -> str:
        """`Estados Unidos (USA) / United States`: the reader's language first, the other if it differs."""
        first, other = (self.name_es, self.name_en) if language == "es" else (self.name_en, self.name_es)
        return f"{first} ({self.code})" + (f" / {other}" if other != first else "")

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "name_en": self.name_en, "name_es": self.name_es}


@dataclass
class Context:
    """What phrasing one submission's problems needs beyond the problem itself."""

    country: str
    profile: str
    countries: dict[str, Country]  # every code seeds.countries and seeds.cl_nat_extra name
    code_lists: dict[str, list[str]]  # standard column -> its codes
    suggestions: dict[str, list[Country]]  # unknown name -> close countries (absent: none close)
    looked_up: set[str]  # unknown names compared with the known ones


def _countries(con: duckdb.DuckDBPyConnection) -> dict[str, Country]:
    rows = con.execute(
        """
        select iso3, name_en, name_es from seeds.countries
        union all
        select code, label_en, label_es from seeds.cl_nat_extra
        """
    ).fetchall()
    return {code: Country(code, name_en or code, name_es or name_en or code) for code, name_en, name_es in rows}


def _code_lists(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    return {column: [row[0] for row in con.execute(f"select code from seeds.{seed} order by code").fetchall()]
            for column, seed in _CODE_LISTS.items()}


def _suggestions(con: duckdb.DuckDBPyConnection, values: list[str],
                 countries: dict[str, Country]) -> dict[str, list[Country]]:
    """The closest countries to names that did not resolve: a hint, never applied.

    Spellings come from marts.dim_country_spelling, compared as typed
    and with their words sorted (its keys ignore word order); what is shown is
    the country's code and display names, never the spelling that matched.
    """
    if not values:
        return {}
    rows = con.execute(
        f"""
        with unknown as (
            select value, trim(regexp_replace(replace(lower(strip_accents(value)), '.', ''),
                                              '[^a-z0-9]+', ' ', 'g')) as plain
            from (select distinct unnest(?::varchar[]) as value)
        ),
        keyed as (
            select value, plain, array_to_string(list_sort(string_split(plain, ' ')), ' ') as sorted
            from unknown where plain <> ''
        ),
        scored as (
            select keyed.value, names.code,
                   max(greatest(jaro_winkler_similarity(keyed.plain, names.normalised_name),
                                jaro_winkler_similarity(keyed.sorted, names.normalised_name))) as score
            from keyed cross join marts.dim_country_spelling as names
            group by all
        )
        select value, list(code order by score desc, code)
        from scored
        where score >= {_CLOSE}
        group by value
        """,
        [values],
    ).fetchall()
    return {value: [countries[code] for code in codes if code in countries][:_MAX_CANDIDATES]
            for value, codes in rows}


def _quoted(value: str) -> str:
    """«value», with what a text file cannot show (line breaks, control characters) escaped."""
    return "«" + "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in value) + "»"


def _number(value: int, language: str) -> str:
    # English groups thousands with commas; Spanish, as the RAE recommends, with
    # a space and only from five digits, so that neither reads as a decimal.
    if language == "en":
        return f"{value:,}"
    return f"{value:,}".replace(",", " ") if abs(value) >= 10_000 else str(value)


def _either(items: list[str], language: str) -> str:
    """`A, B o C` / `A, B or C`."""
    word = " o " if language == "es" else " or "
    return word.join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else "".join(items)


def _alias_command(country: str, value: str, code: str) -> str:
    name = "".join(ch if ch.isprintable() else " " for ch in value.strip()).replace('"', '\\"')
    return f'hmo aliases add {country} "{name}" {code}'


def _unresolved_name(value: str, ctx: Context) -> Said:
    """A country name the code lists do not resolve: the closest ones, and what to do."""
    quoted = _quoted(value)
    candidates = ctx.suggestions.get(value, [])
    if candidates:
        only = candidates[0].code if len(candidates) == 1 else None  # else the statistician picks one
        return Said(
            f"¿Quiso decir {_either([c.named('es') for c in candidates], 'es')}? Corrija el valor y reenvíe el "
            f"archivo; o, si {quoted} es como su oficina escribe ese país, pida al Observatorio que lo agregue "
            f"como alias ({_alias_command(ctx.country, value, only or '<código>')})",
            f"Did you mean {_either([c.named('en') for c in candidates], 'en')}? Correct the value and resend the "
            f"file; or, if {quoted} is how your office writes that country, ask the Observatory to add it as "
            f"an alias ({_alias_command(ctx.country, value, only or '<code>')})",
        )
    if value in ctx.looked_up:
        es_known = f"{quoted} no se parece a ningún nombre de país que el Observatorio conozca. "
        en_known = f"{quoted} is not close to any country name the Observatory knows. "
    else:
        es_known = en_known = ""
    return Said(
        f"{es_known}Escriba el código ISO 3166-1 alfa-3 del país (o su nombre) y reenvíe el archivo; o, si "
        f"{quoted} es como su oficina escribe un país, pida al Observatorio que lo agregue como alias "
        f"({_alias_command(ctx.country, value, '<código>')})",
        f"{en_known}Write the country's ISO 3166-1 alpha-3 code (or its name) and resend the file; or, if "
        f"{quoted} is how your office writes a country, ask the Observatory to add it as an alias "
        f"({_alias_command(ctx.country, value, '<code>')})",
    )


def _ambiguous_name(value: str, codes: list[str], ctx: Context) -> Said:
    """A name two countries share resolves only through the reporting country's alias file (standard §3)."""
    countries = [ctx.countries.get(code, Country(code, code, code)) for code in codes]
    many_es, many_en = _NUMBER_WORDS.get(len(codes), (str(len(codes)), str(len(codes))))
    commands = [_alias_command(ctx.country, value, code) for code in codes]
    quoted = _quoted(value)
    return Said(
        f"{quoted} es el nombre de {many_es} países: {_either([f'{c.name_es} ({c.code})' for c in countries], 'es')}. "
        f"Cuál de ellos quiere decir su oficina se registra en el archivo de alias de su país: pida al "
        f"Observatorio que lo agregue ({_either(commands, 'es')}).",
        f"{quoted} is a name of {many_en} countries: {_either([f'{c.name_en} ({c.code})' for c in countries], 'en')}. "
        f"Which one your office means is recorded in your country's alias file: ask the Observatory to add "
        f"it ({_either(commands, 'en')}).",
    )


def _phrase_s01(value: str | None, detail: str | None, column: str | None, ctx: Context) -> Said:
    reason = value or "no data rows"
    if " / " in reason:  # ingest already wrote it in both languages (a profile's year check)
        spanish, _, english = reason.partition(" / ")
        return Said(spanish, english)
    es = next((text for prefix, text in _READ_ERRORS_ES.items() if reason.startswith(prefix)), None)
    en = _READ_ERRORS_EN.get(reason, reason)
    return Said(es or f"el archivo no pudo leerse como tabla (motivo, en inglés: {reason})",
                f"the file could not be read as a table: {en}")


def _phrase_s02(value: str | None, detail: str | None, column: str | None, ctx: Context) -> Said:
    column = column or "-"
    if detail:  # named more than once: value lists the headers
        headers = ", ".join(_quoted(h) for h in (value or "").split(" | "))
        return Said(f"la columna {column} está nombrada más de una vez ({headers}): deje una sola",
                    f"the column {column} is named more than once ({headers}): keep only one")
    if value:  # the profile reads it from a column the file lacks
        return Said(f"falta la columna {_quoted(value)}, que el perfil {ctx.profile} lee como {column}",
                    f"the column {_quoted(value)} is missing; profile {ctx.profile} reads it as {column}")
    alias = STANDARD_COLUMNS[column][0] if column in STANDARD_COLUMNS else None
    return Said(f"falta la columna {column}" + (f" (o {alias})" if alias else ""),
                f"the column {column}" + (f" (or {alias})" if alias else "") + " is missing")


def _phrase_s03(value: str | None, detail: str | None, column: str | None, ctx: Context) -> Said | None:
    if not detail:
        return None
    if value and value != detail:
        return Said(f"la fila dice {_quoted(value)} y la carpeta de entrada es {detail}: deben coincidir",
                    f"the row says {_quoted(value)} and the inbox folder is {detail}: they must agree")
    return Said(f"la carpeta de entrada {detail} no es un país miembro de la CRM ni de la CSM",
                f"the inbox folder {detail} is not a member country of the RCM or SACM")


def _phrase_r01(value: str | None, detail: str | None, column: str | None, ctx: Context) -> Said:
    if not value or not value.strip():
        return Said("vacío: el periodo es obligatorio", "empty: the period is required")
    this_month = date.today().strftime("%Y-%m")
    if re.fullmatch(r"\s*[0-9]{4}-(0[1-9]|1[0-2])\s*", value):
        return Said(f"{_quoted(value)} está fuera del rango 2000-01 a {this_month}",
                    f"{_quoted(value)} is outside 2000-01 to {this_month}")
    return Said(f"{_quoted(value)} no es un mes AAAA-MM (año y mes, p. ej. 2024-01)",
                f"{_quoted(value)} is not a month YYYY-MM (year and month, e.g. 2024-01)")


def _ambiguous_codes(detail: str | None) -> list[str] | None:
    """The codes of R02's `ambiguous:GUF,GUY`; None for any other detail."""
    if not detail or not detail.startswith("ambiguous:"):
        return None
    return [code for code in detail.removeprefix("ambiguous:").split(",") if code]


def _as_recorded(detail: str) -> Said:
    """A detail no phrase knows: a rule's own "en / es" text split, else the text in both."""
    if detail in _BILINGUAL_DETAILS:
        return Said(*_BILINGUAL_DETAILS[detail])
    english, _, spanish = detail.partition(" / ")
    return Said(spanish or detail, english)


def _phrase_r02(value: str | None, detail: str | None, column: str | None, ctx: Context) -> Said | None:
    codes = _ambiguous_codes(detail)
    if codes is not None:
        return _ambiguous_name(value or "", codes, ctx)
    if detail:
        return _as_recorded(detail)
    if value is None:
        return None
    if column in _NAME_COLUMNS:
        return _unresolved_name(value, ctx)
    if column in ctx.code_lists:
        listed = ", ".join(ctx.code_lists[column])
        return Said(f"{_quoted(value)} no es un código de la lista; los códigos son: {listed}",
                    f"{_quoted(value)} is not a code of the list; the codes are: {listed}")
    if column == "reporting_country":
        return Said(f"{_quoted(value)} no es un código ISO 3166-1 alfa-3 de país",
                    f"{_quoted(value)} is not an ISO 3166-1 alpha-3 country code")
    return None


def _phrase_r03(value: str | None, detail: str | None, column: str | None, ctx: Context) -> Said | None:
    if value is None or not value.strip():
        return Said("vacía: solo puede faltar con estado_obs Q (suprimida)",
                    "empty: it may be left out only with obs_status Q (suppressed)")
    text = value.strip()
    if re.fullmatch(r"[0-9]{1,3}([.,][0-9]{3})+", text):
        return Said(f"{_quoted(value)} lleva separador de miles: escriba {text.replace('.', '').replace(',', '')}",
                    f"{_quoted(value)} has a thousands separator: write {text.replace('.', '').replace(',', '')}")
    if text.startswith("-"):
        return Said(f"{_quoted(value)} es negativo", f"{_quoted(value)} is negative")
    return Said(f"{_quoted(value)} no es un número entero", f"{_quoted(value)} is not a whole number")


def _phrase_r04(value: str | None, detail: str | None, column: str | None, ctx: Context) -> Said | None:
    first = re.search(r"[0-9]+$", detail or "")
    if not first:
        return None
    return Said(f"misma clave que la fila {first[0]}", f"same key as row {first[0]}")


def _phrase_c01(value: str | None, detail: str | None, column: str | None, ctx: Context) -> Said | None:
    try:
        total, parts = int(value or ""), int(detail or "")
    except ValueError:
        return None
    gap = abs(parts - total)
    es_gap, en_gap = ("más", "more") if parts > total else ("menos", "fewer")
    return Said(f"las partes suman {_number(parts, 'es')} y el total declarado es {_number(total, 'es')} "
                f"({_number(gap, 'es')} {es_gap})",
                f"the parts add up to {_number(parts, 'en')}, the total given is {_number(total, 'en')} "
                f"({_number(gap, 'en')} {en_gap})")


def _phrase_c02(value: str | None, detail: str | None, column: str | None, ctx: Context) -> Said | None:
    try:
        found = json.loads(detail or "")
        this = found["cross_section"]
        totals = {t["cross_section"]: (int(t["total"]), t["first_row"]) for t in found["totals"]}
    except (ValueError, KeyError, TypeError):
        return None
    where_es, where_en = [found.get("period") or "-"], [found.get("period") or "-"]
    if found.get("flow_type"):
        where_es.append(found["flow_type"])
        where_en.append(found["flow_type"])
    for key, es, en in (("border_point", "punto fronterizo", "border point"),
                        ("counterpart_country", "país contraparte", "counterpart country")):
        if found.get(key) and found[key] != "_T":
            where_es.append(f"{es} {found[key]}")
            where_en.append(f"{en} {found[key]}")
    own = totals[this][0]
    phrases_es = [f"{_CROSS_SECTIONS.get(this, (this, this))[0]} suma {_number(own, 'es')}"]
    phrases_en = [f"{_CROSS_SECTIONS.get(this, (this, this))[1]} sums to {_number(own, 'en')}"]
    for other, (total, first_row) in totals.items():
        if other == this:
            continue
        es, en = _CROSS_SECTIONS.get(other, (other, other))
        phrases_es.append(f"{es} (desde la fila {first_row}), {_number(total, 'es')}, "
                          f"diferencia {_number(abs(own - total), 'es')}")
        phrases_en.append(f"{en} (from row {first_row}) to {_number(total, 'en')}, "
                          f"difference {_number(abs(own - total), 'en')}")
    return Said(f"En {', '.join(where_es)}: {'; '.join(phrases_es)}.",
                f"In {', '.join(where_en)}: {'; '.join(phrases_en)}.")


def _phrase_a01(value: str | None, detail: str | None, column: str | None, ctx: Context) -> Said | None:
    if not detail:
        return None
    check = detail.removeprefix("dbt test ")
    return Said(f"control: {check}", f"check: {check}")


# Each rule's detail in words: (value, detail, column, context) -> both languages, or None.
Phrase = Callable[[str | None, str | None, str | None, Context], Said | None]
_PHRASES: dict[str, Phrase] = {
    "S01": _phrase_s01, "S02": _phrase_s02, "S03": _phrase_s03, "R01": _phrase_r01, "R02": _phrase_r02,
    "R03": _phrase_r03, "R04": _phrase_r04, "C01": _phrase_c01, "C02": _phrase_c02, "A01": _phrase_a01,
}


def _column_names(stored: str | None) -> dict[str, str | None]:
    try:
        names = json.loads(stored) if stored else {}
    except ValueError:
        return {}
    return names if isinstance(names, dict) else {}


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "?", "!")) else ".")


def _problem(rule_id: str, severity: str, row: int | None, column: str | None, value: str | None,
             detail: str | None, names: dict[str, str | None], ctx: Context) -> dict:
    """One problem of the JSON receipt: machine-readable fields, and its detail in both languages."""
    problem: dict = {"rule": rule_id, "severity": severity, "row": row, "column": column}
    if column in STANDARD_COLUMNS:
        # A column the profile fixes has no header: the receipt names the profile instead.
        problem["column_as_written"] = names.get(column) or column
        if column in names and names[column] is None:
            problem["fixed_by_profile"] = ctx.profile
    problem["value"] = value
    phrase = _PHRASES.get(rule_id)
    said = phrase(value, detail, column, ctx) if phrase else (_as_recorded(detail) if detail else None)
    if said:
        problem["detail_es"], problem["detail_en"] = _sentence(said.es), _sentence(said.en)
    if rule_id == "R02" and column in _NAME_COLUMNS and value is not None:
        codes = _ambiguous_codes(detail)
        if codes is not None:
            problem["suggestions"] = [ctx.countries[c].as_json() for c in codes if c in ctx.countries]
        elif not detail:
            problem["suggestions"] = [c.as_json() for c in ctx.suggestions.get(value, [])]
    problem["message_es"] = RULES_BY_ID[rule_id].message_es
    problem["message_en"] = RULES_BY_ID[rule_id].message_en
    return problem


def _note(note: str) -> str:
    """Ingest's notes (English) as the receipt says them, Spanish first."""
    if note.startswith("profile: "):
        return f"perfil / profile: {note.removeprefix('profile: ')}"
    if note.startswith("ignored column: "):
        return f"columna no leída / column not read: {note.removeprefix('ignored column: ')}"
    return note


def _context(con: duckdb.DuckDBPyConnection, data: dict, failures: list[tuple]) -> Context:
    countries = _countries(con)
    # Names the rules found ambiguous already carry their candidates.
    unknown = sorted({value for rule_id, _, _, column, value, detail in failures
                      if rule_id == "R02" and column in _NAME_COLUMNS and value and not detail})
    looked_up = set(unknown[:_MAX_LOOKED_UP])
    return Context(country=data["reporting_country"], profile=data["profile"] or "standard",
                   countries=countries, code_lists=_code_lists(con),
                   suggestions=_suggestions(con, sorted(looked_up), countries), looked_up=looked_up)


def _summed_observations(con: duckdb.DuckDBPyConnection, submission_id: int) -> int:
    """Observations a summing profile made of the file's rows. The id is written into
    the query, not bound: DuckDB then pushes it through the views to the raw scan
    (bound, the whole history is resolved: ~0.5 s a receipt on 5,000 rows)."""
    counted = con.execute(
        f"select count(*) from marts.fct_submitted_observations where submission_id = {int(submission_id)}"
    ).fetchone()
    assert counted is not None  # count(*) always returns a row
    return counted[0]


def receipt_data(con: duckdb.DuckDBPyConnection, submission_id: int, duplicate_id: int | None = None) -> dict:
    duplicate = None
    if duplicate_id is not None:
        duplicate = con.execute(
            "select submission_id, file_name, received_at from raw.duplicates where duplicate_id = ?",
            [duplicate_id],
        ).fetchone()
        if duplicate is None:  # answer_due lists it as not answered yet and goes on to the next
            raise ValueError(f"no duplicate {duplicate_id} in raw.duplicates")
        submission_id = duplicate[0]
    # A duplicate is ingest's answer, given at once, before any build made the
    # marts: it reads ingest's registry. A verdict is read from the marts.
    registry = "raw.submissions" if duplicate is not None else "marts.fct_submissions"
    status, decided_at = ("null", "null") if duplicate is not None else ("status", "decided_at")
    sub = con.execute(
        f"""
        select submission_id, reporting_country, file_name, sha256, {status}, data_rows,
               encoding, delimiter, profile, notes, received_at, {decided_at}, column_names, sum_duplicates
        from {registry} where submission_id = ?
        """,
        [submission_id],
    ).fetchone()
    if sub is None:
        raise ValueError(f"no submission {submission_id} in {registry}")
    keys = ["submission_id", "reporting_country", "file_name", "sha256", "status", "data_rows",
            "encoding", "delimiter", "profile", "notes", "received_at", "decided_at", "column_names",
            "sum_duplicates"]
    data: dict[str, Any] = {k: (str(v) if k.endswith("_at") and v is not None else v) for k, v in zip(keys, sub)}
    sums = data.pop("sum_duplicates")
    data["notes"] = [_note(n) for n in data["notes"] or []]
    data["column_names"] = names = _column_names(data["column_names"])
    if duplicate is not None:
        data.update(status="duplicate", duplicate_id=duplicate_id, duplicate_of=submission_id,
                    file_name=duplicate[1], received_at=str(duplicate[2]), original_file_name=sub[2],
                    problems=[])
        return data
    # Distinct: a wide table's row is several observations, and one bad cell
    # of it (a name, say) fails once for each; the statistician has one to fix.
    failures = con.execute(
        """
        select distinct rule_id, severity, source_row, column_name, value, detail
        from marts.fct_rule_failures where submission_id = ?
        order by severity, source_row nulls first, rule_id, column_name
        """,
        [submission_id],
    ).fetchall()
    if failures:
        ctx = _context(con, data, failures)
        data["problems"] = [_problem(rule_id, severity, row, column, value, detail, names, ctx)
                            for rule_id, severity, row, column, value, detail in failures]
    else:
        data["problems"] = []
    summed = _summed_observations(con, submission_id) if sums else None
    if summed and summed != data["data_rows"]:
        data["notes"].append(f"{data['data_rows']} filas sumadas en {summed} observaciones de códigos distintos / "
                             f"{data['data_rows']} rows summed into {summed} observations with distinct codes")
    if data["status"] == "accepted":
        covered = con.execute(
            # What ingest read, as sent: naming the months needs no name resolved.
            """
            select coalesce(list(distinct trim(period) order by trim(period))
                                filter (where nullif(trim(period), '') is not null), []),
                   coalesce(list(distinct upper(trim(flow_type)) order by upper(trim(flow_type)))
                                filter (where nullif(trim(flow_type), '') is not null), [])
            from raw.observations where submission_id = ?
            """,
            [submission_id],
        ).fetchone()
        assert covered is not None  # an aggregate always returns a row
        data["periods"], data["flow_types"] = covered
    return data


def column_text(problem: dict) -> str:
    """The column as the file names it, the standard name beside it when that differs."""
    column = problem.get("column")
    if column is None:
        return "-"
    if column == "key":
        return "clave/key"
    if problem.get("fixed_by_profile"):
        profile = problem["fixed_by_profile"]
        return f"{column} (fijado por el perfil {profile} / fixed by profile {profile})"
    written = problem.get("column_as_written") or column
    return written if normalise_name(written) == column else f"{written} [{column}]"


def _problem_lines(problem: dict) -> list[str]:
    row = problem["row"] if problem["row"] is not None else "-"
    value = repr(problem["value"]) if problem["value"] is not None else "-"
    lines = [f"- [{problem['rule']}] {_SEVERITY_TEXT.get(problem['severity'], problem['severity'])}"
             f" · fila/row {row} · columna/column {column_text(problem)} · valor/value {value}",
             f"    ES: {problem['message_es']}"]
    if problem.get("detail_es"):
        lines.append(f"        {problem['detail_es']}")
    lines.append(f"    EN: {problem['message_en']}")
    if problem.get("detail_en"):
        lines.append(f"        {problem['detail_en']}")
    return lines


def render_text(data: dict) -> str:
    es, en = _STATUS_TEXT[data["status"]]
    lines = [
        "Observatorio de Movilidad Humana / Human Mobility Observatory",
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
        lines.append(f"Periodos / Periods: {', '.join(data.get('periods') or []) or '-'}")
        lines.append(f"Tipos de flujo / Flow types: {', '.join(data.get('flow_types') or []) or '-'}")
    for note in data.get("notes") or []:
        lines.append(f"Nota / Note: {note}")
    if data.get("data_docs"):
        lines.append(f"Validación regla por regla / Validation rule by rule (Data Docs): {data['data_docs']}")
    errors = [p for p in data["problems"] if p["severity"] == "error"]
    warnings = [p for p in data["problems"] if p["severity"] == "warning"]
    lines.append(f"Errores / Errors: {len(errors)}   Advertencias / Warnings: {len(warnings)}")
    for problem in data["problems"]:
        lines.extend(_problem_lines(problem))
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


def write_receipt(con: duckdb.DuckDBPyConnection, paths: Paths, submission_id: int,
                  duplicate_id: int | None = None) -> Path:
    data = receipt_data(con, submission_id, duplicate_id)
    docs = data_docs_index(paths, data["reporting_country"])
    if duplicate_id is None and docs.exists():
        # The country's own site: its statisticians never see another country's results there.
        data["data_docs"] = docs.relative_to(paths.root).as_posix()
    folder = paths.outbox / data["reporting_country"]
    folder.mkdir(parents=True, exist_ok=True)
    receipt_id = f"d{duplicate_id}" if duplicate_id is not None else str(submission_id)
    stem = receipt_stem(data["file_name"], receipt_id, data["status"])
    # The text file is written last: its presence is what says "answered" (answered()).
    write_text_atomically(folder / f"{stem}.json", json.dumps(data, ensure_ascii=False, indent=2, default=str))
    text_path = folder / f"{stem}.txt"
    write_text_atomically(text_path, render_text(data))
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
    try:
        submissions = con.execute(
            """
            select submission_id, status, reporting_country, file_name
            from marts.fct_submissions
            where status = 'rejected'
               or (status = 'accepted'
                   and submission_id <= (select coalesce(max(audited_through), 0) from main.hmo_audit))
            order by submission_id
            """
        ).fetchall()
    except duckdb.CatalogException:
        submissions = []  # no build has made the marts yet, so nothing is decided: duplicates only
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


def country_receipts(paths: Paths, country: str, receipt_id: str | None = None) -> list[dict]:
    """Every answered receipt of one country (or only the one `receipt_id` names: "12", "d3"), newest
    first, each its JSON plus `receipt_id` and `stem`.

    A receipt counts once its text file exists (it is written last); the
    country's folder is the only one read, so nothing of another country can
    be in the list. Only the JSON files asked for are opened.
    """
    folder = paths.outbox / country
    found: list[dict] = []
    for entry in os.scandir(folder) if folder.is_dir() else ():
        match = _RECEIPT_NAME.search(entry.name)
        if not match or (receipt_id is not None and f"{match['kind']}{match['id']}" != receipt_id):
            continue
        stem = entry.name[: -len(".txt")]
        try:
            data = json.loads((folder / f"{stem}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if data.get("reporting_country") != country:
            continue
        data["receipt_id"] = f"{match['kind']}{match['id']}"
        data["stem"] = stem
        found.append(data)
    found.sort(key=lambda d: (str(d.get("received_at") or ""), d["receipt_id"]), reverse=True)
    return found
