"""The app's own triggers on the auth table: seeing them, never replacing or doubling them
unasked, and taking them over (saved in the install transaction, restored by rollback)."""
