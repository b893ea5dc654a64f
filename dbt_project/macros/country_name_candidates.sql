{#
  The codes a country name may stand for, in the order a name resolves: the
  reporting country's own alias file, a code, the full key, the loose key
  (docs/standard.md, "Country names"). The first step that matches decides;
  a list of two or more codes is an ambiguous name.

  join_country_names adds the joins for one name column (as `prefix`);
  country_name_candidates is the list they give. Used wherever a name is
  resolved, so that receipts, Q03 and the marts agree.
#}
{% macro join_country_names(prefix, value, key, loose_key, country) -%}
    left join {{ ref('int_national_alias_keys') }} as {{ prefix }}_national
        on {{ prefix }}_national.reporting_country = {{ country }}
        and {{ prefix }}_national.lookup_key = {{ key }}
    left join (
        select iso3 as code from {{ ref('countries') }}
        union all select code from {{ ref('cl_nat_extra') }}
    ) as {{ prefix }}_code
        on {{ prefix }}_code.code = upper({{ value }})
    left join {{ ref('int_country_name_keys') }} as {{ prefix }}_full
        on {{ prefix }}_full.kind = 'full' and {{ prefix }}_full.lookup_key = {{ key }}
    left join {{ ref('int_country_name_keys') }} as {{ prefix }}_loose
        on {{ prefix }}_loose.kind = 'loose' and {{ prefix }}_loose.lookup_key = {{ loose_key }}
{%- endmacro %}

{% macro country_name_candidates(prefix) -%}
    coalesce(
        {{ prefix }}_national.codes,
        case when {{ prefix }}_code.code is not null then {{ dbt.array_construct([prefix ~ '_code.code']) }} end,
        {{ prefix }}_full.codes,
        {{ prefix }}_loose.codes
    )
{%- endmacro %}

{#
  main.country_name_codes(country, name): how one name resolves for a
  reporting country now, as a table of one row (`codes`, null if nothing
  matches). `hmo aliases add` asks it, so that Python states no step of the
  order. Created by a post-hook of fct_submitted_observations, once every
  relation it reads is built.
#}
{% macro create_country_name_resolver() -%}
create or replace macro main.country_name_codes(country, name) as table
with keyed as (
    select
        name as value,
        main.name_key(name) as name_key,
        main.loose_key(main.name_key(name)) as loose_key,
        country as reporting_country
)
select {{ country_name_candidates('asked') }} as codes
from keyed
{{ join_country_names('asked', 'keyed.value', 'keyed.name_key', 'keyed.loose_key', 'keyed.reporting_country') }}
{%- endmacro %}
