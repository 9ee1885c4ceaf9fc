"""Multi-turn chat: retrieval runs on every turn, for a standalone query made from the conversation.

Offline (the default, no extra LLM call): a follow-up ("and how do I close it?") keeps its own words and
borrows the content words of the earlier user turns, most recent first. With RAG_SERVE_CONDENSE=llm and an
LLM configured, the LLM rewrites the follow-up instead (one short extra call).
"""

from __future__ import annotations

import logging
import re

log = logging.getLogger(__name__)

MAX_BORROWED_WORDS = 12
MAX_HISTORY_MESSAGES = 8  # earlier turns sent to the LLM with the question

_WORD = re.compile(r"[A-Za-z_][\w.]*[\w]|[A-Za-z]")
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing done down during each else few for from further get gets got had has
have having he her here hers him his how i if in into is it its itself just me more most my no nor not now of
off on once one only or other our out over own same say says she should so some such than that the their them
then there these they this those through to too under until up use used using very want was way we were what
when where which while who whom why will with would you your yours please tell explain show give example
""".split())
# Words that point back into the conversation: a question holding one leans on earlier turns.
ANAPHORA = frozenset("it its it's they them their theirs this that these those there one ones same".split())
FOLLOW_UP_OPENERS = ("and ", "but ", "also ", "so ", "then ", "what about", "how about", "what if", "why not")

CONDENSE_SYSTEM_PROMPT = (
    "Rewrite the user's last question as one standalone search query that names everything it refers to, "
    "using the conversation. Reply with the query only."
)


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w.lower() not in STOPWORDS]


def is_follow_up(question: str) -> bool:
    q = question.strip().lower()
    words = set(re.findall(r"[a-z']+", q))
    return q.startswith(FOLLOW_UP_OPENERS) or bool(words & ANAPHORA) or len(content_words(question)) < 2


def standalone_query(user_turns: list[str]) -> str:
    """The last user turn, plus the earlier user turns' content words when it reads as a follow-up."""
    question = user_turns[-1]
    if len(user_turns) < 2 or not is_follow_up(question):
        return question
    have = {w.lower() for w in content_words(question)}
    borrowed: list[str] = []
    for turn in reversed(user_turns[:-1]):
        for word in content_words(turn):
            if word.lower() not in have and len(borrowed) < MAX_BORROWED_WORDS:
                have.add(word.lower())
                borrowed.append(word)
    return f"{question} {' '.join(borrowed)}".strip()


def condense_messages(history: list[dict], question: str) -> list[dict]:
    transcript = "\n".join(f"{m['role']}: {m['content']}" for m in history[-MAX_HISTORY_MESSAGES:])
    return [{"role": "system", "content": CONDENSE_SYSTEM_PROMPT},
            {"role": "user", "content": f"conversation:\n{transcript}\n\nlast question: {question}"}]


def condense_with_llm(client, model: str, history: list[dict], question: str, fallback: str) -> str:
    """The LLM's standalone query; the offline one when the call fails or comes back empty."""
    from rag_assets.lib.generate.llm import LLMError

    try:
        text = client.chat(model, condense_messages(history, question), max_tokens=64).text.strip()
    except LLMError as exc:
        log.warning("condense step failed, using the offline standalone query: %s", exc)
        return fallback
    return text.splitlines()[0].strip() if text else fallback
