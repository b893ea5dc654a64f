with source as (
    select * from {{ source('raw', 'national_aliases') }}
)

select
    upper(trim(reporting_country)) as reporting_country,
    trim(name) as name,
    upper(trim(code)) as code,
    source,
    added_by,
    added_at,
    alias_file
from source
