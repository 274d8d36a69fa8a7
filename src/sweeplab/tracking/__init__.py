"""Talking to MLflow: connect, log a run, and the optional tracking process."""
