with codes as (
    select * from {{ ref('cl_origin_scope') }}
)

select * from codes
