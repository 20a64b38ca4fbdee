"""Normalising what a caller asks for, at the Recommender's entry points: user ids, item lists,
``k`` and free-text requests. Anything that cannot be served is a :class:`UserInputError`."""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable, Mapping

from .errors import UserInputError

_SURROGATES = re.compile("[\ud800-\udfff]")


def valid_text(text: str) -> str:
    """``text`` with lone surrogates (undecodable bytes read from a terminal or file) replaced by U+FFFD."""
    try:  # bytes that were not UTF-8, kept as surrogates by Python's stdin: decoded again, with replacement
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that does not stand for a byte
        return _SURROGATES.sub("\ufffd", text)


def user_id(value: object) -> str:
    """A user id as text without surrounding spaces; an empty one, or one that is not text or a
    whole number, is refused."""
    if value is None or isinstance(value, bool) or not isinstance(value, (str, numbers.Integral)):
        raise UserInputError(f"a user id is text or a whole number, not {type(value).__name__}")
    user = valid_text(str(value)).strip()
    if not user:
        raise UserInputError("the user id is empty; give a user id from the data")
    return user


def item_entries(value: object, what: str) -> list[str]:
    """A list of item ids or titles: one string (or number) is one entry, never a run of characters;
    blank entries are dropped."""
    if value is None:
        return []
    if isinstance(value, (str, numbers.Integral)) and not isinstance(value, bool):
        value = [value]
    if isinstance(value, (bytes, Mapping)) or not isinstance(value, Iterable):
        raise UserInputError(f"{what} is a list of item ids or titles, not {type(value).__name__}")
    entries = [valid_text(str(entry)).strip() for entry in value]
    return [entry for entry in entries if entry]


def top_k(value: object) -> int:
    """How many items to return: a whole number of at least 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise UserInputError(f"k must be a whole number of at least 1, got {value!r}")
    return int(value)


def request_text(value: object) -> str | None:
    """A free-text request; blank is none."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise UserInputError(f"the request is free text, not {type(value).__name__}")
    return valid_text(value).strip() or None


__all__ = ["item_entries", "request_text", "top_k", "user_id", "valid_text"]
