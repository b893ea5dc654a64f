with codes as (
    select * from {{ ref('cl_sex') }}
)

select * from codes
