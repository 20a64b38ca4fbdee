"""Protocol C: conversational intents — does a typed request that describes the held-out target
(without naming it) lead the product to it?

    python eval/protocol_c.py                         # templated + vague requests, read by the rule parser
    python eval/protocol_c.py --llm small --users 100 # + model-written requests; requests read by the model
    python eval/protocol_c.py --dataset path/to/folder

Requests are written once into eval/requests/ (named by dataset, model and prompt hash) and reused,
so a rerun scores the very same requests; every model reply is cached. The request source's weight
is chosen on validation targets; test is read once. Writes eval/results/NAME.{json,md}.
See docs/evaluation.md (Protocol C).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from promptrec.evaluation.conversational import ProtocolCConfig, format_beyond, format_table, run_protocol_c
from promptrec.evaluation.progress import progress_bars
from promptrec.settings import Settings

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default=None, help="dataset name or folder (default: ml-latest-small)")
    parser.add_argument("--llm", default=None, help="model that writes and reads requests: small | medium | quality | "
                        "path (default: none; templated and vague requests, rule parser)")
    parser.add_argument("--users", type=int, default=200, help="seeded sample of users per split")
    parser.add_argument("--name", default=None, help="result file name (default: protocol-c[-DATASET][-MODEL]-NUSERSu)")
    parser.add_argument("--requests", type=Path, default=HERE / "requests", help="folder of request files")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    args = parser.parse_args(argv)

    settings = Settings()
    update: dict = {}
    if args.dataset:
        update["dataset"] = args.dataset
    if args.llm:
        update["llm"] = settings.llm.model_copy(update={"model": args.llm})
    settings = settings.model_copy(update=update)
    name = args.name or ("protocol-c" + (f"-{Path(args.dataset).name}" if args.dataset else "")
                         + (f"-{Path(args.llm).stem}" if args.llm else "") + f"-{args.users}u")
    config = ProtocolCConfig(name=name, users=args.users, llm=bool(args.llm), requests_dir=args.requests)
    with progress_bars() as (bar, say):
        payload = run_protocol_c(config, settings, None, bar, say=say)
    args.out.mkdir(parents=True, exist_ok=True)
    table = format_table(payload)
    (args.out / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    meta = payload["meta"]
    (args.out / f"{name}.md").write_text(
        f"# {name}\n\nProtocol C on {meta['dataset']['name']} (sha256 {meta['dataset']['sha256'][:12]}), "
        f"{meta['users_per_split']} seeded users per split; requests: `{meta['requests_file']}` "
        f"(writer {meta['request_writer']}); parser: {meta['intent_parser']}; request weight chosen on validation: "
        f"{meta['request_weight']['chosen']}.\n\n{table}\n\n"
        "Every figure: the mean over users [95% percentile bootstrap interval over users, 1,000 resamples seeded by "
        "the root seed] (violations: the total, with the interval of the total). 'history only' is the product "
        "without the request, on the same users.\n\n## Beyond accuracy\n\nPopularity bias of the shown top 10 "
        "(docs/evaluation.md), and N@10 by the target's popularity tier and by user activity (cell: value [interval] "
        "(users)):\n\n" + format_beyond(payload) + "\n")
    print(table)
    print(f"wall time {meta['wall_s']} s; wrote {args.out / name}.{{json,md}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
