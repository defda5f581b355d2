"""`ghostguard rehearse`: a project's migrations replayed into the sandbox as the Supabase CLI
applies them, then every signup kind the project enables judged (run.py). files.py reads the
folder, replay.py runs a file and says what a failure means, project.py reads config.toml,
after_signup.py judges what follows a signup, report.py is the verdict."""

from ghostguard.rehearsal.files import MigrationFile, migration_files
from ghostguard.rehearsal.replay import ReplayFailed
from ghostguard.rehearsal.report import Rehearsal
from ghostguard.rehearsal.run import DATABASE, rehearse

__all__ = ["DATABASE", "MigrationFile", "Rehearsal", "ReplayFailed", "migration_files", "rehearse"]
