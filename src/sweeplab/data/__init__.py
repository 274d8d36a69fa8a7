"""Data sources, one record each: `dataset=<option>` files extend one of their schemas.

A new source is one module here with a ``SOURCE`` record, listed below, plus its YAML in
``conf/dataset/``.
"""

from omegaconf import DictConfig, OmegaConf

from sweeplab.data import apple_sales, bundled, table
from sweeplab.data.base import Data, DatasetConfig, Source

SOURCES: dict[str, Source] = {s.SOURCE.name: s.SOURCE for s in (apple_sales, table, bundled)}

__all__ = ["SOURCES", "Data", "DatasetConfig", "Source", "source_of"]


def source_of(dataset: DictConfig) -> Source | None:
    """The source whose schema a composed ``dataset`` node has, if any."""
    schema = OmegaConf.get_type(dataset)
    return next((s for s in SOURCES.values() if s.schema is schema), None)
