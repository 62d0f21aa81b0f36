"""The `--region` option the PII commands (`leadops redact`, `leadops pii-backfill`) share."""

from __future__ import annotations

from leadops import cliutil, pii


def add_region_option(parser: cliutil.ArgumentParser) -> None:
    parser.add_argument(
        "--region",
        help=f"phone region for numbers without a country code (default: ${pii.REGION_ENV} or US)",
    )


def detector_for(region: str | None) -> pii.Detector:
    """The detector for `--region` (None: the default one); a bad region is a usage error."""
    try:
        return pii.Detector(region=region) if region else pii.default_detector()
    except ValueError as exc:
        raise cliutil.UsageError(str(exc)) from None
