with source as (
    select * from {{ source('raw', 'observations') }}
)

select
    submission_id,
    source_row,
    upper(trim(reporting_country)) as reporting_country,
    trim(period) as period,
    upper(trim(flow_type)) as flow_type,
    coalesce(nullif(trim(border_point), ''), '_T') as border_point,
    nullif(trim(counterpart_country), '') as counterpart_country,
    upper(trim(sex)) as sex,
    upper(trim(age)) as age,
    nullif(trim(nationality), '') as nationality,
    nullif(trim(count), '') as count,
    coalesce(nullif(upper(trim(obs_status)), ''), 'A') as obs_status
from source
