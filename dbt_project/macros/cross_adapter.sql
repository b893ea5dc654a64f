{#
  SQL that DuckDB and Spark spell differently, for the models. default__ is
  DuckDB's own spelling, as the models had it; spark__ is Spark SQL's. Lists
  (DuckDB) are arrays on Spark; both count their elements from 1 here.
#}

{# The distinct values of a group, sorted: DuckDB list(distinct x order by x). #}
{% macro sorted_distinct_list(expr) -%}
    {{ return(adapter.dispatch('sorted_distinct_list')(expr)) }}
{%- endmacro %}
{% macro default__sorted_distinct_list(expr) -%}
    list(distinct {{ expr }} order by {{ expr }})
{%- endmacro %}
{% macro spark__sorted_distinct_list(expr) -%}
    array_sort(collect_set({{ expr }}))
{%- endmacro %}

{# How many elements a list has; null for a null list. #}
{% macro list_length(expr) -%}
    {{ return(adapter.dispatch('list_length')(expr)) }}
{%- endmacro %}
{% macro default__list_length(expr) -%}
    len({{ expr }})
{%- endmacro %}
{% macro spark__list_length(expr) -%}
    array_size({{ expr }})
{%- endmacro %}

{# The element at `position` (from 1); null beyond the end. #}
{% macro list_element(expr, position) -%}
    {{ return(adapter.dispatch('list_element')(expr, position)) }}
{%- endmacro %}
{% macro default__list_element(expr, position) -%}
    {{ expr }}[{{ position }}]
{%- endmacro %}
{% macro spark__list_element(expr, position) -%}
    element_at({{ expr }}, {{ position }})
{%- endmacro %}

{# The elements joined by `separator` (a SQL string literal). #}
{% macro list_to_string(expr, separator) -%}
    {{ return(adapter.dispatch('list_to_string')(expr, separator)) }}
{%- endmacro %}
{% macro default__list_to_string(expr, separator) -%}
    array_to_string({{ expr }}, {{ separator }})
{%- endmacro %}
{% macro spark__list_to_string(expr, separator) -%}
    array_join({{ expr }}, {{ separator }})
{%- endmacro %}

{# Whether the whole of `expr` matches the regular expression `pattern` (text, not a literal). #}
{% macro regexp_full_match(expr, pattern) -%}
    {{ return(adapter.dispatch('regexp_full_match')(expr, pattern)) }}
{%- endmacro %}
{% macro default__regexp_full_match(expr, pattern) -%}
    regexp_full_match({{ expr }}, '{{ pattern }}')
{%- endmacro %}
{% macro spark__regexp_full_match(expr, pattern) -%}
    {#- \z: the very end (Java's $ also matches before a final line break) -#}
    {{ expr }} rlike '^(?:{{ pattern }})\\z'
{%- endmacro %}

{# Whether the text `expr` begins with the text `prefix`. #}
{% macro starts_with(expr, prefix) -%}
    {{ return(adapter.dispatch('starts_with')(expr, prefix)) }}
{%- endmacro %}
{% macro default__starts_with(expr, prefix) -%}
    starts_with({{ expr }}, {{ prefix }})
{%- endmacro %}
{% macro spark__starts_with(expr, prefix) -%}
    startswith({{ expr }}, {{ prefix }})
{%- endmacro %}

{# One row per month from `first` to `last` (dates, first days), as a date; none if first > last. #}
{% macro month_series(first, last) -%}
    {{ return(adapter.dispatch('month_series')(first, last)) }}
{%- endmacro %}
{% macro default__month_series(first, last) -%}
    unnest(generate_series({{ first }}, {{ last }}, interval 1 month))::date
{%- endmacro %}
{% macro spark__month_series(first, last) -%}
    {#- sequence() fails where first > last; explode(null) gives no row, as DuckDB's empty series -#}
    explode(case when {{ first }} <= {{ last }} then sequence({{ first }}, {{ last }}, interval 1 month) end)
{%- endmacro %}

{#
  Unit-test fixtures give lists as YAML lists (`codes: [GUF, GUY]`). dbt casts
  each fixture value with safe_cast; DuckDB reads a Python list's text as a
  list literal, Spark does not: on Spark a list becomes array(...).
#}
{% macro spark__safe_cast(field, type) -%}
    {%- if field is iterable and field is not string and field is not mapping -%}
        cast(array({% for item in field %}{{ 'null' if item is none else "'" ~ dbt.escape_single_quotes(item | string) ~ "'" }}{% if not loop.last %}, {% endif %}{% endfor %}) as {{ type }})
    {%- else -%}
        {%- set field_clean = field.strip('"').strip("'") if (cast_from_string_unsupported_for(type) and field is string) else field -%}
        cast({{ field_clean }} as {{ type }})
    {%- endif -%}
{%- endmacro %}

{#
  The marts' views: on DuckDB views, current the moment a verdict is recorded
  (the receipts and the suites read them between two builds). On Spark the
  whole project is built at once, and a view is computed again by every test
  that reads it (fct_revisions' seven tests took 12 s each): a table there.
#}
{% macro mart_view() -%}
    {{ return('table' if target.type == 'spark' else 'view') }}
{%- endmacro %}
