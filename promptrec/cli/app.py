"""Commands. Each parses its options, calls the library, and prints; nothing else lives here."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text

from ..errors import PromptrecError
from .safe_text import clean, one_line, plain

app = typer.Typer(
    help="promptrec: LLM-prompting recommendations, explained.\n\n"
    "Settings come from PROMPTREC_* environment variables (see the README); the options below override them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True)


class State:
    overrides: dict = {}


def _settings():
    from ..settings import Settings

    return Settings(**State.overrides)


class _PlainFormatter(logging.Formatter):
    """Log lines may quote untrusted text (a server's error body): escape sequences are removed."""

    def format(self, record: logging.LogRecord) -> str:
        return clean(super().format(record))


@contextmanager
def _friendly_errors():
    """Known failures print one clear line and exit 2; anything else keeps its traceback.

    The message may quote untrusted input (a user id, a title, a file's content), so it is printed
    as plain text on one line, never as markup."""
    try:
        yield
    except PromptrecError as err:
        errors.print(Text.assemble(("error:", "bold red"), " ", one_line(err)), soft_wrap=True)
        raise typer.Exit(2) from None


@app.callback()
def _global(
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder holding the datasets [env PROMPTREC_DATA_DIR].")] = None,
    state_dir: Annotated[Optional[Path], typer.Option(help="Vector store, features and LLM cache [env PROMPTREC_STATE_DIR].")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="'ml-latest-small' or a folder of items + interactions files.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Local model: small | medium | quality | path.gguf; with --backend openai: the API model id.")] = None,
    backend: Annotated[Optional[str], typer.Option(help="llamacpp (in-process) or openai (any OpenAI-compatible API).")] = None,
    base_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1.")] = None,
    chroma_url: Annotated[Optional[str], typer.Option(help="Use a Chroma server instead of the embedded store.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False,
) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_PlainFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])
    overrides: dict = {}
    for key, value in (("data_dir", data_dir), ("state_dir", state_dir), ("dataset", dataset)):
        if value is not None:
            overrides[key] = value
    # Plain values, merged with the PROMPTREC_* variables and validated when the settings are built
    # (inside each command's _friendly_errors, so a bad value is one line).
    llm = {k: v for k, v in (("model", model), ("backend", backend), ("base_url", base_url)) if v is not None}
    if llm:
        overrides["llm"] = llm
    if chroma_url:
        overrides["store"] = {"url": chroma_url}
    State.overrides = overrides


def _recommender(no_llm: bool = False):
    from ..pipeline import Recommender

    return Recommender(_settings(), llm=False if no_llm else None)


@contextmanager
def _progress():
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=errors, transient=False) as progress:
        def start(label: str, total: int):
            task = progress.add_task(label, total=total)
            return lambda n: progress.advance(task, n)

        yield start


@app.command()
def index(
    features: Annotated[int, typer.Option(help="Extract model features for the N most popular items (-1: all; 0: none). "
                                               "Resumable: rerun to continue.")] = 0,
    rebuild: Annotated[bool, typer.Option(help="Drop the vector store and embed every item again.")] = False,
    ray: Annotated[Optional[str], typer.Option(help="Extract features on a Ray cluster: its address ('auto', "
                                                    "'ray://head:10001') or 'local'. Needs promptrec[ray].")] = None,
    workers: Annotated[int, typer.Option(min=1, help="With --ray: model workers at once.")] = 2,
    parallel: Annotated[Optional[int], typer.Option(min=1, max=64, help="Feature requests decoded at once (local "
                                                    "model: parallel slots, needs promptrec[batch]; openai: "
                                                    "concurrent requests). Default: PROMPTREC_LLM__N_PARALLEL / "
                                                    "PROMPTREC_LLM__MAX_CONCURRENCY.")] = None,
) -> None:
    """Build the item vector store from item text (and model features, if asked), with progress."""
    _parallel(parallel)
    with _friendly_errors():
        rec = _recommender(no_llm=features == 0 or ray is not None)
        console.print(plain(f"Indexing {rec.dataset!r}"))
        try:
            with _progress() as progress:
                if ray is not None and features:
                    from ..distributed import popular_items, run_feature_job

                    items = popular_items(rec.dataset, features)
                    job = run_feature_job(rec.settings, items, rec.features, ray_address=ray, workers=workers,
                                          progress=progress("item features (ray)", len(items)))
                    console.print(plain(f"Ray feature job: {job.model_dump(exclude={'per_worker'})}"))
                report = rec.index(features=0 if ray is not None else features, rebuild=rebuild, progress=progress)
        except KeyboardInterrupt:
            errors.print(Text("Interrupted: everything finished so far is kept; run the same command to continue."))
            raise typer.Exit(130) from None
        console.print(Text(f"Stored {report['stored']:,} item vectors ({report['embedded']:,} new or changed); "
                           f"{report['with_features']:,} items have model features."))
        if "features" in report:
            console.print(plain(f"Feature job: {report['features']}"))
        if rec.__dict__.get("client") is not None:  # the product's own client, when this command used it
            console.print(plain(f"LLM: {rec.client.stats.summary()}"))


@app.command()
def profile(
    users: Annotated[int, typer.Option(help="Profile the first N users of the data (-1: all).")] = 100,
    ray: Annotated[str, typer.Option(help="The Ray cluster: its address ('auto', 'ray://head:10001') or 'local'.")] = "local",
    workers: Annotated[int, typer.Option(min=1, help="Model workers at once.")] = 2,
) -> None:
    """Profile users with the model on a Ray cluster (resumable; the replies also fill the LLM cache)."""
    from ..distributed import ProfileStore, run_profile_job

    with _friendly_errors():
        rec = _recommender(no_llm=True)
        ids = rec.dataset.interactions.users
        ids = ids if users < 0 else ids[:users]
        store = ProfileStore(rec.state.root / "profiles.jsonl")  # beside the item features
        with _progress() as progress:
            job = run_profile_job(rec.settings, rec.dataset, ids, store, ray_address=ray, workers=workers,
                                  progress=progress("user profiles (ray)", len(ids)))
        console.print(plain(f"Profiles in {store.path}: {len(store):,}. Job: {job.model_dump(exclude={'per_worker'})}"))


def _parallel(parallel: int | None) -> None:
    """``--parallel N``: the batch jobs' parallel slots (local model) and concurrent requests (openai)."""
    if parallel is not None:
        llm = {**State.overrides.get("llm", {}), "n_parallel": parallel, "max_concurrency": parallel}
        State.overrides = {**State.overrides, "llm": llm}


@app.command()
def profiles(
    users: Annotated[int, typer.Option(help="Profile the first N users of the data (-1: all).")] = 100,
    parallel: Annotated[Optional[int], typer.Option(min=1, max=64, help="Requests decoded at once (see index --parallel).")] = None,
) -> None:
    """Profile users on this machine, several at once (resumable; the replies also fill the LLM cache that
    recommend reads, so a profiled user's profile is not computed again)."""
    from ..distributed import ProfileStore
    from ..knowledge.batch import run_profile_batch

    _parallel(parallel)
    with _friendly_errors():
        rec = _recommender(no_llm=True)
        log_ = rec.dataset.interactions
        ids = log_.users if users < 0 else log_.users[:users]
        work = [(u, log_.history(u), log_.ratings(u)) for u in ids]
        store = ProfileStore(rec.state.root / "profiles.jsonl")
        try:
            with _progress() as progress:
                job = run_profile_batch(rec.batch_client(), rec.dataset.catalog, work, store,
                                        token_budget=rec.settings.profile.token_budget,
                                        progress=progress("user profiles", len(work)))
        except KeyboardInterrupt:
            errors.print(Text("Interrupted: everything finished so far is kept; run the same command to continue."))
            raise typer.Exit(130) from None
        console.print(plain(f"Profiles in {store.path}: {len(store):,}. {job.line()}"))


@app.command()
def recommend(
    user: Annotated[str, typer.Argument(help="A user id from the data.")],
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=100, help="How many items.")] = 10,
    request: Annotated[Optional[str], typer.Option(help="Free text that steers the picks, e.g. 'lighter comedies'.")] = None,
    exclude: Annotated[Optional[list[str]], typer.Option(help="Item id or title never to recommend (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the typed result as JSON.")] = False,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="No language model: fused order, evidence explanations.")] = False,
) -> None:
    """Explained recommendations for a user in the data: the list at once, each reason as the model writes it."""
    from .render import StreamPrinter

    with _friendly_errors():
        rec = _recommender(no_llm)
        excluded = rec.resolve_items(exclude) if exclude else []
        if as_json:
            result = rec.recommend(user, k=k, request=request, exclude=excluded)
            sys.stdout.write(result.model_dump_json(indent=2) + "\n")
            return
        printer = StreamPrinter(console, rec.dataset.catalog)
        try:
            rec.recommend(user, k=k, request=request, exclude=excluded, on_event=printer)
        finally:
            printer.close()


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Interface to listen on (default 127.0.0.1; 0.0.0.0 exposes it) [env PROMPTREC_SERVE_HOST].")] = None,
    port: Annotated[Optional[int], typer.Option(help="TCP port (default 8000) [env PROMPTREC_SERVE_PORT].")] = None,
    concurrency: Annotated[Optional[int], typer.Option(help="Requests computed at once (default 2) [env PROMPTREC_SERVE_CONCURRENCY].")] = None,
    queue: Annotated[Optional[int], typer.Option(help="Requests that may wait for a slot; more get 503 (default 8) [env PROMPTREC_SERVE_QUEUE].")] = None,
    max_sessions: Annotated[Optional[int], typer.Option(help="Chat sessions kept at once (default 200).")] = None,
    session_ttl: Annotated[Optional[float], typer.Option(help="Seconds before an idle chat session is forgotten (default 1800).")] = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="No language model: fused order, evidence explanations.")] = False,
) -> None:
    """Serve the API (POST /recommend, /chat/{session} events, GET /items, /docs) and a web chat page at /."""
    try:
        import uvicorn

        from ..server import ServerSettings, build_app
    except ImportError as err:
        errors.print(f"[bold red]error:[/bold red] serving needs the serve extra: pip install 'promptrec[serve]' ({err})")
        raise typer.Exit(2) from None
    with _friendly_errors():
        given = {"host": host, "port": port, "concurrency": concurrency, "queue": queue,
                 "max_sessions": max_sessions, "session_ttl_s": session_ttl}
        try:
            server_settings = ServerSettings(**{k: v for k, v in given.items() if v is not None})
        except ValueError as err:
            from ..errors import ConfigError

            raise ConfigError(f"invalid serve option: {err}") from None
        app_, service = build_app(_recommender(no_llm), server_settings)
        service.warm()
        health = service.health()
        console.print(f"Serving {health['dataset']} ({health['items']:,} items, model: {health['model'] or 'none'}) "
                      f"on http://{server_settings.host}:{server_settings.port}/  (API docs: /docs)",
                      highlight=False, soft_wrap=True)
        uvicorn.run(app_, host=server_settings.host, port=server_settings.port, log_level="warning")


@app.command()
def chat(
    user: Annotated[Optional[str], typer.Option(help="Start with this user from the data.")] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=50, help="Suggestions per answer.")] = 5,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="No language model.")] = False,
) -> None:
    """Talk to the recommender: pick a user or describe tastes, steer, exclude, ask why. /help inside."""
    from ..chat import HELP, ChatSession
    from ..types import StreamEvent
    from .render import StreamPrinter, print_result

    with _friendly_errors():
        rec = _recommender(no_llm)
        session = ChatSession(rec, k=k)
        console.print(Text(HELP.format(k=k)))
        lines = [f"/user {user}"] if user else []
        while True:
            if lines:
                line = lines.pop(0)
            else:
                try:
                    line = console.input("[bold cyan]you>[/bold cyan] ")
                except EOFError:
                    break
            printer = StreamPrinter(console, rec.dataset.catalog)
            streamed = []

            def on_event(kind, data, printer=printer, streamed=streamed):
                if kind == "list":  # the reply and the list at once, reasons as they come
                    if data.text and not data.recommendations.revised:  # the printer says what a revision is
                        console.print(plain(data.text))
                    streamed.append(True)
                    printer(StreamEvent(kind="list", result=data.recommendations))
                elif kind == "reason":
                    printer(StreamEvent(kind="reason", item=data))

            try:
                with _friendly_errors():
                    reply = session.handle(line, on_event=on_event)
            finally:
                printer.close()
            if streamed and reply.recommendations is not None:
                printer(StreamEvent(kind="final", result=reply.recommendations))
            else:
                if reply.text:
                    console.print(plain(reply.text))
                if reply.recommendations is not None:
                    print_result(console, reply.recommendations, rec.dataset.catalog)
            if reply.quit:
                break


@app.command("fit-fusion")
def fit_fusion(
    kind: Annotated[str, typer.Option(help="Learner: linear (listwise; chosen on Protocol A validation) or "
                                           "lightgbm (lambdarank).")] = "linear",
    folds: Annotated[int, typer.Option(min=1, help="Folds: fold n holds out each user's n-th most recent item.")] = 3,
    knowledge_model: Annotated[Optional[str], typer.Option(
        help="Model id whose batch-made item features feed the feature signals (default: the product's features).")] = None,
    model_vectors: Annotated[Optional[str], typer.Option(
        help="Local model (small | medium | quality | a .gguf path) whose own vectors of each catalog item's title + "
             "genres feed the model-similarity signals: one forward pass per item, cached (quality: about 0.23 s per "
             "item on 2 cores); the product then ranks with the cached vectors without loading the model.")] = None,
) -> None:
    """Train the learned fusion on this dataset and save it under the dataset state; the product ranks
    its candidate pool with it (fusion.learned=auto) when it beat the weighted sum in cross-validation."""
    with _friendly_errors():
        if kind not in ("lightgbm", "linear"):
            raise typer.BadParameter("--kind must be lightgbm or linear")
        rec = _recommender(no_llm=True)
        with _progress() as progress:
            model = rec.fit_fusion(folds=folds, kind=kind, knowledge_model=knowledge_model, progress=progress,
                                   model_vectors=model_vectors)
        v = model.metadata["validation"]
        verdict = "used by the product" if model.metadata["won_on_validation"] else "NOT used (the weighted sum is better)"
        ci = v.get("difference_95ci_over_users")
        gap = f" (difference 95% CI over users [{ci[0]:+.4f}, {ci[1]:+.4f}])" if ci else ""
        console.print(plain(f"Learned fusion ({kind}): cross-validated N@10 {v['learned_N@10']:.4f} vs weighted sum "
                            f"{v['hand_weighted_N@10']:.4f} over {model.metadata['queries']} queries{gap}; {verdict}."))


@app.command()
def forget(
    user: Annotated[str, typer.Argument(help="The user id whose derived data should be deleted.")],
) -> None:
    """Delete everything promptrec derived from USER's data under the state dir (cached model replies whose
    prompt held their history, evaluation records naming them, fitted collaborative models). The data
    files themselves are not changed."""
    with _friendly_errors():
        from ..pipeline import Recommender

        report = Recommender(_settings(), llm=False).forget(user)
        console.print(report.summary(), highlight=False)


@app.command()
def models() -> None:
    """List the local models promptrec knows and whether each is installed."""
    from ..llm.resolve import PACKAGED

    with _friendly_errors():
        settings = _settings()
    for alias, model in PACKAGED.items():
        parts = model.part_paths()
        state = ("installed", "green") if parts else Text.assemble(("missing", "yellow"), f" - {model.install}")
        console.print(Text.assemble(f"{alias:8} {model.file_name:45} ", state))
    console.print(plain(f"in use: backend {settings.llm.backend}, model {settings.llm.model}"))
