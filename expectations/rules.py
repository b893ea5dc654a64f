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
Target = Literal["submissions", "observations"]

CODED_COLUMNS = ["flow_type", "counterpart_country", "sex", "age", "nationality", "obs_status"]


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

_S02 = """
with missing as (
    select submission_id, unnest(missing_columns) as entry
    from {batch}
    where read_error is null
)
select submission_id, null::bigint as source_row, split_part(entry, '=', 1) as column_name,
       nullif(split_part(entry, '=', 2), '') as value, null as detail
from missing
"""

_S03 = """
select submission_id, source_row, 'reporting_country' as column_name,
       reporting_country_value as value, inbox_country as detail
from {batch}
where reporting_country_value is distinct from inbox_country
"""

_R01 = """
select submission_id, source_row, 'period' as column_name, period_value as value, null as detail
from {batch}
where period is null
"""

_R02 = "\nunion all\n".join(
    f"""
select submission_id, source_row, '{column}' as column_name, {column}_value as value,
       null as detail
from {{batch}}
where {column} is null and {column}_value is not null"""
    for column in CODED_COLUMNS
) + """
union all
select submission_id, source_row, column_name, null as value, null as detail
from {batch}, (select unnest(['sex', 'age', 'nationality']) as column_name)
where (column_name = 'sex' and sex_value is null)
   or (column_name = 'age' and age_value is null)
   or (column_name = 'nationality' and nationality_value is null)
"""

_R03 = """
select submission_id, source_row, 'count' as column_name, count_value as value, null as detail
from {batch}
where count is null and not (obs_status = 'Q' and count_value is null)
"""

_R04 = """
with keyed as (
    select submission_id, source_row,
           count(*) over (
               partition by submission_id, period_value, flow_type_value, border_point,
                            coalesce(counterpart_country, counterpart_country_value),
                            coalesce(sex, sex_value), coalesce(age, age_value),
                            coalesce(nationality, nationality_value)
           ) as copies,
           min(source_row) over (
               partition by submission_id, period_value, flow_type_value, border_point,
                            coalesce(counterpart_country, counterpart_country_value),
                            coalesce(sex, sex_value), coalesce(age, age_value),
                            coalesce(nationality, nationality_value)
           ) as first_row
    from {batch}
)
select submission_id, source_row, 'key' as column_name, null as value,
       'same key as row ' || first_row as detail
from keyed
where copies > 1 and source_row <> first_row
"""

# Each row is a part of its parent in each dimension (sex and nationality: `_T`;
# age: its node in the CL_AGE tree). Parts must add up to a given parent when
# they are complete (F and M; every child age band; a nationality list closed by
# `_O`), and may never exceed it.
_C01 = """
with obs as (
    select submission_id, source_row, count, sex, age, nationality,
           concat_ws('|', reporting_country, period, flow_type, border_point,
                     counterpart_country) as slice
    from {batch}
    where period is not null and sex is not null and age is not null
      and nationality is not null and counterpart_country is not null
),
views as (
    select submission_id, source_row, count, 'sex' as dimension, sex as code,
           '_T' as parent, slice || '|' || age || '|' || nationality as context
    from obs
    union all
    select submission_id, source_row, count, 'nationality', nationality, '_T',
           slice || '|' || sex || '|' || age
    from obs
    union all
    select obs.submission_id, obs.source_row, obs.count, 'age', obs.age, cl_age.parent,
           slice || '|' || sex || '|' || nationality
    from obs
    join seeds.cl_age as cl_age on cl_age.code = obs.age
),
age_children as (
    select parent, count(*) as expected
    from seeds.cl_age
    where parent is not null and code <> '_U'
    group by parent
),
parts as (
    select submission_id, dimension, context, parent,
           sum(count) as parts_sum,
           bool_and(count is not null) as all_given,
           case dimension
               when 'sex' then bool_or(code = 'F') and bool_or(code = 'M')
               when 'nationality' then bool_or(code = '_O')
               else count(distinct code) filter (where code <> '_U')
                    = max(age_children.expected)
           end as complete
    from views
    left join age_children using (parent)
    where code <> '_T'
    group by submission_id, dimension, context, parent
)
select totals.submission_id, totals.source_row, totals.dimension as column_name,
       totals.count::varchar as value, parts.parts_sum::varchar as detail
from parts
join views as totals
  on totals.submission_id = parts.submission_id
 and totals.dimension = parts.dimension
 and totals.context = parts.context
 and totals.code = parts.parent
where parts.all_given and totals.count is not null
  and ((parts.complete and parts.parts_sum <> totals.count) or parts.parts_sum > totals.count)
"""

# A cross-section is the set of rows sharing which of sex and nationality are
# `_T`; its grand total sums, for each sex and nationality, the finest age bands
# given. Cross-sections of one slice must agree.
_C02 = """
with obs as (
    select submission_id, source_row, count, age, sex, nationality,
           concat_ws('|', reporting_country, period, flow_type, border_point,
                     counterpart_country) as slice,
           case when sex = '_T' and nationality = '_T' then 'age'
                when sex = '_T' then 'nationality'
                when nationality = '_T' then 'sex'
                else 'sex x nationality' end as cross_section
    from {batch}
    where period is not null and sex is not null and age is not null
      and nationality is not null and counterpart_country is not null and count is not null
),
ancestors as (
    select code, unnest(string_split(trim(path, '/'), '/')) as ancestor
    from seeds.cl_age
),
covered as (  -- age bands that have a narrower band beside them
    select distinct obs.submission_id, obs.slice, obs.sex, obs.nationality, ancestors.ancestor as age
    from obs
    join ancestors on ancestors.code = obs.age and ancestors.ancestor <> obs.age
),
finest as (
    select obs.*
    from obs
    anti join covered using (submission_id, slice, sex, nationality, age)
),
totals as (
    select submission_id, slice, cross_section, sum(count) as total,
           min(source_row) as first_row
    from finest
    group by submission_id, slice, cross_section
),
disagreeing as (
    select submission_id, slice
    from totals
    group by submission_id, slice
    having count(distinct total) > 1
)
select t.submission_id, t.first_row as source_row, 'count' as column_name,
       t.total::varchar as value, t.cross_section || ' | ' || t.slice as detail
from totals as t
semi join disagreeing as d on d.submission_id = t.submission_id and d.slice = t.slice
"""

RULES: list[Rule] = [
    Rule("S01", "error", "submissions",
         "The file must be readable text (UTF-8 or Windows-1252/Latin-1) or XLSX, with a header row and at least one data row.",
         "El archivo debe ser texto legible (UTF-8 o Windows-1252/Latin-1) o XLSX, con una fila de encabezado y al menos una fila de datos.",
         _S01),
    Rule("S02", "error", "submissions",
         "A required column is missing (value: the column of the file the profile expects).",
         "Falta una columna obligatoria (valor: la columna del archivo que el perfil espera).",
         _S02),
    Rule("S03", "error", "observations",
         "reporting_country must equal the country of the inbox folder.",
         "pais_reporte debe ser igual al país de la carpeta de entrada.",
         _S03),
    Rule("R01", "error", "observations",
         "period must be a calendar month YYYY-MM from 2000-01 up to the current month.",
         "periodo debe ser un mes calendario AAAA-MM desde 2000-01 hasta el mes en curso.",
         _R01),
    Rule("R02", "error", "observations",
         "The value is not a code of the column's code list, nor a name the code lists resolve.",
         "El valor no es un código de la lista de códigos de la columna, ni un nombre que las listas resuelvan.",
         _R02),
    Rule("R03", "error", "observations",
         "count must be a whole number of 0 or more (only obs_status Q may leave it empty).",
         "cantidad debe ser un número entero mayor o igual a 0 (solo estado_obs Q puede dejarla vacía).",
         _R03),
    Rule("R04", "error", "observations",
         "The observation key appears more than once in the file.",
         "La clave de la observación aparece más de una vez en el archivo.",
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

RULES_BY_ID = {rule.rule_id: rule for rule in RULES}
