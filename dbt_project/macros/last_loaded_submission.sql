{#
  The highest submission already in this incremental model, as a literal.
  A literal (not a subquery) lets DuckDB push `submission_id > N` through the
  views down to the raw scan, so a run reads only what arrived.
#}
{% macro last_loaded_submission() -%}
    {%- if execute and is_incremental() -%}
        {%- set result = run_query("select coalesce(max(submission_id), 0) from " ~ this) -%}
        {{ result.columns[0].values()[0] }}
    {%- else -%}
        0
    {%- endif -%}
{%- endmacro %}
