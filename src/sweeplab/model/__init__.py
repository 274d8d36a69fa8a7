"""What is trained and scored: tasks and their metrics, estimators, the split and fit."""
