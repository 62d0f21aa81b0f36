"""The log filter: no request value survives into a formatted log line, whatever the handler."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pydantic
import pytest

from leadops import logsafety
from leadops.contract.lead import Lead

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
NAME = "Zebulon Quimby"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger with its own handler (as uvicorn's are), with the filter installed globally."""
    previous = logging.getLogRecordFactory()
    logsafety.install()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tests.logsafety")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logging.setLogRecordFactory(previous)


def test_an_exception_quoting_a_request_value_keeps_its_type_and_frames_only(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    body = {"name": NAME, "details": f"mail {EMAIL} card {CARD}", "ssn": "x"}
    try:
        Lead.model_validate(body)
    except pydantic.ValidationError:
        try:
            raise KeyError(f"{NAME} <{EMAIL}>")
        except KeyError:
            logger.exception("Scoring failed")
    text = stream.getvalue()
    assert "Scoring failed" in text
    assert "Traceback (most recent call last)" in text
    assert "pydantic_core._pydantic_core.ValidationError" in text
    assert "KeyError" in text
    assert "test_logsafety.py" in text
    assert "During handling of the above exception" in text
    for planted in (NAME, EMAIL, CARD, "ssn"):
        assert planted not in text
    assert text.count(logsafety.WITHHELD) == 2


def test_string_and_exception_arguments_pass_the_detector_numbers_do_not(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.debug("lead %s from %s, version %d, auc %.2f", EMAIL, CARD, 1712345678, 0.8)
    logger.error("store said: %s", ValueError(f"bad value {EMAIL}"))
    logger.warning(ValueError(f"as the message itself {EMAIL}"))
    text = stream.getvalue()
    assert EMAIL not in text
    assert CARD not in text
    assert "version 1712345678, auc 0.80" in text
    assert "store said: ValueError: bad value [REDACTED]" in text
    assert text.count("[REDACTED]") == 4


def test_a_lone_surrogate_is_written_escaped_instead_of_breaking_the_handler(
    captured: tuple[logging.Logger, io.StringIO], capsys: pytest.CaptureFixture[str]
) -> None:
    logger, stream = captured
    # A handler writing UTF-8 bytes fails on a lone surrogate and then prints the raw record.
    raw = io.BytesIO()
    strict = logging.StreamHandler(io.TextIOWrapper(raw, encoding="utf-8", errors="strict"))
    logger.addHandler(strict)
    try:
        logger.info("text %s", json.loads('"a \\ud800 b"'))
        strict.flush()
    finally:
        logger.removeHandler(strict)
    assert "text a \\ud800 b" in stream.getvalue()
    assert b"text a \\ud800 b" in raw.getvalue()
    assert "Logging error" not in capsys.readouterr().err


def test_install_is_idempotent() -> None:
    previous = logging.getLogRecordFactory()
    try:
        logsafety.install()
        once = logging.getLogRecordFactory()
        logsafety.install()
        assert logging.getLogRecordFactory() is once
        assert once is not previous
    finally:
        logging.setLogRecordFactory(previous)
