{# Each reporting country's alias keys and the codes they stand for (several: ambiguous in its own file). #}
{{ config(materialized='view') }}

select
    reporting_country,
    {{ name_key('name') }} as lookup_key,
    {{ sorted_distinct_list('code') }} as codes
from {{ ref('stg_raw__national_aliases') }}
group by all
