"""A secret setting from the environment: NAME itself, or the file NAME_FILE names.

The Pods the operator builds mount Secrets as files and pass only their paths
(`LEADOPS_REDIS_URL_FILE`, `LEADOPS_API_KEY_FILE`): a file is updated in place when the
Secret rotates and never shows in `kubectl describe pod` or a process's environment. A person
at a shell keeps setting NAME itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from leadops.cliutil import UsageError

FILE_SUFFIX = "_FILE"
MAX_BYTES = 64 * 1024  # a URL or a key, never a document


def read_secret_file(path: Path, *, variable: str) -> str:
    """The file's text without the trailing newline; a clear UsageError when it is unusable."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise UsageError(f"{variable}: {path} is over {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"{variable}: {path} is not UTF-8 text") from None
    if not text:
        raise UsageError(f"{variable}: {path} is empty")
    return text


def secret_from_env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """NAME's value, else the text of the file NAME_FILE names, else None (neither is set)."""
    env = os.environ if environ is None else environ
    value = env.get(name, "")
    if value:
        return value
    path = env.get(name + FILE_SUFFIX, "").strip()
    if not path:
        return None
    return read_secret_file(Path(path), variable=name + FILE_SUFFIX)
