with codes as (
    select * from {{ ref('cl_route') }}
)

select * from codes
