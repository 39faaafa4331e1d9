"""Lightning callbacks and plugins used by the training CLI."""
from avsr_lightning.callbacks.atomic_checkpoint_io import AtomicCheckpointIO
from avsr_lightning.callbacks.checkpoint import ResumableModelCheckpoint
from avsr_lightning.callbacks.fit_summary import FitSummary
from avsr_lightning.callbacks.reliability_plot import ReliabilityPlot
from avsr_lightning.callbacks.rng_state import RNGStateCallback
from avsr_lightning.callbacks.time_budget_schedule import TimeBudgetSchedule

__all__ = ["AtomicCheckpointIO", "FitSummary", "ReliabilityPlot", "ResumableModelCheckpoint", "RNGStateCallback",
           "TimeBudgetSchedule"]
