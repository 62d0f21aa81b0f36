"""The `--region` option the PII commands (`leadops redact`, `leadops pii-backfill`) share."""

from __future__ import annotations

from leadops import cliutil, pii


def add_region_option(parser: cliutil.ArgumentParser) -> None:
    parser.add_argument(
        "--region",
        action="append",
        dest="regions",
        metavar="REGION",
        help=(
            "phone region whose national formats count (numbers without a country code); "
            f"repeat or comma-separate for several (default: ${pii.REGIONS_ENV}, "
            f"then ${pii.REGION_ENV}, then US)"
        ),
    )


def detector_for(regions: list[str] | None) -> pii.Detector:
    """The detector for the `--region` options (None: the environment's); an unknown region
    is a usage error."""
    try:
        if regions:
            return pii.Detector(regions=pii.parse_regions(",".join(regions)))
        return pii.default_detector()
    except ValueError as exc:
        raise cliutil.UsageError(str(exc)) from None
