"""Pipeline stages as plain functions, and the thin Prefect tasks that wrap them."""
