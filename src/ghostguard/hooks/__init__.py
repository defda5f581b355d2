"""Supabase Auth hooks (Postgres functions): found in config.toml and the database (found.py),
called as the Auth server calls them (call.py)."""
