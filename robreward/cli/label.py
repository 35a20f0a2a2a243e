"""`robreward label RUN_DIR [--port 8765] [--host 127.0.0.1]`: the labeling web app for a run's
human-teacher queries (RUN_DIR/labels.sqlite, RUN_DIR/clips/*.mp4). Prints the URL (with the run's
token: open that one), serves until Ctrl-C; every label is saved as it is given. A directory that is
not a human-teacher preference run is refused before anything is written in it."""

from __future__ import annotations

import sys
from pathlib import Path

from robreward.cli.main import CliError
from robreward.web.server import DEFAULT_HOST, DEFAULT_PORT  # light: FastAPI is imported only by serve()


def run(args) -> int:
    from robreward.feedback.preferences.app import ServeError, serve

    run_dir = Path(args.run_dir)

    def announce(url: str) -> None:
        print(f"labeling {run_dir} at {url}  (Ctrl-C to stop; labels are saved as you give them)", flush=True)

    try:
        serve(run_dir, host=args.host, port=args.port, announce=announce)
    except ServeError as err:
        raise CliError(str(err)) from None
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return 0


def register(sub) -> None:
    p = sub.add_parser("label")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory holding labels.sqlite and clips/")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT}; "
                   "0 picks a free one)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST}, this "
                   "machine only)")
    p.set_defaults(func=run)
