"""SQLAlchemy storage: tables, engine and migrations, and the repository."""
