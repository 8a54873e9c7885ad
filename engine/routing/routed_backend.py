"""An LlmBackend that routes each request across the configured nodes.

A worker group configured with ``backend = "router"`` uses this instead of one fixed
endpoint: the task's ``model`` is ignored in favour of the chosen node's model, and the
result says which node served it. Requests that only an external node could serve raise
``EscalationNeeded`` (a non-retryable failure the supervisor's cloud tier picks up).
``on_fallback`` tells the caller a node failed and the next one starts from scratch.
"""

from __future__ import annotations

from engine.inference.protocol import BackendError, ChunkCallback, GenerationResult, Health, LoadedModel
from engine.routing.complexity import LlmRequest
from engine.routing.router import FallbackCallback, NoRoute, Router


class EscalationNeeded(BackendError):
    """No local tier can take this request; only an approved escalation can."""


class UnroutableRequest(BackendError):
    """No node at all can take this request (e.g. longer than every context window)."""


class RoutedBackend:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.name = f"router({len(router.nodes)} nodes)"
        self.last_node: str | None = None

    def generate(self, model: str, prompt: str, *, system: str | None = None,
                 options: dict[str, object] | None = None, keep_alive: str | int | None = None,
                 on_chunk: ChunkCallback | None = None, timeout_s: float | None = None,
                 tier: int | None = None, requires_external: bool = False,
                 on_fallback: FallbackCallback | None = None) -> GenerationResult:
        num_predict = (options or {}).get("num_predict")
        request = LlmRequest(prompt=prompt, system=system, tier=tier, requires_external=requires_external,
                             max_output_tokens=int(num_predict) if isinstance(num_predict, int) else 512)
        try:
            routed = self.router.execute(request, on_chunk=on_chunk, timeout_s=timeout_s, on_fallback=on_fallback)
        except NoRoute as exc:
            if exc.decision.needs_escalation and not exc.tried:
                raise EscalationNeeded(f"no local tier can take it: {exc.decision.needs_escalation}") from None
            if exc.decision.error:
                raise UnroutableRequest(exc.decision.error) from None
            raise BackendError(str(exc)) from None
        self.last_node = routed.node
        return routed.result

    def load(self, model: str, keep_alive: str | int | None = None) -> GenerationResult:
        raise BackendError("a routed backend does not manage residency; load on the node itself")

    def unload(self, model: str) -> None:
        raise BackendError("a routed backend does not manage residency; unload on the node itself")

    def loaded(self) -> list[LoadedModel]:
        return []

    def health(self) -> Health:
        states = self.router.check_health()
        ok = [n for n, s in states.items() if s.healthy]
        return Health(ok=bool(ok), latency_ms=None, detail=f"{len(ok)}/{len(states)} nodes healthy")
