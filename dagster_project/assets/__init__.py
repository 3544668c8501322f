"""Dagster assets, grouped by domain: raw gateway events, then the dbt spend marts."""
