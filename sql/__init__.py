"""Plain SQL migrations, applied in order by service.db."""
