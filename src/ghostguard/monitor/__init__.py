"""`ghostguard monitor`: metrics, a status page and alerts for ghost users and the sync trigger."""
