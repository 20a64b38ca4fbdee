"""The ``promptrec`` command line: index, recommend, chat, models."""

from .app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
