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
    source_columns,
    column_names,
    missing_columns,
    duplicate_columns,
    read_error,
    notes,
    received_at,
    load_state
from source
