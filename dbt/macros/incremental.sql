{#-
  Hour watermark for the request-grain incremental models.

  On an incremental run a model re-processes every hour from the newest hour it already holds (inclusive: that
  hour may have been partial) minus var('apex_lookback_hours', 0) hours. var('apex_reprocess_from') (a UTC
  timestamp string) overrides it, e.g. after late files for an older hour; `--full-refresh` rebuilds all.
  The watermark is rendered as a literal so DuckDB can push it into the Parquet scan and skip row groups.
  Returns none on a full build (no filter).
-#}
{% macro hour_watermark(column) -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set override = var('apex_reprocess_from', none) -%}
    {%- if override -%}
        {{ return(override) }}
    {%- endif -%}
    {%- set lookback = var('apex_lookback_hours', 0) | int -%}
    {%- set sql -%}
        select strftime(date_trunc('hour', max({{ column }})) - interval {{ lookback }} hour, '%Y-%m-%d %H:%M:%S')
        from {{ this }}
    {%- endset -%}
    {%- set value = run_query(sql).columns[0].values()[0] -%}
    {{ return(value) }}
{%- endmacro %}
