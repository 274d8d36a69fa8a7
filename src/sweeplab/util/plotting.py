"""matplotlib, loaded to draw into files only."""


def load() -> None:
    """Import matplotlib with its file-only backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot
