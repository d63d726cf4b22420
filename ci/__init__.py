"""CI helpers (report summaries); the shell scripts beside this file are the entry points."""
