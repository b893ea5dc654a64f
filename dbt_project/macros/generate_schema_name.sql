{# Schemas are named after the layer (staging, intermediate, marts, seeds), not
   prefixed with the target schema, so analysts and the validation suites can
   name them plainly. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name | trim if custom_schema_name else target.schema }}
{%- endmacro %}
