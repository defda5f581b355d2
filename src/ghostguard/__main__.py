"""`python -m ghostguard`."""

from ghostguard.cli import main

main()
