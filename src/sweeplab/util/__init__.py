"""Shared by every layer: errors, redaction, the allow-list, env variables, locks."""
