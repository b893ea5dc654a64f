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
  files is kept in the metastore. The column types are those of
  create_raw_layer; submission_id is the hive partition folder's, cast to int.
#}
{% macro spark__raw_layer_hook() -%}
    {%- if execute -%}
        {%- set data = hmo_data_dir() -%}
        {%- set statements = [
            "create schema if not exists raw",
            "create schema if not exists validation",
            "create or replace view raw.observations as select
                cast(submission_id as int) as submission_id,
                cast(source_row as bigint) as source_row,
                cast(reporting_country as string) as reporting_country,
                cast(period as string) as period,
                cast(flow_type as string) as flow_type,
                cast(border_point as string) as border_point,
                cast(counterpart_country as string) as counterpart_country,
                cast(sex as string) as sex,
                cast(age as string) as age,
                cast(nationality as string) as nationality,
                cast(count as string) as count,
                cast(obs_status as string) as obs_status
            from parquet.`" ~ data ~ "/raw/observations`",
            "create or replace view raw.submissions as select
                cast(submission_id as int) as submission_id,
                cast(reporting_country as string) as reporting_country,
                cast(file_name as string) as file_name,
                cast(archive_path as string) as archive_path,
                cast(sha256 as string) as sha256,
                cast(size_bytes as bigint) as size_bytes,
                cast(encoding as string) as encoding,
                cast(delimiter as string) as delimiter,
                cast(profile as string) as profile,
                cast(source_columns as array<string>) as source_columns,
                cast(column_names as string) as column_names,
                cast(missing_columns as array<string>) as missing_columns,
                cast(duplicate_columns as array<string>) as duplicate_columns,
                cast(read_error as string) as read_error,
                cast(data_rows as bigint) as data_rows,
                cast(notes as array<string>) as notes,
                cast(sum_duplicates as boolean) as sum_duplicates,
                cast(received_at as timestamp) as received_at,
                cast(load_state as string) as load_state
            from parquet.`" ~ data ~ "/raw/submissions`",
            "create or replace view raw.national_aliases as select
                cast(reporting_country as string) as reporting_country,
                cast(name as string) as name,
                cast(code as string) as code,
                cast(source as string) as source,
                cast(added_by as string) as added_by,
                cast(added_at as string) as added_at,
                cast(alias_file as string) as alias_file
            from parquet.`" ~ data ~ "/raw/national_aliases`",
            "create or replace view validation.verdicts as select
                cast(verdict_id as int) as verdict_id,
                cast(submission_id as int) as submission_id,
                cast(status as string) as status,
                cast(decided_by as string) as decided_by,
                cast(decided_at as timestamp) as decided_at
            from parquet.`" ~ data ~ "/validation/verdicts`",
            "create or replace view validation.rule_failures as select
                cast(submission_id as int) as submission_id,
                cast(rule_id as string) as rule_id,
                cast(severity as string) as severity,
                cast(source_row as bigint) as source_row,
                cast(column_name as string) as column_name,
                cast(value as string) as value,
                cast(detail as string) as detail
            from parquet.`" ~ data ~ "/validation/rule_failures`",
        ] -%}
        {%- for statement in statements -%}
            {%- do run_query(statement) -%}
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
