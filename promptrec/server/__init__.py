"""``promptrec serve``: the recommender over HTTP (FastAPI) with a web chat page at ``/``.

Endpoints: ``POST /recommend``, ``POST /chat/{session}`` (server-sent events, see
:mod:`promptrec.server.events`), ``DELETE /chat/{session}``, ``GET /items?q=``,
``POST /users/{id}/forget``, ``GET /healthz``, OpenAPI at ``/docs`` and ``/openapi.json``.
Needs the ``serve`` extra: ``pip install 'promptrec[serve]'``.
"""

from __future__ import annotations

from .settings import ServerSettings

__all__ = ["ServerSettings", "build_app", "create_app"]


def create_app(service):
    """The FastAPI app over a :class:`~promptrec.server.service.Service`."""
    from .app import create_app as _create

    return _create(service)


def build_app(recommender, settings: ServerSettings | None = None):
    """The app and its service for a :class:`~promptrec.pipeline.Recommender`."""
    from .service import Service

    service = Service(recommender, settings)
    return create_app(service), service
