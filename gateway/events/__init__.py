"""The event contract (schema) and the Parquet writer."""
