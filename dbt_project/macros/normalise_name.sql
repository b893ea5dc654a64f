{# Names resolve whatever their case, accents, punctuation or spacing. #}
{% macro normalise_name(expression) -%}
    trim(regexp_replace(lower(strip_accents({{ expression }})), '[^a-z0-9]+', ' ', 'g'))
{%- endmacro %}
