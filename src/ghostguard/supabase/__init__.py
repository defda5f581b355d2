"""What ghostguard shares with the Supabase toolchain: migration files and history, pgTAP tests, and
the Auth server's way of writing users."""
