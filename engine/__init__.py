"""galaxy engine: the headless core (queue, plans, scheduler, telemetry, supervisor).

Never imports textual or rich: the dashboard is one client of this library among others.
"""

__version__ = "0.1.0"
