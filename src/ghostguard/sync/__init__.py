"""Keeping profiles in step with auth users: the mapping, the sync function and its triggers, the
install transaction, drift from what was installed, and rollback."""
