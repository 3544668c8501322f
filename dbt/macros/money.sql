{#-
  USD amount -> integer cents, rounded half-up.
  The double is first fixed to 12 decimals (so 1.005 stored as 1.00499999... counts as 1.005), then rounded
  as a DECIMAL, which DuckDB rounds half away from zero: half-up for the non-negative amounts billed here.
-#}
{% macro usd_to_cents(expression) -%}
    cast(round(cast({{ expression }} as decimal(38, 12)) * 100, 0) as bigint)
{%- endmacro %}

{#- Deterministic hex id: sha256 of the parts joined by '|' (e.g. 'vbp|cust|2026-01|cache'). -#}
{% macro hash_id(parts) -%}
    sha256(concat_ws('|', {{ parts | join(', ') }}))
{%- endmacro %}
