-- raw holds the cells as the file had them; blanks become null here, once.
with source as (
    select * from {{ source('raw', 'observations') }}
)

select
    submission_id,
    source_row,
    nullif(upper(trim(reporting_country)), '') as reporting_country,
    nullif(trim(period), '') as period,
    nullif(upper(trim(flow_type)), '') as flow_type,
    coalesce(nullif(trim(border_point), ''), '_T') as border_point,
    nullif(trim(counterpart_country), '') as counterpart_country,
    nullif(upper(trim(sex)), '') as sex,
    nullif(upper(trim(age)), '') as age,
    nullif(trim(nationality), '') as nationality,
    nullif(trim(count), '') as count,
    coalesce(nullif(upper(trim(obs_status)), ''), 'A') as obs_status
from source
