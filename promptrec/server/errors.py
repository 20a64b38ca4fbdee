"""How failures become HTTP answers: a status and ``{"detail": "one clear message"}``.

    UnknownUser            404  the user id is not in the data
    UserInputError         422  e.g. a title that matches no item
    request validation     422  k out of 1..100, request text too long, ... (detail names the field)
    SessionBusy            409  the same chat session is still answering
    NotAvailable           501  e.g. forgetting a user before Recommender.forget exists
    ModelError             502  the language model failed or is unreachable
    Overloaded             503  every slot and queue place is taken (Retry-After: 1)
    StoreError             503  the vector store cannot be reached
    DataError, ConfigError 500  the server's own data or settings are broken
    anything else          500  "internal error" (details only in the server log)
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ..errors import ModelError, PromptrecError, StoreError, UserInputError
from ..pipeline import UnknownUser
from .limits import Overloaded
from .service import NotAvailable
from .sessions import SessionBusy

log = logging.getLogger(__name__)


def status_for(err: BaseException) -> int:
    """The HTTP status for a known failure (500 for anything unexpected)."""
    for kind, status in ((UnknownUser, 404), (UserInputError, 422), (SessionBusy, 409), (NotAvailable, 501),
                         (ModelError, 502), (Overloaded, 503), (StoreError, 503)):
        if isinstance(err, kind):
            return status
    return 500


def error_response(err: BaseException) -> JSONResponse:
    status = status_for(err)
    known = isinstance(err, (PromptrecError, Overloaded, SessionBusy, NotAvailable))
    if not known:
        log.error("unexpected error", exc_info=err)
    detail = str(err) if known else "internal error (see the server log)"
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _validation_detail(err: RequestValidationError) -> JSONResponse:
    problems = []
    for e in err.errors():
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
        problems.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in err.errors()]
    return JSONResponse({"detail": "invalid request: " + "; ".join(problems), "errors": errors}, status_code=422)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    async def known(request: Request, err: Exception) -> JSONResponse:
        return error_response(err)

    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        return _validation_detail(err)

    for kind in (PromptrecError, Overloaded, SessionBusy, NotAvailable, Exception):
        app.add_exception_handler(kind, known)
    app.add_exception_handler(RequestValidationError, invalid)
