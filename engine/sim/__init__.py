"""Simulated parts for ``--sim`` mode and tests: doubles that follow the real systems'
documented behaviour (a simulated Ollama server, a VRAM ledger)."""

from engine.sim.ollama_models import (
                                      InMemoryVramLedger,
                                      SimModelSpec,
                                      VramLedger,
                                      field_notes_models,
                                      keep_alive_seconds,
)
from engine.sim.ollama_server import SimulatedOllamaServer

__all__ = ["InMemoryVramLedger", "SimModelSpec", "SimulatedOllamaServer", "VramLedger", "field_notes_models",
           "keep_alive_seconds"]
