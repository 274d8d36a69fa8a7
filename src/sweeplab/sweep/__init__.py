"""A multirun: its parent run, its jobs, the grid and Optuna searches, the launchers' side."""
