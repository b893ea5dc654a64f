"""Harmonisation: the dbt project run in-process against the warehouse."""
