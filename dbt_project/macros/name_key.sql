{#
  How a country name is compared: by its words, whatever their order, case,
  accents or punctuation, and whatever the abbreviation or small word a
  national office uses. `Comores, Islas` and `Islas Comores`, `Rep. Dem. del
  Congo` and `Democratic Republic of the Congo`, `St. Kitts & Nevis` and
  `Saint-Kitts-et-Nevis` share a key. Dots are dropped before splitting so that
  `U.S.A.` is `usa` and `EE. UU.` is `ee uu`.

  The key is a DuckDB macro, created at the start of every dbt invocation,
  rather than a dbt macro: the receipts' "did you mean" and `hmo aliases add`
  compare names in Python-issued SQL and must use the very same key.
  Models call it through the dbt macros name_key()/loose_key()
  (macros/name_key_expr.sql): main.name_key on DuckDB, on Spark (which has no
  database macros) the same key inline, from the same word lists.

  loose_key drops from a key the words that only say what kind of country it
  is (republic, island), for a second look when the full key matches nothing:
  `Comores, Islas` then finds French `Comores`. It takes the key, not the
  name, so that a model computes the key once per row.
#}

{% macro _name_words() -%}
{% set small_words = ['and', 'y', 'et', 'e', 'en', 'und', 'the', 'of', 'de', 'del', 'la', 'las', 'los', 'el',
                      'le', 'les', 'l', 'd', 'da', 'do', 'das', 'dos', 'des', 'du', 'van', 'het', 'der', 'den', 's'] %}
{% set same_word = {
    'republic': ['republic', 'republica', 'republique', 'republiek', 'rep', 'repub'],
    'democratic': ['democratic', 'democratica', 'democratique', 'democratische', 'democratisch', 'dem'],
    'island': ['island', 'islands', 'isla', 'islas', 'ile', 'iles', 'ilha', 'ilhas', 'eiland', 'eilanden',
               'is', 'isl', 'isle', 'isles'],
    'saint': ['saint', 'sainte', 'st', 'ste', 'san', 'santa', 'santo', 'sao'],
} %}
{% set kind_words = ['republic', 'island'] %}
{{ return({'small': small_words, 'same': same_word, 'kind': kind_words}) }}
{%- endmacro %}

{% macro _word_list(words) -%}
    ({% for word in words %}'{{ word }}'{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}

{#
  The key's expression, in the spelling of one SQL dialect: `sql` names the
  dialect's functions (DUCKDB_SPELLING below, SPARK_SPELLING in
  macros/name_key_expr.sql), and `accentless` is the name, accents stripped.
  One shape for both, so that the keys agree.
#}
{% macro name_key_expression(accentless, sql) -%}
{%- set words = _name_words() -%}
{{ sql.join }}(
    {{ sql.sort }}({{ sql.transform }}(
        {{ sql.filter }}(
            {{ sql.split }}(trim(regexp_replace(
                replace(replace(lower({{ accentless }}), '.', ''), '&', ' and '),
                '[^a-z0-9]+', ' '{{ sql.all_matches }})), ' '),
            word -> word <> '' and word not in {{ _word_list(words.small) }}),
        word -> case
            {%- for canonical, spellings in words.same.items() %}
            when word in {{ _word_list(spellings) }} then '{{ canonical }}'
            {%- endfor %}
            else word end)),
    ' ')
{%- endmacro %}

{% macro loose_key_expression(name_key, sql) -%}
{%- set words = _name_words() -%}
{{ sql.join }}({{ sql.filter }}({{ sql.split }}({{ name_key }}, ' '), word -> word not in {{ _word_list(words.kind) }}), ' ')
{%- endmacro %}

{% macro duckdb_spelling() -%}
{{ return({'join': 'array_to_string', 'sort': 'list_sort', 'transform': 'list_transform', 'filter': 'list_filter',
           'split': 'string_split', 'all_matches': ", 'g'"}) }}
{%- endmacro %}

{% macro create_name_key_macro() -%}
create or replace macro main.name_key(name) as {{ name_key_expression('strip_accents(name)', duckdb_spelling()) }}
{%- endmacro %}

{% macro create_loose_key_macro() -%}
create or replace macro main.loose_key(name_key) as {{ loose_key_expression('name_key', duckdb_spelling()) }}
{%- endmacro %}
