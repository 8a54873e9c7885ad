"""LLM inference: backends (Ollama, OpenAI-compatible, simulated) and the tier router."""
