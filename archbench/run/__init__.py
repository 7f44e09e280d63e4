"""Running measurements: plan → tasks → executor → rows → session."""
