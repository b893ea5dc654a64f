{#
  The name keys as a model writes them: `{{ name_key('col') }}` and
  `{{ loose_key('col') }}`. On DuckDB they call the database macros
  main.name_key and main.loose_key (macros/name_key.sql), which Python-issued
  SQL calls too; Spark has no database macros, so there the same key is an
  inline expression of the same shape (name_key_expression) and word
  lists, with the same result.

  Spark has no strip_accents: translate() maps the precomposed Latin letters
  (and the Kelvin and Angstrom signs) to the ASCII letter DuckDB's strip_accents
  leaves, and deletes combining marks, before lower(), as DuckDB strips
  accents before it lowers. Letters strip_accents keeps (ø, æ, ł, ß) are not
  a-z, so both turn them into a word break.
#}

{% macro name_key(expr) -%}
    {{ return(adapter.dispatch('name_key')(expr)) }}
{%- endmacro %}

{% macro default__name_key(expr) -%}
    main.name_key({{ expr }})
{%- endmacro %}

{% macro spark__name_key(expr) -%}
    {{ name_key_expression(strip_latin_accents(expr), spark_spelling()) }}
{%- endmacro %}

{# Spark SQL's names for DuckDB's list functions; Spark's regexp_replace replaces every match. #}
{% macro spark_spelling() -%}
{{ return({'join': 'array_join', 'sort': 'array_sort', 'transform': 'transform', 'filter': 'filter',
           'split': 'split', 'all_matches': ''}) }}
{%- endmacro %}

{% macro loose_key(expr) -%}
    {{ return(adapter.dispatch('loose_key')(expr)) }}
{%- endmacro %}

{% macro default__loose_key(expr) -%}
    main.loose_key({{ expr }})
{%- endmacro %}

{% macro spark__loose_key(expr) -%}
    {{ loose_key_expression(expr, spark_spelling()) }}
{%- endmacro %}

{# What DuckDB's strip_accents does to Latin text, as a Spark SQL expression. #}
{% macro strip_latin_accents(expr) -%}
{%- set accented =
        'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆ' ~
        'ćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐő' ~
        'ŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛ' ~
        'ǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯ' ~
        'ȰȱȲȳḀḁḂḃḄḅḆḇḈḉḊḋḌḍḎḏḐḑḒḓḔḕḖḗḘḙḚḛḜḝḞḟḠḡḢḣḤḥḦḧḨḩḪḫḬḭḮḯḰḱḲḳḴḵḶḷ' ~
        'ḸḹḺḻḼḽḾḿṀṁṂṃṄṅṆṇṈṉṊṋṌṍṎṏṐṑṒṓṔṕṖṗṘṙṚṛṜṝṞṟṠṡṢṣṤṥṦṧṨṩṪṫṬṭṮṯṰṱṲṳ' ~
        'ṴṵṶṷṸṹṺṻṼṽṾṿẀẁẂẃẄẅẆẇẈẉẊẋẌẍẎẏẐẑẒẓẔẕẖẗẘẙẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵ' ~
        'ẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰự' ~
        'ỲỳỴỵỶỷỸỹKÅ' -%}
{%- set plain =
        'AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyyAaAaAaC' ~
        'cCcCcCcDdEeEeEeEeEeGgGgGgGgHhIiIiIiIiIJjKkLlLlLlNnNnNnOoOoOo' ~
        'RrRrRrSsSsSsSsTtTtUuUuUuUuUuUuWwYyYZzZzZzOoUuAaIiOoUuUuUuUuU' ~
        'uAaAaGgKkOoOojGgNnAaAaAaEeEeIiIiOoOoRrRrUuUuSsTtHhAaEeOoOoOo' ~
        'OoYyAaBbBbBbCcDdDdDdDdDdEeEeEeEeEeFfGgHhHhHhHhHhIiIiKkKkKkLl' ~
        'LlLlLlMmMmMmNnNnNnNnOoOoOoOoPpPpRrRrRrRrSsSsSsSsSsTtTtTtTtUu' ~
        'UuUuUuUuVvVvWwWwWwWwWwXxXxYyZzZzZzhtwyAaAaAaAaAaAaAaAaAaAaAa' ~
        'AaEeEeEeEeEeEeEeEeIiIiOoOoOoOoOoOoOoOoOoOoOoOoUuUuUuUuUuUuUu' ~
        'YyYyYyYyKA' -%}
{#- combining marks (U+0300-036F, 1AB0-1AFF, 1DC0-1DFF, 20D0-20FF, FE20-FE2F), as Spark string escapes: deleted -#}
{%- set marks = [] -%}
{%- for first, last in [(768, 879), (6832, 6911), (7616, 7679), (8400, 8447), (65056, 65071)] -%}
    {%- for point in range(first, last + 1) -%}{%- do marks.append('\\u%04x' | format(point)) -%}{%- endfor -%}
{%- endfor -%}
translate({{ expr }}, '{{ accented }}{{ marks | join('') }}', '{{ plain }}')
{%- endmacro %}
