"""Reference metadata beside an export: what the figures count, in English and Spanish.

For every (reporting country, flow type) among the exported rows, one SDMX
reference metadata report, written by pysdmx as SDMX-JSON 2.0 into
`<name>.metadata.json` beside the data, whatever the data's format. The
entries come from `marts.dim_reference_metadata` (seed
`reference_metadata.csv`): an entry concerns a report when its country and
flow type are the report's or `_T`, and its months overlap the exported ones.
Per concept, the most specific entries win (the country's own over its flow
type's over every flow's): Mexico's "events" replaces the general "persons".
Each concept's value is a text per language (`{"en": …, "es": …}`).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.sdmx import AGENCY, DSD_ID, VERSION, SdmxFailed

if TYPE_CHECKING:
    import duckdb

TABLE = "dim_reference_metadata"
# The exported rows must say whose figures they are, of what, and when.
COLUMNS = frozenset({"reporting_country", "flow_type", "period"})
METADATAFLOW = f"urn:sdmx:org.sdmx.infomodel.metadatastructure.Metadataflow={AGENCY}:MDF_MIGRATION_FLOWS(1.0)"
TARGET = f"urn:sdmx:org.sdmx.infomodel.datastructure.DataStructure={AGENCY}:{DSD_ID}({VERSION})"
REPORT_VERSION = "1.0.0"  # SDMX-JSON 2.0's schema wants a report's version in three parts


def metadata_path(data: Path) -> Path:
    return data.with_name(f"{data.name.rsplit('.', 1)[0]}.metadata.json")


def applies(columns: set[str] | list[str]) -> bool:
    return COLUMNS <= set(columns)


def reports(con: "duckdb.DuckDBPyConnection", select_sql: str, params: list[object]) -> list[Any]:
    """The reports for the rows of `select_sql`, one per (reporting country, flow type) among them."""
    from pysdmx.model import MetadataAttribute, MetadataReport

    rows = con.execute(f"""
        with exported as (
            select reporting_country, flow_type, min(period) as first_month, max(period) as last_month
            from ({select_sql}) group by all
        ),
        entries as (
            select exported.*, entry.concept, entry.text_en, entry.text_es,
                   (entry.reporting_country <> '_T')::int * 2 + (entry.flow_type <> '_T')::int as specificity,
                   entry.valid_from
            from exported
            inner join marts.{TABLE} as entry
                on entry.reporting_country in (exported.reporting_country, '_T')
               and entry.flow_type in (exported.flow_type, '_T')
               and (entry.valid_from is null or entry.valid_from <= exported.last_month)
               and (entry.valid_to is null or entry.valid_to >= exported.first_month)
        )
        select exported.reporting_country, exported.flow_type,
               strftime(exported.first_month, '%Y-%m'), strftime(exported.last_month, '%Y-%m'),
               entries.concept, entries.text_en, entries.text_es
        from exported
        left join entries using (reporting_country, flow_type)
        qualify entries.concept is null or entries.specificity = max(entries.specificity) over (
            partition by exported.reporting_country, exported.flow_type, entries.concept)
        order by all nulls first""", params).fetchall()
    found: dict[tuple[str, str, str, str], dict[str, dict[str, list[str]]]] = defaultdict(dict)
    for country, flow_type, first, last, concept, text_en, text_es in rows:
        texts = found[(country, flow_type, first, last)]
        if concept is not None:
            for lang, text in (("en", text_en), ("es", text_es)):
                texts.setdefault(concept, {}).setdefault(lang, []).append(text)
    return [
        MetadataReport(
            id=f"{country}_{flow_type}", agency=AGENCY, version=REPORT_VERSION,
            name=f"{country} {flow_type}", metadataflow=METADATAFLOW, targets=[TARGET],
            reportingBegin=first, reportingEnd=last,
            attributes=[
                MetadataAttribute(id="REPORTING_COUNTRY", value=country),
                MetadataAttribute(id="FLOW_TYPE", value=flow_type),
                *(MetadataAttribute(id=concept, value={lang: "\n\n".join(parts) for lang, parts in by_lang.items()})
                  for concept, by_lang in sorted(texts.items())),
            ])
        for (country, flow_type, first, last), texts in sorted(found.items())
    ]


def write(con: "duckdb.DuckDBPyConnection", select_sql: str, params: list[object], path: Path) -> int:
    """The reports for the rows of `select_sql` as SDMX-JSON 2.0 into `path`; returns how many. No rows,
    no reports and no file: SDMX-JSON has no metadata message without a report."""
    from pysdmx.errors import PysdmxError
    from pysdmx.io import write_sdmx
    from pysdmx.io.format import Format

    found = reports(con, select_sql, params)
    if not found:
        return 0
    try:
        write_sdmx(found, Format.REFMETA_SDMX_JSON_2_0_0, str(path))
    except PysdmxError as exc:
        raise SdmxFailed(f"the reference metadata could not be written: {str(exc).splitlines()[0]}") from exc
    return len(found)
