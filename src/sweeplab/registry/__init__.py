"""The registered champion: versions, the decision to promote, the lock."""
