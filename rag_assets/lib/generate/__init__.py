"""Answer generation: the OpenAI-compatible client and the answerers."""
