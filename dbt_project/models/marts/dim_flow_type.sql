with codes as (
    select * from {{ ref('cl_flow_type') }}
)

select * from codes
