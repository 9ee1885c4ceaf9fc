"""Cost per query from token counts: a per-model price table in $ per 1M tokens (input, output).

As in the seed's cost analysis: hosted models priced per token, the offline extractive answerer free.
Prices are public list prices at the time of writing; edit PRICES when they change. A model not
listed has no known price: its cost is None ("n/a"), never a made-up 0.
"""

from __future__ import annotations

# model -> ($ per 1M prompt tokens, $ per 1M completion tokens)
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o3-mini": (1.10, 4.40),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    # Open models at the hosted-endpoint prices the seed compared (Anyscale Endpoints).
    "meta-llama/llama-2-7b-chat-hf": (0.15, 0.15),
    "meta-llama/llama-2-13b-chat-hf": (0.25, 0.25),
    "meta-llama/llama-2-70b-chat-hf": (1.00, 1.00),
    "codellama/codellama-34b-instruct-hf": (1.00, 1.00),
    "mistralai/mistral-7b-instruct-v0.1": (0.15, 0.15),
    "mistralai/mixtral-8x7b-instruct-v0.1": (0.50, 0.50),
}
FREE = {"extractive", "offline"}  # no LLM call at all


def price(model: str) -> tuple[float, float] | None:
    name = model.strip().lower()
    if name in FREE:
        return (0.0, 0.0)
    if name in PRICES:
        return PRICES[name]
    short = {k.split("/")[-1]: v for k, v in PRICES.items()}
    return short.get(name.split("/")[-1])


def cost_per_query(model: str, prompt_tokens: float, completion_tokens: float) -> float | None:
    """Dollars for one query with these mean token counts; None when the model's price is unknown."""
    p = price(model)
    if p is None:
        return None
    return (prompt_tokens * p[0] + completion_tokens * p[1]) / 1_000_000
