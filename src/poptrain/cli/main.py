"""The ``poptrain`` command line. Every command takes ``--storage URL`` and ``--name NAME``."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Sequence

from poptrain.errors import PoptrainError

DEFAULT_URL = "sqlite:///poptrain.db"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", default=DEFAULT_URL, help="database URL (default: %(default)s)")
    p.add_argument("--name", default=None, help="experiment name, when the storage holds several")


def _checkpoint_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint-option", action="append", default=[], metavar="KEY=VALUE", dest="checkpoint_options",
        help="an fsspec option of the checkpoint filesystem, e.g. client_kwargs.endpoint_url=http://minio:9000 "
        "(dots nest; VALUE is read as JSON when it parses). Repeatable. Options are never stored; give every "
        "worker the same ones. Keep secrets out of the command line: use the filesystem's environment "
        "variables (AWS_ACCESS_KEY_ID, ...) or FSSPEC_S3='{json}'",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poptrain", description="Population-Based Training.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run or resume the experiment defined in FILE.py")
    p.add_argument("file", help="a Python file defining a module-level `experiment`")
    _common(p)
    p.add_argument("--checkpoints", default=None, help="fsspec URL for checkpoints (default: poptrain_checkpoints)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU cores; 0: create only)")
    p.add_argument("--executor", default="local", choices=["local", "inline", "ray"])
    p.add_argument("--lease", type=float, default=30.0, help="seconds before a silent worker's member is taken over")
    p.add_argument("--no-progress", action="store_true", help="no live progress display")
    p.add_argument("--retry-failed", action="store_true", help="on resume, retry members that failed")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (executor ray)")
    p.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per Ray worker")
    p.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per Ray worker")
    p.add_argument("--tensorboard", default=None, metavar="DIR", help="also log to TensorBoard in DIR")
    _checkpoint_options(p)

    p = sub.add_parser("worker", help="join a running experiment and train until it is done")
    _common(p)
    p.add_argument("--checkpoints", default=None, help="override the experiment's checkpoint URL")
    p.add_argument("--lease", type=float, default=30.0)
    p.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                   help="how long to wait for an unreachable database, at start and mid-run (default: %(default)s)")
    _checkpoint_options(p)

    for cmd, text in (
        ("status", "one row per member"),
        ("best", "the best member and its schedule"),
        ("lineage", "every exploit: member, step, donor, donor step, old and new config"),
        ("history", "every trained step's metrics"),
    ):
        p = sub.add_parser(cmd, help=text)
        _common(p)
        p.add_argument("--json", action="store_true", help="print JSON")
        if cmd == "best":
            p.add_argument("--schedule-out", default=None, metavar="FILE", help="write the best schedule as JSON")

    p = sub.add_parser("list", help="the experiments in a storage")
    p.add_argument("--storage", default=DEFAULT_URL)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("report", help="a self-contained HTML report")
    _common(p)
    p.add_argument("--out", default="report.html")
    p.add_argument("--png", default=None, metavar="DIR", help="also write the main plots as PNG files")

    p = sub.add_parser("dashboard", help="a live local web page over the storage")
    _common(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)

    p = sub.add_parser("replay", help="train a fresh member following the best schedule")
    _common(p)
    p.add_argument("--file", default=None, help="the experiment's FILE.py (default: the stored trainable path)")
    p.add_argument("--schedule", default=None, help="a schedule JSON to follow (default: the best member's)")
    p.add_argument("--steps", type=int, default=None, help="steps to train (default: the schedule's end)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(COMMANDS[args.command](args) or 0)
    except PoptrainError as exc:
        print(f"poptrain {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `poptrain history | head`
        return 0
    except KeyboardInterrupt:
        print(f"poptrain {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def _dump(obj: Any) -> None:
    print(json.dumps(_finite(obj), indent=2, default=_json_default))


def _finite(obj: Any) -> Any:
    """Valid JSON: NaN and infinities become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _json_default(o: Any) -> Any:
    return repr(o)


def cmd_run(args: argparse.Namespace) -> int:
    from poptrain.cli.commands import run_file

    return run_file(args)


def cmd_worker(args: argparse.Namespace) -> int:
    from poptrain.cli.commands import join_as_worker

    return join_as_worker(args)


def cmd_status(args: argparse.Namespace) -> int:
    from poptrain.cli.tables import print_status
    from poptrain.results import load_result

    res = load_result(args.storage, args.name)
    rows = [dict(member=m["member"], step=m["step"], score=m["score"], config=m["config"], state=m["state"]) for m in res.members]
    if args.json:
        _dump(rows)
    else:
        print_status(res)
    return 0


def cmd_best(args: argparse.Namespace) -> int:
    from poptrain.cli.tables import print_best
    from poptrain.results import load_result

    res = load_result(args.storage, args.name)
    if res.best is None:
        raise PoptrainError(f"experiment {res.name!r} has no member with a usable score yet")
    if args.schedule_out:
        from poptrain.reporting.schedule import write_schedule

        write_schedule(res, args.schedule_out)
    if args.json:
        _dump(res.best)
    else:
        print_best(res)
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    from poptrain.results import load_result

    res = load_result(args.storage, args.name)
    rows = [{k: e[k] for k in ("member", "step", "donor", "donor_step", "old_config", "new_config")} for e in res.lineage]
    if args.json:
        _dump(rows)
    else:
        from poptrain.cli.tables import print_lineage

        print_lineage(res)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from poptrain.results import load_result

    res = load_result(args.storage, args.name)
    if args.json:
        _dump(res.history)
    else:
        for h in res.history:
            print(f"member {h['member']:>3} segment {h['segment']:>4} step {h['step']:>6} {h['metrics']}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from poptrain.storage import open_storage

    exps = open_storage(args.storage).list_experiments()
    if args.json:
        _dump([dict(name=e.name, status=e.status, population=e.spec.get("population"), budget=e.spec.get("budget")) for e in exps])
    elif not exps:
        print("no experiments")
    else:
        for e in exps:
            print(f"{e.name}\t{e.status}\tpopulation {e.spec.get('population')}\tbudget {e.spec.get('budget')}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from poptrain.reporting.commands import report_command

    return int(report_command(args.storage, args.name, args.out, args.png) or 0)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from poptrain.reporting.commands import dashboard_command

    return int(dashboard_command(args.storage, args.name, args.host, args.port) or 0)


def cmd_replay(args: argparse.Namespace) -> int:
    from poptrain.reporting.commands import replay_command

    return int(replay_command(args.storage, args.name, args.file, schedule_path=args.schedule, steps=args.steps) or 0)


COMMANDS = {
    "run": cmd_run,
    "worker": cmd_worker,
    "status": cmd_status,
    "best": cmd_best,
    "lineage": cmd_lineage,
    "history": cmd_history,
    "list": cmd_list,
    "report": cmd_report,
    "dashboard": cmd_dashboard,
    "replay": cmd_replay,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
