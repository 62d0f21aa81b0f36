"""`leadops serve --model model.json [--host 127.0.0.1] [--port 8000]`: run the scorer with uvicorn.

Every other setting comes from `LEADOPS_*` environment variables (see README.md);
`--model` overrides LEADOPS_MODEL_PATH.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pydantic
import uvicorn

from leadops import cliutil, logsafety
from leadops.scorer.app import create_app
from leadops.scorer.settings import Settings

logger = logging.getLogger(__name__)


def _parser() -> cliutil.ArgumentParser:
    parser = cliutil.ArgumentParser(
        prog="leadops serve", description="Run the LeadOps scorer HTTP service."
    )
    parser.add_argument("--model", type=Path, help="model artifact (default: LEADOPS_MODEL_PATH)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("LEADOPS_LOG_LEVEL", "info"),
        choices=["debug", "info", "warning", "error"],
        help="log level (default info, or LEADOPS_LOG_LEVEL)",
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if not 0 < args.port < 65536:
        raise cliutil.UsageError(f"--port {args.port} is not a TCP port (1-65535)")
    try:
        settings = Settings() if args.model is None else Settings(model_path=args.model)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise cliutil.UsageError(f"bad setting {where}: {first['msg']}") from None
    if settings.model_path is not None and not settings.model_path.is_file():
        raise cliutil.UsageError(f"model file {settings.model_path} does not exist")
    settings.redis_url_value()  # an unreadable or empty URL file stops the start, in one line
    logsafety.install()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        # Keys may arrive as ?api_key=; uvicorn's access log would print them.
        server_header=False,
    )
    return 0
