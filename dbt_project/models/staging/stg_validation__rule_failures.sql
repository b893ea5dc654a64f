with source as (
    select * from {{ source('validation', 'rule_failures') }}
)

select
    submission_id,
    rule_id,
    severity,
    source_row,
    column_name,
    value,
    detail
from source
