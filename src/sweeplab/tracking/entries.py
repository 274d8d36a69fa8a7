"""What a run hands to its tracking store: plain records that pickle, and no MLflow.

The process that trains makes these (sweeplab.run.runner); sweeplab.tracking.record logs them,
in the tracking process when there is one (sweeplab.tracking.tracker), else in the same process.
"""

import traceback
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from sweeplab.util.errors import error_summary, interruption
from sweeplab.util.redact import redact_secrets, scrub_text

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from sweeplab.data import Data
    from sweeplab.model.splits import Split
    from sweeplab.model.train import Trained


@dataclass(frozen=True)
class Store:
    """Where runs go: the tracking settings and the experiment, resolved."""

    tracking: dict[str, Any]
    experiment: dict[str, Any]
    # A sweep's jobs share one store and experiment (sweep.check_overrides): the process
    # logging them keeps them open from one job to the next instead of checking them again.
    keep: bool = False

    @property
    def uri(self) -> str:
        """The tracking URI."""
        return str(self.tracking["uri"])

    @classmethod
    def of(cls, cfg: DictConfig, *, keep: bool = False) -> "Store":
        """The store and experiment ``cfg`` names."""
        return cls(
            tracking=_resolved(cfg.tracking), experiment=_resolved(cfg.experiment), keep=keep
        )


def _resolved(node: DictConfig) -> dict[str, Any]:
    container = OmegaConf.to_container(node, resolve=True, enum_to_str=True)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}


@dataclass(frozen=True)
class NewRun:
    """A run to create (RUNNING) before training, or to find already done."""

    store: Store
    run_name: str
    tags: dict[str, str]
    # Where the user launched from: its git commit and dirty flag are tagged.
    launch_dir: str
    parent_run_id: str | None = None
    # With sweep.skip_finished: an earlier FINISHED run with this fingerprint is reused.
    reuse_fingerprint: str | None = None


@dataclass(frozen=True)
class Opened:
    """A run created for training, or an earlier FINISHED one reused, and where it is."""

    tracking_uri: str
    experiment_id: str
    experiment_name: str
    run_id: str
    run_name: str
    reused: bool = False
    # A reused run's metrics and model.
    metrics: dict[str, float] = field(default_factory=dict)
    model_uri: str = ""


@dataclass(frozen=True)
class Setup:
    """What a run was asked to do: its params, and its config and overrides as logged."""

    params: dict[str, Any]
    config_yaml: str
    overrides_yaml: str

    @classmethod
    def of(cls, cfg: DictConfig, params: dict[str, Any], overrides: Sequence[str]) -> "Setup":
        """The params, and the resolved config (secrets masked) and overrides as logged."""
        shown = redact_secrets(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
        lines = "".join(f"- {scrub_text(o)}\n" for o in overrides)
        return cls(params, OmegaConf.to_yaml(OmegaConf.create(shown)), lines or "[]\n")


# A token for each split this process made: the tracking process builds a split's MLflow
# datasets once and keeps them under it, so a sweep sends its rows once, not every job.
_tokens: "weakref.WeakKeyDictionary[Split, str]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Rows:
    """A run's rows for its dataset inputs: training, and validation and test when it has
    them; the frames may be left out when the tracking process has them under ``token``."""

    token: str
    name: str
    target: str
    source: str | None
    # Each part's context ("training", "validation", "test") and, when sent, its frame
    # (features and target together).
    contexts: tuple[str, ...]
    frames: "tuple[pd.DataFrame, ...] | None" = None

    @classmethod
    def of(cls, rows: "Split", data: "Data") -> "Rows":
        """A split of ``data``; with its frames the first time."""
        first = rows not in _tokens
        token = _tokens.setdefault(rows, uuid.uuid4().hex)
        contexts = tuple(context for context, _, _ in rows.parts())
        made = cls(token, data.name, data.target, data.source, contexts)
        return made.with_frames(rows) if first else made

    def with_frames(self, rows: "Split") -> "Rows":
        """These rows with their frames."""
        return replace(self, frames=tuple(X.join(y) for _, X, y in rows.parts()))


@dataclass(frozen=True)
class Entry:
    """A trained run to log: what it was asked, its data, its model, its scores."""

    setup: Setup
    rows: Rows
    # The first validation rows and the model's predictions for them: the model's signature,
    # and its input example when ``with_example``.
    example: "pd.DataFrame"
    predictions: "np.ndarray"
    estimator: Any
    metrics: dict[str, float]
    model_name: str
    with_example: bool = True
    # With k folds, each fold's metrics (logged as steps of <metric>_fold).
    folds: tuple[dict[str, float], ...] = ()

    @classmethod
    def of(
        cls,
        setup: Setup,
        rows: Rows,
        split: "Split",
        trained: "Trained",
        model_name: str,
        *,
        with_example: bool,
    ) -> "Entry":
        """What logging a trained run needs; its example is the first validation rows (with
        k folds, the first rows)."""
        example = (split.X_val if split.X_val is not None else split.X).head(5)
        return cls(
            setup=setup,
            rows=rows,
            example=example,
            predictions=trained.predictions[: len(example)],
            estimator=trained.estimator,
            metrics=trained.metrics,
            model_name=model_name,
            with_example=with_example,
            folds=tuple(trained.folds),
        )

    def with_frames(self, rows: "Split") -> "Entry":
        """This entry with its rows' frames (for a tracking process that no longer has them)."""
        return replace(self, rows=self.rows.with_frames(rows))


@dataclass(frozen=True)
class Failure:
    """Why a run stopped: its status (FAILED, or KILLED for Ctrl-C and SIGTERM), one line,
    and the traceback (secrets masked)."""

    status: str
    summary: str
    traceback: str

    @classmethod
    def of(cls, error: BaseException) -> "Failure":
        """The failure ``error`` is."""
        # Ctrl-C and SIGTERM (raised as SystemExit by the entry point) stop a run; they do
        # not mean it failed.
        killed = isinstance(error, (KeyboardInterrupt, SystemExit))
        text = scrub_text("".join(traceback.format_exception(error)))
        summary = interruption(error) or error_summary(error)
        return cls("KILLED" if killed else "FAILED", summary, text)
