"""The rules of DATA_STANDARD.md §6, each once: id, severity, bilingual message, SQL.

Every query selects the offending rows of `{batch}` as
(submission_id, source_row, column_name, value, detail). Great Expectations runs
them as UnexpectedRowsExpectations; the same text fills receipts past GX's
200-row sample, so there is one definition per rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]
Target = Literal["submissions", "observations", "marts"]

CODED_COLUMNS = ["reporting_country", "flow_type", "counterpart_country", "sex", "age", "nationality",
                 "obs_status"]
# Required by the standard (§2) and coded: an empty cell is an R02 failure too,
# so that no published row ever lacks one of them.
REQUIRED_CODED = ["reporting_country", "flow_type", "sex", "age", "nationality"]
# A cell a spreadsheet would run as a formula (OWASP's list): never a border-point code.
FORMULA_LIKE = r"^[=+@\t\r-]"


@dataclass(frozen=True)
class Rule:
    rule_id: str
    severity: Severity
    target: Target
    message_en: str
    message_es: str
    sql: str


_S01 = """
select submission_id, null::bigint as source_row, null as column_name,
       coalesce(read_error, 'no data rows') as value, null as detail
from {batch}
where read_error is not null or coalesce(data_rows, 0) = 0
"""

# missing_columns: "standard column=source column the profile expects" (or the
# standard column alone); duplicate_columns: "standard column=header|header".
_S02 = """
with missing as (
    select submission_id, unnest(missing_columns) as entry
    from {batch}
    where read_error is null
),
named_twice as (
    select submission_id, unnest(duplicate_columns) as entry
    from {batch}
    where read_error is null
)
select submission_id, null::bigint as source_row, split_part(entry, '=', 1) as column_name,
       nullif(split_part(entry, '=', 2), '') as value, null as detail
from missing
union all
select submission_id, null::bigint as source_row, split_part(entry, '=', 1) as column_name,
       replace(substr(entry, strpos(entry, '=') + 1), '|', ' | ') as value,
       'named more than once / nombrada más de una vez' as detail
from named_twice
"""

_S03 = """
select submission_id, source_row, 'reporting_country' as column_name,
       coalesce(reporting_country, reporting_country_value) as value, inbox_country as detail
from {batch}
where coalesce(reporting_country, reporting_country_value) is distinct from inbox_country
   -- standard v1.1: the folder must be a reporting country (a member of the RCM or SACM)
   or inbox_country not in (select iso3 from seeds.countries where conference is not null)
"""

_R01 = """
select submission_id, source_row, 'period' as column_name, period_value as value, null as detail
from {batch}
where period is null
"""

_EMPTY = "\n   or ".join(f"(column_name = '{c}' and {c} is null and {c}_value is null)" for c in REQUIRED_CODED)
# A name two countries share stays unresolved with its candidates
# ("ambiguous:GUF,GUY"); the receipt names both and the way out (an alias).
NAME_COLUMNS = ["counterpart_country", "nationality"]
_R02_DETAIL = {c: f"'ambiguous:' || {c}_ambiguous" for c in NAME_COLUMNS}
_R02 = "\nunion all\n".join(
    f"""
select submission_id, source_row, '{column}' as column_name, {column}_value as value,
       {_R02_DETAIL.get(column, "null")} as detail
from {{batch}}
where {column} is null and {column}_value is not null"""
    for column in CODED_COLUMNS
) + f"""
union all
select submission_id, source_row, column_name, null as value, 'empty / vacío' as detail
from {{batch}}, (select unnest({REQUIRED_CODED}) as column_name)
where {_EMPTY}
union all
select submission_id, source_row, 'border_point' as column_name, border_point as value,
       'a spreadsheet formula, not a code / una fórmula de hoja de cálculo, no un código' as detail
from {{batch}}
where regexp_matches(border_point, '{FORMULA_LIKE}')
"""

_R03 = """
select submission_id, source_row, 'count' as column_name, count_value as value, null as detail
from {batch}
where count is null and not (obs_status = 'Q' and count_value is null)
"""

SLICE = ["reporting_country", "period", "flow_type", "border_point", "counterpart_country"]
_AS_SUBMITTED = {
    "reporting_country": "coalesce(reporting_country, reporting_country_value)",
    "period": "coalesce(period::varchar, period_value)",
    "flow_type": "coalesce(flow_type, flow_type_value)", "border_point": "border_point",
    "counterpart_country": "coalesce(counterpart_country, counterpart_country_value)",
    "sex": "coalesce(sex, sex_value)", "age": "coalesce(age, age_value)",
    "nationality": "coalesce(nationality, nationality_value)",
}
# The batch carries each row's slice (its submission and SLICE columns, codes
# or, where unresolved, the values as submitted) as one `slice_key` column, so
# the rules group and join on it instead of five text columns: at 10M rows that
# halves C01 and C02, whose hash tables otherwise outgrow the memory limit
# (docs/benchmarks.md). The key is a 64-bit hash; prepare_batches checks that
# no two slices of the batch share one and else falls back to the exact key.
SLICE_KEY_HASHED = f"hash(submission_id, {', '.join(_AS_SUBMITTED[c] for c in SLICE)})"
SLICE_KEY_EXACT = f"struct_pack(submission_id, {', '.join(f'{c} := {_AS_SUBMITTED[c]}' for c in SLICE)})"
_KEY_SOURCE = {"slice_key": "slice_key", **{c: _AS_SUBMITTED[c] for c in ("sex", "age", "nationality")}}

# Grouping on the key and joining back costs one hash aggregate; a window over
# the whole batch would sort it.
_R04 = f"""
with keyed as (
    select submission_id, source_row,
           {", ".join(f"{expr} as {name}" for name, expr in _KEY_SOURCE.items())}
    from {{batch}}
),
repeated as (
    select submission_id, {", ".join(_KEY_SOURCE)}, min(source_row) as first_row
    from keyed
    group by all
    having count(*) > 1
)
-- detail: the first row with the key (receipts phrase it in Spanish and English)
select keyed.submission_id, keyed.source_row, 'key' as column_name, null as value,
       repeated.first_row::varchar as detail
from keyed
join repeated using (submission_id, {", ".join(_KEY_SOURCE)})
where keyed.source_row <> repeated.first_row
"""

_CHECKABLE = """
obs as (
    select submission_id, source_row, count, slice_key, sex, age, nationality
    from {batch}
    where period is not null and sex is not null and age is not null
      and nationality is not null and counterpart_country is not null
      and reporting_country is not null
)"""


def _c01_dimension(dimension: str, complete: str) -> str:
    """Parts of one dimension against their `_T` with every other column equal."""
    others = [c for c in ["slice_key", "sex", "age", "nationality"] if c != dimension]
    on = ", ".join(["submission_id", *others])
    return f"""
{dimension}_totals as (
    select * from obs where {dimension} = '_T'
),
{dimension}_parts as (
    select submission_id, {", ".join(others)}, sum(count) as parts_sum,
           bool_and(count is not null) as all_given, {complete} as complete
    from obs
    semi join {dimension}_totals using ({on})
    where {dimension} <> '_T'
    group by all
),
{dimension}_failures as (
    select t.submission_id, t.source_row, '{dimension}' as column_name,
           t.count::varchar as value, p.parts_sum::varchar as detail, p.all_given, p.complete,
           p.parts_sum, t.count as total
    from {dimension}_parts as p
    join {dimension}_totals as t using ({on})
)"""


_AGE_OTHERS = ["slice_key", "sex", "nationality"]

# Each row is a part of its parent in each dimension (sex and nationality: `_T`;
# age: its node in the CL_AGE tree). Parts must add up to a given parent when
# they are complete (F and M; every child age band; a nationality list closed by
# `_O`), and may never exceed it. Suppressed parts make a total uncheckable.
_C01 = f"""
with {_CHECKABLE},
{_c01_dimension("sex", "bool_or(sex = 'F') and bool_or(sex = 'M')")},
{_c01_dimension("nationality", "bool_or(nationality = '_O')")},
age_children as (
    select parent, count(*) filter (where code <> '_U') as expected
    from seeds.cl_age
    where parent is not null
    group by parent
),
age_parts as (
    select obs.submission_id, {", ".join(f"obs.{c}" for c in _AGE_OTHERS)}, cl_age.parent as age,
           sum(obs.count) as parts_sum, bool_and(obs.count is not null) as all_given,
           count(distinct obs.age) filter (where obs.age <> '_U') = any_value(age_children.expected)
               as complete
    from obs
    join seeds.cl_age as cl_age on cl_age.code = obs.age and cl_age.parent is not null
    join age_children on age_children.parent = cl_age.parent
    semi join obs as totals
      on totals.submission_id = obs.submission_id and totals.age = cl_age.parent
     and {" and ".join(f"totals.{c} = obs.{c}" for c in _AGE_OTHERS)}
    group by all
),
age_failures as (
    select t.submission_id, t.source_row, 'age' as column_name,
           t.count::varchar as value, p.parts_sum::varchar as detail, p.all_given, p.complete,
           p.parts_sum, t.count as total
    from age_parts as p
    join obs as t using (submission_id, {", ".join(_AGE_OTHERS)}, age)
),
failures as (
    select * from sex_failures
    union all select * from nationality_failures
    union all select * from age_failures
)
select submission_id, source_row, column_name, value, detail
from failures
where all_given and total is not null
  and ((complete and parts_sum <> total) or parts_sum > total)
"""

# A cross-section is the set of rows sharing which of sex and nationality are
# `_T`; its grand total sums, for each sex and nationality, the finest age bands
# given. Cross-sections of one slice must agree. (struct_pack, never a `{...}`
# literal, in a rule: GX reads braces in its query as placeholders.)
_C02 = f"""
with {_CHECKABLE},
counted as (
    select *,
           case when sex = '_T' and nationality = '_T' then 'age'
                when sex = '_T' then 'nationality'
                when nationality = '_T' then 'sex'
                else 'sex x nationality' end as cross_section
    from obs
    where count is not null
),
ancestors as (
    select code, unnest(string_split(trim(path, '/'), '/')) as ancestor
    from seeds.cl_age
),
covered as (  -- age bands that have a narrower band beside them
    select distinct counted.submission_id, counted.slice_key,
           counted.sex, counted.nationality, ancestors.ancestor as age
    from counted
    join ancestors on ancestors.code = counted.age and ancestors.ancestor <> counted.age
),
finest as (
    select counted.*
    from counted
    anti join covered using (submission_id, slice_key, sex, nationality, age)
),
totals as (
    select submission_id, slice_key, cross_section, sum(count) as total,
           min(source_row) as first_row
    from finest
    group by all
),
disagreeing as (  -- each slice's cross-sections, for the detail: as many rows as totals, no more
    select submission_id, slice_key,
           list(struct_pack(cross_section, total, first_row) order by cross_section) as totals
    from totals
    group by all
    having count(distinct total) > 1
)
-- detail (JSON, for receipts to phrase): this row's cross-section, every
-- cross-section's total and first row, and the slice
select totals.submission_id, totals.first_row as source_row, 'count' as column_name,
       totals.total::varchar as value,
       to_json(struct_pack(cross_section := totals.cross_section, totals := disagreeing.totals,
                           period := left(named.period::varchar, 7),
                           {", ".join(f"{c} := named.{c}" for c in SLICE[2:])}))::varchar as detail
from totals
join disagreeing using (submission_id, slice_key)
-- the slice's values, from one of its rows: carried through the aggregates they would cost memory
join {{batch}} as named
  on named.submission_id = totals.submission_id and named.source_row = totals.first_row
"""

RULES: list[Rule] = [
    Rule("S01", "error", "submissions",
         "The file must be readable text (UTF-8 or Windows-1252/Latin-1) or XLSX, with a header row and at least one data row.",
         "El archivo debe ser texto legible (UTF-8 o Windows-1252/Latin-1) o XLSX, con una fila de encabezado y al menos una fila de datos.",
         _S01),
    Rule("S02", "error", "submissions",
         "A required column is missing, or named more than once (value: the column of the file the profile "
         "expects, or the headers that name it).",
         "Falta una columna obligatoria, o está nombrada más de una vez (valor: la columna del archivo que el "
         "perfil espera, o los encabezados que la nombran).",
         _S02),
    Rule("S03", "error", "observations",
         "reporting_country must equal the country of the inbox folder, which must be a member of the RCM or SACM.",
         "pais_reporte debe ser igual al país de la carpeta de entrada, que debe ser miembro de la CRM o la CSM.",
         _S03),
    Rule("R01", "error", "observations",
         "period must be a calendar month YYYY-MM from 2000-01 up to the current month.",
         "periodo debe ser un mes calendario AAAA-MM desde 2000-01 hasta el mes en curso.",
         _R01),
    Rule("R02", "error", "observations",
         "The value is empty, or not a code of the column's code list nor a name the code lists resolve.",
         "El valor está vacío, o no es un código de la lista de la columna ni un nombre que las listas resuelvan.",
         _R02),
    Rule("R03", "error", "observations",
         "count must be a whole number of 0 or more (only obs_status Q may leave it empty).",
         "cantidad debe ser un número entero mayor o igual a 0 (solo estado_obs Q puede dejarla vacía).",
         _R03),
    Rule("R04", "error", "observations",
         "The observation key (every column but count and obs_status) appears more than once in the file.",
         "La clave de la observación (todas las columnas salvo cantidad y estado_obs) aparece más de una vez "
         "en el archivo.",
         _R04),
    Rule("C01", "error", "observations",
         "The parts do not add up to the total given for them (detail: sum of the parts).",
         "Las partes no suman el total declarado (detalle: suma de las partes).",
         _C01),
    Rule("C02", "warning", "observations",
         "Cross-sections of the same flow disagree on the grand total (value: this cross-section's total).",
         "Los cuadros de un mismo flujo no coinciden en el total general (valor: total de este cuadro).",
         _C02),
]

# Not a rule of the standard: the marts' own dbt tests, run after the suites
# (harmonise/audit.py). It names a submission whose rows got past the suites
# and broke a harmonised table, so the file is rejected rather than published.
A01 = Rule("A01", "error", "marts",
           "These rows broke a check of the harmonised tables (detail: the check); the file was not published. "
           "The Observatory has been told; correct the value or ask the Observatory.",
           "Estas filas no pasaron un control de las tablas armonizadas (detalle: el control); el archivo no se "
           "publicó. El Observatorio fue informado; corrija el valor o consulte al Observatorio.",
           "")

RULES_BY_ID = {rule.rule_id: rule for rule in [*RULES, A01]}
