with codes as (
    select * from {{ ref('cl_country_role') }}
)

select * from codes
