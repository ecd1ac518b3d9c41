"""Domain types and ports. Imports no web framework, ORM or vendor SDK."""
