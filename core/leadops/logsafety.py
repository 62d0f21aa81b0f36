"""The second line of defence for privacy in logs: request data never reaches a log line.

The first line is the code itself (no log call is given a lead field). This filter catches what
slips through: an exception whose message quotes a request value (a pydantic error's
`input_value=...`, a KeyError holding an e-mail address, a codec error), or a string argument
that carries PII. It rewrites every log record when it is made, so every handler (ours,
uvicorn's, kopf's, pytest's) sees only the safe version:

- an attached exception keeps its type and its traceback's frames; the message of every
  exception in the chain is withheld (messages are where request values travel);
- string and exception arguments pass the PII detector; numbers are left as they are;
- text is made encodable (a lone surrogate becomes `\\ud800`), so a handler writing it can
  never fail and dump the raw record to stderr ("--- Logging error ---").

`install()` is called by every entry point (the scorer, the jobs, the operator); it is
idempotent.
"""

from __future__ import annotations

import logging
import numbers
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Final

WITHHELD: Final = "[message withheld: it may quote request data]"

_DONE: Final = "_leadops_sanitized"
_install_lock = threading.Lock()


def _encodable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _redact(text: str) -> str:
    # Imported here: the detector (phonenumbers) is built once, on the first logged argument.
    from leadops import pii  # noqa: PLC0415

    try:
        return pii.redact(_encodable(text))
    except Exception:  # the filter must never break logging: withhold rather than leak
        return WITHHELD


def _safe_arg(value: object) -> object:
    if isinstance(value, numbers.Number) or value is None:
        return value
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {_redact(str(value))}"
    if isinstance(value, str):
        return _redact(value)
    # Paths, enums and other objects: logged by their text, which passes the detector too.
    return _redact(str(value))


def safe_traceback(exc: BaseException) -> str:
    """The traceback of `exc` and its chain, as Python prints it, with every message withheld."""
    parts: list[str] = []
    seen: set[int] = set()

    def walk(item: BaseException) -> None:
        seen.add(id(item))
        cause, context = item.__cause__, item.__context__
        if cause is not None and id(cause) not in seen:
            walk(cause)
            parts.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
            )
        elif context is not None and not item.__suppress_context__ and id(context) not in seen:
            walk(context)
            parts.append(
                "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        if item.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_tb(item.__traceback__))
        kind = type(item)
        module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
        parts.append(f"{module}{kind.__qualname__}: {WITHHELD}\n")

    walk(exc)
    return _encodable("".join(parts).rstrip("\n"))


class RequestDataFilter(logging.Filter):
    """Rewrites a record in place as this module's docstring says; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        sanitize(record)
        return True


def sanitize(record: logging.LogRecord) -> None:
    if record.__dict__.get(_DONE):
        return
    record.__dict__[_DONE] = True
    if not isinstance(record.msg, str):
        record.msg = _safe_arg(record.msg)
    else:
        record.msg = _encodable(record.msg)
    args = record.args
    if isinstance(args, Mapping):
        record.args = {key: _safe_arg(value) for key, value in args.items()}
    elif args:
        record.args = tuple(_safe_arg(value) for value in args)
    exc_info = record.exc_info
    if exc_info and exc_info[1] is not None:
        record.exc_text = safe_traceback(exc_info[1])
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = WITHHELD
    if record.stack_info:
        record.stack_info = _encodable(record.stack_info)


def install() -> None:
    """Sanitize every log record this process makes, whichever logger and handler it takes.

    A record factory rather than a handler filter: filters on the root's handlers miss the
    loggers with handlers of their own (uvicorn's), and records made before a handler exists.
    """
    with _install_lock:
        make: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()
        if getattr(make, _DONE, False):
            return
        safe = RequestDataFilter()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make(*args, **kwargs)
            safe.filter(record)
            return record

        setattr(factory, _DONE, True)
        logging.setLogRecordFactory(factory)
