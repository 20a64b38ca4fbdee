"""The FastAPI app: JSON endpoints, the chat event stream, the web page, security headers."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Path as PathParam, Query, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from ..types import RecommendationList
from . import errors
from .events import encode
from .limits import Overloaded
from .schemas import SESSION_ID, ChatLine, ErrorBody, Health, ItemSearch, RecommendRequest, UserId
from .service import Service

STATIC = Path(__file__).parent / "static"
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from a CDN with an inline bootstrap script
DOCS_CSP = ("default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
            "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com; "
            "worker-src blob:; connect-src 'self'; frame-ancestors 'none'")
ERRORS = {status: {"model": ErrorBody} for status in (404, 409, 422, 501, 502, 503)}


class SecurityHeaders:
    """Adds a Content-Security-Policy and friends to every HTTP response (streams included)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        csp = DOCS_CSP if scope["path"] in ("/docs", "/redoc") else PAGE_CSP

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"content-security-policy", csp.encode()),
                                      (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                                      (b"x-frame-options", b"DENY")]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(service: Service) -> FastAPI:
    """The HTTP API over ``service``; see the module docs of :mod:`promptrec.server`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.to_thread(service.warm)
        yield
        service.slots.shutdown()

    app = FastAPI(title="promptrec", lifespan=lifespan, version="0.1.0",
                  description="Explained recommendations over HTTP. The chat stream's event protocol is described "
                              "under POST /chat/{session_id}.")
    errors.install(app)
    app.add_middleware(SecurityHeaders)

    async def run(fn, *args):
        # shield: a client that hangs up must not cancel a job that holds a slot
        return await asyncio.shield(asyncio.wrap_future(service.slots.submit(fn, *args)))

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def healthz() -> dict:
        """Liveness and load: dataset, model, sessions, busy slots."""
        return service.health()

    @app.post("/recommend", response_model=RecommendationList, responses=ERRORS, tags=["recommend"])
    async def recommend(body: RecommendRequest) -> RecommendationList:
        """Explained recommendations for a user in the data or an ad-hoc history (ids or titles)."""
        return await run(service.recommend, body)

    @app.get("/items", response_model=ItemSearch, responses=ERRORS, tags=["items"])
    def items(q: Annotated[str, Query(min_length=1, max_length=200, description="Words of the title.")],
              limit: Annotated[int, Query(ge=1, le=500, description="At most this many (capped by the server).")] = 20,
              ) -> ItemSearch:
        """Title search over the catalog (every word must appear; bounded results)."""
        return service.search(q, min(limit, service.settings.max_search_results))

    @app.post("/users/{user_id}/forget", responses=ERRORS, tags=["users"])
    async def forget(user_id: Annotated[UserId, PathParam()], response: Response) -> dict:
        """Delete what promptrec keeps about a user (the recommender's report is returned); chat
        sessions about the user are dropped too (count in the X-Chat-Sessions-Dropped header)."""
        report, dropped = await run(service.forget, user_id)
        response.headers["X-Chat-Sessions-Dropped"] = str(dropped)
        return report

    @app.post("/chat/{session_id}", tags=["chat"], response_class=StreamingResponse,
              responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events: reply, "
                               "list (at once, fused), explanation (per item, from the model), final, error, done."},
                         **ERRORS})
    async def chat(session_id: Annotated[str, PathParam(pattern=SESSION_ID)], line: ChatLine):
        """One chat line (a request or a /command) in a session kept by the server; answers a
        stream of server-sent events (protocol: ``promptrec.server.events``)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def emit(event: str, data) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (event, data))

        def ended(future) -> None:
            emit("", Overloaded("server shutting down") if future.cancelled() else future.exception())

        service.slots.submit(service.chat, session_id, line.text, emit).add_done_callback(ended)
        first = await queue.get()
        if first[0] == "" and first[1] is not None:
            raise first[1]  # failed before anything was said: a plain JSON error

        async def stream():
            event, data = first
            while event:
                yield encode(event, data)
                event, data = await queue.get()
            if data is not None:
                yield encode("error", {"status": errors.status_for(data), "detail": str(data)})
            yield encode("done", {})

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.delete("/chat/{session_id}", status_code=204, responses=ERRORS, tags=["chat"])
    async def end_chat(session_id: Annotated[str, PathParam(pattern=SESSION_ID)]) -> Response:
        """Forget a chat session."""
        if not service.sessions.drop(session_id):
            return JSONResponse({"detail": f"no chat session {session_id!r}"}, status_code=404)
        return Response(status_code=204)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
