"""One run: plan it from the config, train it, record it."""
