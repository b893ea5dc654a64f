{#
  Source values that did not map to a code (standard Q03), per reporting
  country and column: how many rows and submissions carried them, and whether
  they map now (an alias added since, `hmo aliases add`). What still does not
  map is what waits for a correction or an alias.
#}
with failures as (
    select * from {{ ref('stg_validation__rule_failures') }}
    where rule_id = 'R02' and value is not null
),

submissions as (
    select submission_id, reporting_country, received_at from {{ ref('stg_raw__submissions') }}
),

unmapped as (
    select
        submissions.reporting_country,
        failures.column_name,
        failures.value,
        count(*) as rows,
        count(distinct failures.submission_id) as submissions,
        max(failures.submission_id) as last_submission_id,
        max(submissions.received_at) as last_received_at
    from failures
    join submissions using (submission_id)
    group by all
),

{# Only names can map later without a new file: an alias says what they stand for. #}
now_mapped as (
    select
        unmapped.*,
        {{ country_name_candidates('name') }} as candidates
    from (
        select *, {{ name_key('value') }} as value_key from unmapped
    ) as unmapped
    {{ join_country_names('name', 'unmapped.value', 'unmapped.value_key', loose_key('unmapped.value_key'),
                          'unmapped.reporting_country') }}
)

select
    reporting_country,
    column_name,
    value,
    rows,
    submissions,
    last_submission_id,
    last_received_at,
    case when is_name and {{ list_length('candidates') }} = 1 then {{ list_element('candidates', 1) }} end as maps_now_to,
    case when is_name and {{ list_length('candidates') }} > 1 then {{ list_to_string('candidates', "','") }} end
        as ambiguous_between
from (
    select *, column_name in ('nationality', 'counterpart_country') as is_name from now_mapped
)
