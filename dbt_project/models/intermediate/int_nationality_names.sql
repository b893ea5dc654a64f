{# Every spelling key with a code it may stand for: what "did you mean" ranks. #}
{{ config(materialized='view') }}

select distinct
    name_key as normalised_name,
    code
from {{ ref('int_country_names') }}
where name_key <> ''
