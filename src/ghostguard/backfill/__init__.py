"""Creating the missing profiles: the batched, resumable engine, its statements and its connection pool."""
