"""Requests understood: free text -> a typed :class:`Intent` (model first, rules as the offline fallback)."""

from __future__ import annotations

from .llm import IntentParser, IntentReply, intent_schema
from .model import Intent, item_genres, item_year
from .rules import RuleIntentParser, catalog_genres
from .titles import Resolution, TitleResolver

__all__ = [
    "Intent",
    "IntentParser",
    "IntentReply",
    "Resolution",
    "RuleIntentParser",
    "TitleResolver",
    "catalog_genres",
    "intent_schema",
    "item_genres",
    "item_year",
]
