{# Which codes a name key stands for. A key of one code resolves; a key of
   several (a name two countries share, such as `Guyane`) never resolves by
   guess: the reporting country's alias file decides, else it is an R02 error
   naming the candidates. The loose key is looked at only when the full key
   matches nothing. A table, not a view: every validated row is looked up in
   it, and keying ~3,300 names again per query cost ~0.3 s each time. It
   depends only on seeds and macros, rebuilt whenever they change. #}
{{ config(materialized='table') }}

with names as (
    select * from {{ ref('int_country_names') }}
),

keys as (
    select name_key as lookup_key, 'full' as kind, {{ sorted_distinct_list('code') }} as codes
    from names
    where name_key <> ''
    group by name_key
    union all
    select loose_key, 'loose', {{ sorted_distinct_list('code') }}
    from names
    where loose_key <> ''
    group by loose_key
)

select
    lookup_key,
    kind,
    codes,
    case when {{ list_length('codes') }} = 1 then {{ list_element('codes', 1) }} end as code
from keys
