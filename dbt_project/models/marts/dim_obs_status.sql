with codes as (
    select * from {{ ref('cl_obs_status') }}
)

select * from codes
