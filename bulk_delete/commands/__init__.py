"""The async core: one module per command (plan, run, job, verify, status, export, report), and
what they share (common, preflight, discover, backups, outputs …); none prints or exits, each
returns what happened and the CLI shows it."""
