"""Running the PII detector on values read from Redis: in this process, or in a pool of worker
processes while the main process goes on reading, screening and writing."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import signal
from collections.abc import Sequence

from leadops import pii


def _decode(value: bytes) -> str:
    # surrogateescape round-trips any bytes, so even non-UTF-8 values compare exactly.
    return value.decode("utf-8", "surrogateescape")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


# What detection says of one value: its redacted form and the kinds found, or None (clean).
Redaction = tuple[bytes, tuple[str, ...]] | None


def redact_values(detector: pii.Detector, values: Sequence[bytes]) -> list[Redaction]:
    """Runs the detector on each value; module-level so worker processes can run it."""
    results: list[Redaction] = []
    for value in values:
        text = _decode(value)
        findings = detector.find(text)
        if findings:
            redacted = _encode(pii.replace(text, findings))
            results.append((redacted, tuple(f.type.value for f in findings)))
        else:
            results.append(None)
    return results


def _start_worker() -> None:
    # Ctrl-C on a terminal reaches the whole process group: the main process stops the run
    # and shuts the workers down, so they need not print tracebacks of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class DetectionPool:
    """`workers` processes running `redact_values`, started at the first submit (fork: at once,
    with every module this process has loaded); Redis is only ever used from the main process."""

    def __init__(self, detector: pii.Detector, workers: int) -> None:
        self.detector = detector
        self.workers = workers
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def submit(self, values: list[bytes]) -> list[concurrent.futures.Future[list[Redaction]]]:
        """Detection of `values` split in one part per worker; results in the order given."""
        if self._pool is None:
            context = multiprocessing.get_context("fork")
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_start_worker
            )
        size = -(-len(values) // self.workers)
        return [
            self._pool.submit(redact_values, self.detector, values[i : i + size])
            for i in range(0, len(values), size)
        ]

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
