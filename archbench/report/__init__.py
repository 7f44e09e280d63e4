"""The report: rows, tables, figures, environment, merged runs; atomic writes."""
