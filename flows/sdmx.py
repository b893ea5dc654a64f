"""`hmo export fct_flows --format sdmx-csv`: the flows as SDMX-CSV 2.0, with their structure as SDMX-ML 3.0.

Both are written by pysdmx (a maintained SDMX library), never by hand. The
ids are fixed in docs/standard.md ("SDMX"): agency RCM_SACM, data structure
DSD_MIGRATION_FLOWS 1.0, concept scheme CS_MIGRATION, and one code list per
coded dimension, made from the published dimensions (so from the seeds). The
structure file goes beside the data file (`<name>.structure.xml`), because a
reader needs it to know the codes. pysdmx reads back a code outside its list
without complaint; tests/flows/test_export.py checks every exported code
against the code lists read back from the structure file.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hmo.errors import HmoError

if TYPE_CHECKING:
    import duckdb

AGENCY = "RCM_SACM"
VERSION = "1.0"
DSD_ID = "DSD_MIGRATION_FLOWS"
CONCEPTS_ID = "CS_MIGRATION"
# The flows' columns as SDMX components: (column, component id, code list id and the dimension it is made
# from (table, code column, label column), or None for a dimension without a code list).
DIMENSIONS: list[tuple[str, str, tuple[str, str, str, str] | None]] = [
    ("reporting_country", "REPORTING_COUNTRY", ("CL_AREA", "dim_nationality", "nationality_code", "label_{lang}")),
    ("flow_type", "FLOW_TYPE", ("CL_FLOW_TYPE", "dim_flow_type", "code", "label_{lang}")),
    ("border_point", "BORDER_POINT", None),  # each country's own border points: no common list
    ("counterpart_country", "COUNTERPART_AREA", ("CL_AREA", "dim_nationality", "nationality_code", "label_{lang}")),
    ("sex", "SEX", ("CL_SEX", "dim_sex", "code", "label_{lang}")),
    ("age", "AGE", ("CL_AGE", "dim_age", "code", "label_{lang}")),
    ("nationality", "CITIZENSHIP", ("CL_AREA", "dim_nationality", "nationality_code", "label_{lang}")),
    ("route", "ROUTE", ("CL_ROUTE", "dim_route", "code", "label_{lang}")),
    ("origin_scope", "ORIGIN_SCOPE", ("CL_ORIGIN_SCOPE", "dim_origin_scope", "code", "label_{lang}")),
    ("country_role", "COUNTRY_ROLE", ("CL_COUNTRY_ROLE", "dim_country_role", "code", "label_{lang}")),
    ("period", "TIME_PERIOD", None),  # SDMX's time dimension, which comes last
]
MEASURE = ("count", "OBS_VALUE")
ATTRIBUTES = [("obs_status", "OBS_STATUS", ("CL_OBS_STATUS", "dim_obs_status", "code", "label_{lang}"))]
TABLES = ("fct_flows", "pub_flows")  # the same columns; pub_flows is the public's, with Q cells


class SdmxFailed(HmoError):
    """pysdmx refused the structure or the data (a code list or a value it cannot write)."""


def structure_path(data: Path) -> Path:
    return data.with_name(data.name.removesuffix(".csv") + ".structure.xml")


def _concept_urn(concept: str) -> str:
    return f"urn:sdmx:org.sdmx.infomodel.conceptscheme.Concept={AGENCY}:{CONCEPTS_ID}({VERSION}).{concept}"


def structure(con: "duckdb.DuckDBPyConnection", lang: str) -> tuple[Any, list[Any], Any]:
    """The data structure, its code lists and its concept scheme, from the published dimensions."""
    from pysdmx.model import (Code, Codelist, Component, Components, Concept, ConceptScheme, DataStructureDefinition,
                              DataType, Role)

    codelists: dict[str, Codelist] = {}

    def codes(spec: tuple[str, str, str, str]) -> Codelist:
        list_id, table, key, label = spec
        if list_id not in codelists:
            rows = con.execute(f'select "{key}", "{label.format(lang=lang)}" from marts."{table}" '
                               f'order by 1').fetchall()
            codelists[list_id] = Codelist(id=list_id, agency=AGENCY, version=VERSION, name=list_id,
                                          items=[Code(id=code, name=name or code) for code, name in rows])
        return codelists[list_id]

    concepts: list[Concept] = []
    components = []

    def component(component_id: str, role: Any, dtype: Any, spec: tuple[str, str, str, str] | None,
                  required: bool = True) -> None:
        concept = Concept(id=component_id, urn=_concept_urn(component_id), name=component_id, dtype=dtype)
        concepts.append(concept)
        components.append(Component(id=component_id, required=required, role=role, concept=concept,
                                    local_dtype=dtype, local_codes=codes(spec) if spec else None,
                                    attachment_level="O" if role == Role.ATTRIBUTE else None))

    for _, component_id, spec in DIMENSIONS:
        component(component_id, Role.DIMENSION,
                  DataType.PERIOD if component_id == "TIME_PERIOD" else DataType.STRING, spec)
    component(MEASURE[1], Role.MEASURE, DataType.INTEGER, None, required=False)
    for _, component_id, spec in ATTRIBUTES:
        component(component_id, Role.ATTRIBUTE, DataType.STRING, spec)
    scheme = ConceptScheme(id=CONCEPTS_ID, agency=AGENCY, version=VERSION, name=CONCEPTS_ID, items=concepts)
    dsd = DataStructureDefinition(id=DSD_ID, agency=AGENCY, version=VERSION,
                                  name="Migration flows of the RCM and SACM member countries",
                                  components=Components(components))
    return dsd, list(codelists.values()), scheme


def write(con: "duckdb.DuckDBPyConnection", select_sql: str, params: list[object], data: Path, structure_file: Path,
          lang: str) -> int:
    """The rows of `select_sql` (fct_flows' columns) as SDMX-CSV 2.0 into `data`, the structure into
    `structure_file`. Returns the number of observations. The rows go through one pandas frame (pysdmx
    writes from one): memory grows with the rows exported, so export a period or a country at a time."""
    from pysdmx.errors import PysdmxError

    try:
        return _write(con, select_sql, params, data, structure_file, lang)
    except PysdmxError as exc:
        raise SdmxFailed(f"the SDMX export failed: {str(exc).splitlines()[0]}") from exc


def _write(con: "duckdb.DuckDBPyConnection", select_sql: str, params: list[object], data: Path,
           structure_file: Path, lang: str) -> int:
    from pysdmx.io import write_sdmx
    from pysdmx.io.format import Format
    from pysdmx.io.pd import PandasDataset

    dsd, codelists, scheme = structure(con, lang)
    columns = [
        *(f"strftime(period, '%Y-%m') as {cid}" if column == "period" else f'"{column}" as {cid}'
          for column, cid, _ in DIMENSIONS),
        f'"{MEASURE[0]}" as {MEASURE[1]}',
        *(f'"{column}" as {cid}' for column, cid, _ in ATTRIBUTES),
    ]
    frame = con.execute(f"select {', '.join(columns)} from ({select_sql})", params).df()
    dataset = PandasDataset(structure=dsd.to_schema(), data=frame)
    write_sdmx([dataset], Format.DATA_SDMX_CSV_2_0_0, str(data))
    write_sdmx([dsd, scheme, *codelists], Format.STRUCTURE_SDMX_ML_3_0, str(structure_file))
    return len(frame)
