"""The async core: one module per command (plan, run, verify, status, export, preflight), and
what they share (common); none prints, the CLI shows what they return."""
