"""One error family: every failure promptrec knows about raises a :class:`PromptrecError` subclass
whose message says what went wrong and what to do. The CLI prints it as one line and exits 2.

    PromptrecError
    ├── DataError          input data that cannot be used (file, line, problem)
    ├── ModelError         a language model is missing, unreachable or refused the request
    ├── StoreError         the vector store (Chroma) cannot be opened or does not match
    ├── ConfigError        an invalid setting (PROMPTREC_* variable or Settings field)
    └── UserInputError     a request that cannot be served (unknown user, unknown title, bad k)
"""

from __future__ import annotations


class PromptrecError(Exception):
    """Base of every error promptrec raises on purpose."""


class DataError(PromptrecError, ValueError):
    """Input data that cannot be used, or a dataset that cannot be had."""


class ModelError(PromptrecError, RuntimeError):
    """A language model (or the embedder) is missing, unreachable, or refused the request."""


class StoreError(PromptrecError, RuntimeError):
    """The vector store cannot be opened, reached, or was built differently."""


class ConfigError(PromptrecError, ValueError):
    """An invalid setting."""


class UserInputError(PromptrecError, ValueError):
    """A request that cannot be served as asked."""


__all__ = ["ConfigError", "DataError", "ModelError", "PromptrecError", "StoreError", "UserInputError"]
