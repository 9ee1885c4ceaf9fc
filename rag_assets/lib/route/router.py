"""The routing API: which LLM answers a question, and the generator for it.

    router = load_router(settings)                  # once per process (loads the saved classifier)
    decision = router.route(question, override)     # override: "auto" (default), "open" or "strong"
    answer = router.generator(decision).answer(question, hits)
    log(decision.route, decision.probability)       # "open"/"strong", the router's P(strong) or None

Two OpenAI-compatible roles: the open LLM (OPENAI_BASE_URL, OPENAI_API_KEY, RAG_LLM_MODEL; offline the
extractive answerer) and the strong LLM (RAG_STRONG_LLM_MODEL at RAG_STRONG_LLM_BASE_URL, default
OPENAI_BASE_URL, with RAG_STRONG_LLM_API_KEY, default OPENAI_API_KEY). Without a strong model routing is off:
every question goes to the open LLM and the decision's reason says why.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from rag_assets.lib.generate.answer import LLMGenerator, make_generator
from rag_assets.lib.generate.llm import ChatClient
from rag_assets.lib.route import classifier
from rag_assets.lib.settings import Settings

log = logging.getLogger(__name__)

OPEN, STRONG = "open", "strong"
OVERRIDES = ("auto", OPEN, STRONG)
ROUTED = "routed"  # the sweep's llm value for "let the router choose"


@dataclass(frozen=True)
class RouteDecision:
    route: str  # "open" or "strong"
    probability: float | None  # the router's calibrated P(needs the strong LLM); None when it did not run
    model: str | None  # the LLM that answers ("extractive" offline)
    base_url: str | None  # its endpoint; None for the offline answerer
    reason: str  # "router", "override", or why routing is off

    def as_dict(self) -> dict:
        return {"route": self.route, "router_probability": self.probability, "model": self.model,
                "base_url": self.base_url, "route_reason": self.reason}


def strong_off_reason(settings: Settings) -> str | None:
    """None when the strong LLM is configured, else why routing is off."""
    if not settings.strong_llm_model:
        return "routing off: RAG_STRONG_LLM_MODEL is not set"
    if not settings.strong_llm_base_url:
        return "routing off: set RAG_STRONG_LLM_BASE_URL (or OPENAI_BASE_URL) for the strong LLM"
    return None


def strong_api_key() -> str | None:
    return os.environ.get("RAG_STRONG_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")


class Router:
    """Routes questions between the two LLM roles; one per process (generators and the model are reused)."""

    def __init__(self, settings: Settings, model: classifier.RouterModel | None = None,
                 model_error: str | None = None):
        self.settings, self.model, self.model_error = settings, model, model_error
        self.off_reason = strong_off_reason(settings)
        self._generators: dict[str, object] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Routing is on: a strong LLM and a trained router."""
        return self.off_reason is None and self.model is not None

    @property
    def status(self) -> str:
        if self.off_reason:
            return self.off_reason
        if self.model is None:
            return f"routing off: {self.model_error}"
        return f"routing on: {self.model.kind} router, threshold {self.model.threshold:.3f}"

    def route(self, question: str, override: str = "auto") -> RouteDecision:
        if override not in OVERRIDES:
            raise ValueError(f"LLM override must be one of {', '.join(OVERRIDES)}, got {override!r}")
        if override == STRONG:
            if self.off_reason:
                raise ValueError(f"cannot use the strong LLM: {self.off_reason}")
            return self._decision(STRONG, None, "override")
        if override == OPEN:
            return self._decision(OPEN, None, "override")
        if not self.enabled:
            return self._decision(OPEN, None, self.status)
        p = self.model.probability(question)
        return self._decision(STRONG if p >= self.model.threshold else OPEN, p, "router")

    def _decision(self, route: str, probability: float | None, reason: str) -> RouteDecision:
        if route == STRONG:
            model, base_url = self.settings.strong_llm_model, self.settings.strong_llm_base_url
        else:
            # As make_generator: the open LLM when an endpoint is set, else the offline extractive answerer.
            online = bool(self.settings.llm_endpoint) and self.settings.llm_model != "extractive"
            model = self.settings.llm_model if online else "extractive"
            base_url = self.settings.llm_endpoint if online else None
        return RouteDecision(route, None if probability is None else round(probability, 6), model, base_url, reason)

    def generator(self, decision: RouteDecision):
        """The answerer for a decision (an LLMGenerator, or offline the extractive one), built once per route."""
        with self._lock:
            if decision.route not in self._generators:
                if decision.route == STRONG:
                    client = ChatClient(base_url=self.settings.strong_llm_base_url, api_key=strong_api_key())
                    self._generators[STRONG] = LLMGenerator(client, self.settings.strong_llm_model)
                else:
                    self._generators[OPEN] = make_generator(self.settings.llm_model)
            return self._generators[decision.route]

    def answer(self, question: str, hits, override: str = "auto") -> dict:
        """Route, then answer: the generator's dict plus route, router_probability and route_reason."""
        decision = self.route(question, override)
        out = self.generator(decision).answer(question, hits)
        return out | {"route": decision.route, "router_probability": decision.probability,
                      "route_reason": decision.reason}


def load_router(settings: Settings | None = None) -> Router:
    """The router for these settings; without a trained model (or a strong LLM) it routes everything to open."""
    settings = settings or Settings.from_env()
    if strong_off_reason(settings):
        return Router(settings)  # no need to load the classifier
    try:
        return Router(settings, classifier.load(settings.router_dir))
    except FileNotFoundError as exc:
        return Router(settings, model_error=str(exc))


_DEFAULT: dict = {}
_LOCK = threading.Lock()


def route(question: str, override: str = "auto", settings: Settings | None = None) -> RouteDecision:
    """One call for entry points: the process-wide router for these settings (default: from the environment)."""
    settings = settings or Settings.from_env()
    with _LOCK:
        router = _DEFAULT.get(settings) or _DEFAULT.setdefault(settings, load_router(settings))
    return router.route(question, override)


class RoutedGenerator:
    """The sweep's `llm: routed`: each question answered by the LLM the router picks (name "routed")."""

    name = ROUTED

    def __init__(self, router: Router):
        if not router.enabled:
            raise ValueError(f"llm {ROUTED!r} needs a strong LLM and a trained router ({router.status})")
        self.router = router

    def answer(self, question: str, hits) -> dict:
        return self.router.answer(question, hits)
