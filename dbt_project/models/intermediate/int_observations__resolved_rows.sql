{# One row per submitted row, each source value beside its code. A view: the
   suites read it (through int_observations__resolved) for pending submissions. #}
{{ config(materialized='view') }}

with observations as (
    select * from {{ ref('stg_raw__observations') }}
),

submissions as (
    select submission_id, reporting_country as inbox_country, sum_duplicates
    from {{ ref('stg_raw__submissions') }}
),

countries as (
    select iso3 from {{ ref('countries') }}
),

sexes as (select code from {{ ref('cl_sex') }}),
ages as (select code from {{ ref('cl_age') }}),
flow_types as (select code from {{ ref('cl_flow_type') }}),
statuses as (select code from {{ ref('cl_obs_status') }}),

{# Keys are computed per row, not per distinct value: a distinct-values step
   would sit outside the submission filter the suites push down, and scan the
   whole history. #}
parsed as (
    select
        observations.*,
        submissions.inbox_country,
        submissions.sum_duplicates,
        case
            when {{ regexp_full_match('observations.period', '[0-9]{4}-(0[1-9]|1[0-2])') }}
            then {{ dbt.cast(dbt.concat(['observations.period', "'-01'"]), 'date') }}
        end as period_date,
        case
            when {{ regexp_full_match('observations.count', '[0-9]{1,15}') }}
            then {{ dbt.cast('observations.count', 'bigint') }}
        end as count_number,
        {{ name_key('observations.nationality') }} as nationality_key,
        {{ name_key('observations.counterpart_country') }} as counterpart_key
    from observations
    left join submissions using (submission_id)
),

keyed as (
    select
        *,
        {{ loose_key('nationality_key') }} as nationality_loose_key,
        {{ loose_key('counterpart_key') }} as counterpart_loose_key
    from parsed
),

{# Names resolve as macros/country_name_candidates.sql says; where the step
   that matches finds several codes the name is ambiguous: it stays unresolved
   and keeps its candidates for the receipt (R02). #}
matched as (
    select
        keyed.*,
        {{ country_name_candidates('nationality') }} as nationality_candidates,
        {{ country_name_candidates('counterpart') }} as counterpart_candidates
    from keyed
    {{ join_country_names('nationality', 'keyed.nationality', 'keyed.nationality_key',
                          'keyed.nationality_loose_key', 'keyed.inbox_country') }}
    {{ join_country_names('counterpart', 'keyed.counterpart_country', 'keyed.counterpart_key',
                          'keyed.counterpart_loose_key', 'keyed.inbox_country') }}
)

select
    matched.submission_id,
    matched.source_row,
    matched.inbox_country,
    matched.sum_duplicates,
    matched.reporting_country as reporting_country_value,
    countries.iso3 as reporting_country,
    matched.period as period_value,
    case
        when matched.period_date between date '2000-01-01' and date_trunc('month', current_date)
        then matched.period_date
    end as period,
    matched.flow_type as flow_type_value,
    flow_types.code as flow_type,
    matched.border_point,
    matched.counterpart_country as counterpart_country_value,
    case
        when matched.counterpart_country is null then '_T'
        when {{ list_length('matched.counterpart_candidates') }} = 1
            and ({{ list_element('matched.counterpart_candidates', 1) }} in ('_U', '_T')
                 or {{ dbt.length(list_element('matched.counterpart_candidates', 1)) }} = 3)
        then {{ list_element('matched.counterpart_candidates', 1) }}
    end as counterpart_country,
    case
        when {{ list_length('matched.counterpart_candidates') }} > 1
        then {{ list_to_string('matched.counterpart_candidates', "','") }}
    end as counterpart_country_ambiguous,
    matched.sex as sex_value,
    sexes.code as sex,
    matched.age as age_value,
    ages.code as age,
    matched.nationality as nationality_value,
    case
        when {{ list_length('matched.nationality_candidates') }} = 1
        then {{ list_element('matched.nationality_candidates', 1) }}
    end as nationality,
    case
        when {{ list_length('matched.nationality_candidates') }} > 1
        then {{ list_to_string('matched.nationality_candidates', "','") }}
    end as nationality_ambiguous,
    matched.count as count_value,
    matched.count_number as count,
    matched.obs_status as obs_status_value,
    statuses.code as obs_status
from matched
left join countries on countries.iso3 = matched.reporting_country
left join flow_types on flow_types.code = matched.flow_type
left join sexes on sexes.code = matched.sex
left join ages on ages.code = matched.age
left join statuses on statuses.code = matched.obs_status
