{# A view, not ephemeral: the expectation suites validate pending submissions
   on it, inside DuckDB, before anything reaches the marts. #}
{{ config(materialized='view') }}

{# The rows model is named twice rather than through a CTE: DuckDB copies a CTE
   that is read twice, and that copy would be the whole batch. #}
with {# Profiles that declare sum_duplicates (dropped source dimensions such as CBP's
   State, or several source names of one code such as "Isla Wake" and "Isla
   Johnston") have their rows summed per standard key; other submissions keep
   every row so that R04 can catch a repeated key. #}
summed as (
    select
        submission_id,
        min(source_row) as source_row,
        any_value(inbox_country) as inbox_country,
        min(reporting_country_value) as reporting_country_value,
        reporting_country,
        min(period_value) as period_value,
        period,
        min(flow_type_value) as flow_type_value,
        flow_type,
        border_point,
        min(counterpart_country_value) as counterpart_country_value,
        counterpart_country,
        min(counterpart_country_ambiguous) as counterpart_country_ambiguous,
        min(sex_value) as sex_value,
        sex,
        min(age_value) as age_value,
        age,
        min(nationality_value) as nationality_value,
        nationality,
        min(nationality_ambiguous) as nationality_ambiguous,
        case
            when bool_and(count is not null or obs_status = 'Q')
                then {{ dbt.cast(dbt.cast('sum(count)', 'bigint'), dbt.type_string()) }}
            else min(count_value) filter (where count is null and obs_status is distinct from 'Q')
        end as count_value,
        case when bool_and(count is not null or obs_status = 'Q') then {{ dbt.cast('sum(count)', 'bigint') }} end as count,
        min(obs_status_value) as obs_status_value,
        case
            when bool_and(obs_status = 'Q') then 'Q'
            when bool_or(obs_status = 'Q') then 'E'
            else max(obs_status)
        end as obs_status
    from {{ ref('int_observations__resolved_rows') }}
    where sum_duplicates
    group by
        submission_id, reporting_country, period, flow_type, border_point,
        counterpart_country, sex, age, nationality,
        -- unresolved values stay apart, so each still gets its own R01/R02 failure
        case when reporting_country is null then reporting_country_value end,
        case when period is null then period_value end,
        case when flow_type is null then flow_type_value end,
        case when counterpart_country is null then counterpart_country_value end,
        case when sex is null then sex_value end,
        case when age is null then age_value end,
        case when nationality is null then nationality_value end
)

{# The rows model's columns but sum_duplicates, in summed's order. #}
select
    submission_id,
    source_row,
    inbox_country,
    reporting_country_value,
    reporting_country,
    period_value,
    period,
    flow_type_value,
    flow_type,
    border_point,
    counterpart_country_value,
    counterpart_country,
    counterpart_country_ambiguous,
    sex_value,
    sex,
    age_value,
    age,
    nationality_value,
    nationality,
    nationality_ambiguous,
    count_value,
    count,
    obs_status_value,
    obs_status
from {{ ref('int_observations__resolved_rows') }}
where not sum_duplicates
union all
select * from summed
