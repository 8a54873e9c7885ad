"""The simulator's demand window is the rig's: ``engine.scheduling.demand`` (one code path for
``workers_busy`` in the simulator and on a live rig). Kept so ``engine.sim.des`` and older
imports keep working."""

from engine.scheduling.demand import DemandWindow

__all__ = ["DemandWindow"]
