with codes as (
    select * from {{ ref('cl_age') }}
)

select * from codes
