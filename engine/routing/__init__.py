"""Tiered routing of LLM work across nodes: complexity, health, circuit breakers, fallback."""
