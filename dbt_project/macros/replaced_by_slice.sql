{#
  The config of an incremental model whose rows are replaced a slice at a
  time: a run's new rows replace every row of each slice (`columns`) they
  bring, and leave the other slices as they were.
  DuckDB: delete+insert on the slice's columns.
  Spark: delete+insert does not run there and merge needs Delta Lake, so each
  slice is a partition of a Parquet table, and insert_overwrite with dynamic
  partition overwrite (the profile's spark.sql.sources.partitionOverwriteMode)
  replaces exactly the partitions the new rows bring: the same swap.
#}
{% macro config_replaced_by_slice(columns) -%}
    {{ return(adapter.dispatch('config_replaced_by_slice')(columns)) }}
{%- endmacro %}

{% macro default__config_replaced_by_slice(columns) -%}
    {{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=columns,
              on_schema_change='fail') }}
{%- endmacro %}

{% macro spark__config_replaced_by_slice(columns) -%}
    {{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by=columns,
              file_format='parquet', on_schema_change='fail') }}
{%- endmacro %}
