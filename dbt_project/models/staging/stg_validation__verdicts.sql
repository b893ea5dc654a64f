with source as (
    select * from {{ source('validation', 'verdicts') }}
)

select
    verdict_id,
    submission_id,
    status,
    decided_by,
    decided_at
from source
