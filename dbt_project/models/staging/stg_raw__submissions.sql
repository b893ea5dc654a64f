with source as (
    select * from {{ source('raw', 'submissions') }}
)

select
    submission_id,
    reporting_country,
    file_name,
    archive_path,
    sha256,
    size_bytes,
    encoding,
    delimiter,
    profile,
    sum_duplicates,
    data_rows,
    received_at,
    decided_at,
    status
from source
