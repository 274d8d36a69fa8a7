"""A sweep's jobs side by side: ranking, queries, the report and its plots."""
