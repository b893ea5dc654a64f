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

nationality_names as (
    select * from {{ ref('int_nationality_names') }}
),

countries as (
    select iso3 from {{ ref('countries') }}
),

counterpart_codes as (
    select normalised_name, code
    from nationality_names
    where code in ('_U', '_T') or len(code) = 3
),

sexes as (select code from {{ ref('cl_sex') }}),
ages as (select code from {{ ref('cl_age') }}),
flow_types as (select code from {{ ref('cl_flow_type') }}),
statuses as (select code from {{ ref('cl_obs_status') }}),

parsed as (
    select
        observations.*,
        submissions.inbox_country,
        submissions.sum_duplicates,
        case
            when regexp_full_match(observations.period, '[0-9]{4}-(0[1-9]|1[0-2])')
            then strptime(observations.period || '-01', '%Y-%m-%d')::date
        end as period_date,
        case
            when regexp_full_match(observations.count, '[0-9]{1,15}')
            then observations.count::bigint
        end as count_number
    from observations
    left join submissions using (submission_id)
)

select
    parsed.submission_id,
    parsed.source_row,
    parsed.inbox_country,
    parsed.sum_duplicates,
    parsed.reporting_country as reporting_country_value,
    countries.iso3 as reporting_country,
    parsed.period as period_value,
    case
        when parsed.period_date between date '2000-01-01' and date_trunc('month', current_date)
        then parsed.period_date
    end as period,
    parsed.flow_type as flow_type_value,
    flow_types.code as flow_type,
    parsed.border_point,
    parsed.counterpart_country as counterpart_country_value,
    case when parsed.counterpart_country is null then '_T' else counterpart_codes.code end
        as counterpart_country,
    parsed.sex as sex_value,
    sexes.code as sex,
    parsed.age as age_value,
    ages.code as age,
    parsed.nationality as nationality_value,
    nationality_names.code as nationality,
    parsed.count as count_value,
    parsed.count_number as count,
    parsed.obs_status as obs_status_value,
    statuses.code as obs_status
from parsed
left join countries on countries.iso3 = parsed.reporting_country
left join flow_types on flow_types.code = parsed.flow_type
left join counterpart_codes
    on counterpart_codes.normalised_name = {{ normalise_name('parsed.counterpart_country') }}
left join sexes on sexes.code = parsed.sex
left join ages on ages.code = parsed.age
left join nationality_names
    on nationality_names.normalised_name = {{ normalise_name('parsed.nationality') }}
left join statuses on statuses.code = parsed.obs_status
