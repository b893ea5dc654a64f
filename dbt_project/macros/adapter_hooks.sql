{#
  The run's start hooks, per adapter. DuckDB: the raw layer's DDL
  (create_raw_layer, plain SQL that hmo/warehouse.py also runs) and the
  database macros. Spark: the raw and validation schemas as views over the
  Parquet files the Python side writes (docs: ingest/raw_lake.py), and no
  database macros (models call name_key()/loose_key(), macros/name_key_expr.sql).
#}

{% macro raw_layer_hook() -%}
    {{ return(adapter.dispatch('raw_layer_hook')()) }}
{%- endmacro %}

{% macro default__raw_layer_hook() -%}
    {{ create_raw_layer() }}
{%- endmacro %}

{#
  Views, not external tables: a view over parquet.`<folder>` lists the folder
  each time it is read, so a submission's partition written after this hook
  is in the next query without `msck repair table`, and nothing about the
  files is kept in the metastore. The columns and their types are the
  Parquet files' own, which DuckDB writes from the tables of
  create_raw_layer (macros/raw_layer.sql, the one statement of them);
  submission_id of a partitioned folder is its hive folder's name, an int.
#}
{% macro spark__raw_layer_hook() -%}
    {%- if execute -%}
        {%- set data = hmo_data_dir() -%}
        {%- do run_query("create schema if not exists raw") -%}
        {%- do run_query("create schema if not exists validation") -%}
        {%- for relation in ['raw.observations', 'raw.submissions', 'raw.national_aliases',
                             'validation.verdicts', 'validation.rule_failures'] -%}
            {%- do run_query("create or replace view " ~ relation ~ " as select * from parquet.`"
                             ~ data ~ "/" ~ relation.replace('.', '/') ~ "`") -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{# Where the Parquet raw layer lies (Spark): HMO_DATA_DIR, as the Python side reads it. #}
{% macro hmo_data_dir() -%}
    {{ return(env_var('HMO_DATA_DIR', '../data').rstrip('/')) }}
{%- endmacro %}

{#
  A DuckDB database macro's DDL (name_key, loose_key, flows_as_of,
  country_name_codes), for a hook: on adapters without database macros
  (Spark), nothing.
#}
{% macro database_macro(sql) -%}
    {{ return(adapter.dispatch('database_macro')(sql)) }}
{%- endmacro %}

{% macro default__database_macro(sql) -%}
    {{ sql }}
{%- endmacro %}

{% macro spark__database_macro(sql) -%}
{%- endmacro %}
