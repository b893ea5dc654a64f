{# Each reporting country's alias keys and the codes they stand for (several: ambiguous in its own file). #}
{{ config(materialized='view') }}

select
    reporting_country,
    main.name_key(name) as lookup_key,
    list(distinct code order by code) as codes
from {{ ref('stg_raw__national_aliases') }}
group by all
