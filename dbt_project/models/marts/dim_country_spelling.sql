{# Every spelling key of a country name with a code it may stand for: what a receipt's "did you mean" ranks. #}
{{ config(materialized=mart_view()) }}

select normalised_name, code from {{ ref('int_nationality_names') }}
