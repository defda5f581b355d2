"""Judging a database: the census behind scan and verify, the registration probe, and doctor."""
