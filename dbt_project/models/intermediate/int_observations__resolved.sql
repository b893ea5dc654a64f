{# A view, not ephemeral: the expectation suites validate pending submissions
   on it, inside DuckDB, before anything reaches the marts. #}
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
),

resolved as (
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
),

{# Profiles that declare sum_duplicates (dropped source dimensions such as CBP's
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
        min(sex_value) as sex_value,
        sex,
        min(age_value) as age_value,
        age,
        min(nationality_value) as nationality_value,
        nationality,
        case
            when bool_and(count is not null or obs_status = 'Q') then sum(count)::bigint::varchar
            else min(count_value) filter (where count is null and obs_status is distinct from 'Q')
        end as count_value,
        case when bool_and(count is not null or obs_status = 'Q') then sum(count)::bigint end as count,
        min(obs_status_value) as obs_status_value,
        case
            when bool_and(obs_status = 'Q') then 'Q'
            when bool_or(obs_status = 'Q') then 'E'
            else max(obs_status)
        end as obs_status
    from resolved
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

select * exclude (sum_duplicates) from resolved where not sum_duplicates
union all by name
select * from summed
