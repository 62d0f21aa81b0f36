"""The feature specification: which columns feed the model, in what role, and how they encode.

Roles are inferred from the data, never from known column names:

- a column whose values are (nearly) unique per row and look like keys (single tokens, integer
  ids, UUIDs, emails) is an *identifier* and is excluded: it memorises rows, it does not generalise;
- a column with one value (or none) is *constant* and is excluded: it cannot split anything;
- a column of ISO-8601 datetimes is a *timestamp*: excluded from features, used by the trainer
  for a time-aware hold-out;
- a column that parses as numbers (allowing a few junk cells, which become missing) is *numeric*;
- a column of many different multi-word values is *text*: it is turned into derived numbers
  (length, words, intent keywords, mentions of redacted contact data, a learned vocabulary);
- anything else is *categorical*: one indicator per frequent category; unseen or rare
  categories at serving time simply set none of them.

Empty cells and placeholder answers ("Select", "N/A", "--", ...) are missing values.
This module is pure (stdlib + pydantic): the operator parses specs without numpy.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

# Cells that mean "no answer": empty, the usual null spellings and web-form placeholders.
MISSING_TOKENS: Final = frozenset(
    {
        "",
        "na",
        "n/a",
        "nan",
        "null",
        "none",
        "nil",
        "-",
        "--",
        "?",
        "select",
        "-- select --",
        "--select--",
        "please select",
        "choose one",
        "not provided",
        "not specified",
    }
)
# Generic sales-intent words; the learned vocabulary picks up whatever else the data says.
INTENT_BUY: Final = frozenset(
    {
        "buy",
        "purchase",
        "price",
        "pricing",
        "quote",
        "demo",
        "trial",
        "budget",
        "contract",
        "order",
        "urgent",
        "asap",
        "ready",
        "sign",
        "invoice",
        "proposal",
        "seats",
        "licence",
        "license",
        "enroll",
        "enrol",
        "subscribe",
        "deadline",
    }
)
INTENT_NOT: Final = frozenset(
    {
        "browsing",
        "curious",
        "student",
        "homework",
        "research",
        "later",
        "someday",
        "maybe",
        "unsubscribe",
        "spam",
        "free",
        "cheap",
        "unsure",
        "just",
    }
)
_STOPWORDS_TEXT = """
the and for you your with this that from have has are was were will would can could our out
not but all any about into more some what when who how which there their them they its it's
i'm i've we'd we're please thanks thank hello dear regards
"""
STOPWORDS: Final = frozenset(_STOPWORDS_TEXT.split())
TEXT_DERIVED: Final = (
    "chars",
    "words",
    "intent_buy",
    "intent_not",
    "questions",
    "contact_mentions",
)

_TOKEN = re.compile(r"[a-z][a-z']+")
# Redacted contact data (`[REDACTED]`, `[REDACTED:EMAIL]`): the text gave a way to reach them.
_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z_]*(?::[A-Z_]+)?\]")
_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$"
)

NUMERIC_SHARE: Final = 0.95  # at least this share of present cells parse as numbers
IDENTIFIER_SHARE: Final = 0.95  # distinct/present at or above this: a key, not a feature
TEXT_MIN_WORDS: Final = 3.0  # mean words per cell for free text
MIN_ROWS_FOR_IDENTIFIER: Final = 20
SAMPLE: Final = 200  # cells looked at before checking a whole column for dates


def normalize(cell: str | None) -> str | None:
    """A cell's value with whitespace stripped, or None when it is missing or a placeholder."""
    if cell is None:
        return None
    value = cell.strip()
    return None if value.casefold() in MISSING_TOKENS else value


def parse_number(value: str) -> float | None:
    """A finite float, or None for junk (`"abc"`, `"inf"`)."""
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_timestamp(value: str) -> datetime | None:
    """An ISO-8601 date/datetime (a trailing `Z` allowed), or None."""
    if not _ISO_DATE.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def tokens(text: str) -> list[str]:
    """Lower-case word tokens of free text, as the text features see them."""
    return _TOKEN.findall(text.casefold())


def text_derived(
    text: str, *, words: Sequence[str] | None = None
) -> tuple[float, float, float, float, float, float]:
    """The fixed text-derived numbers, in TEXT_DERIVED order (`words`: tokens(text), if known)."""
    words = tokens(text) if words is None else words
    return (
        float(len(text)),
        float(len(words)),
        float(sum(1 for w in words if w in INTENT_BUY)),
        float(sum(1 for w in words if w in INTENT_NOT)),
        float(text.count("?")),
        float(len(_PLACEHOLDER.findall(text))),
    )


class NumericColumn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["numeric"] = "numeric"
    column: str
    non_numeric: int = Field(
        default=0, description="junk cells seen at fit time, treated as missing"
    )

    def feature_names(self) -> list[str]:
        return [self.column]


class CategoricalColumn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["categorical"] = "categorical"
    column: str
    categories: list[str] = Field(description="case-folded values, one indicator each")
    missing_indicator: bool = Field(description="an indicator for a missing/placeholder answer")

    @cached_property
    def index(self) -> dict[str, int]:
        """Category -> its indicator's offset (built once per loaded spec: serving is per row)."""
        return {value: i for i, value in enumerate(self.categories)}

    def feature_names(self) -> list[str]:
        names = [f"{self.column}={value}" for value in self.categories]
        return [*names, f"{self.column}=(missing)"] if self.missing_indicator else names


class TextColumn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["text"] = "text"
    column: str
    vocabulary: list[str] = Field(description="words whose presence is a feature")

    @cached_property
    def index(self) -> dict[str, int]:
        """Word -> its feature's offset within the column's block."""
        return {word: len(TEXT_DERIVED) + i for i, word in enumerate(self.vocabulary)}

    def feature_names(self) -> list[str]:
        derived = [f"{self.column}:{name}" for name in TEXT_DERIVED]
        return derived + [f"{self.column}:has={word}" for word in self.vocabulary]


ColumnSpec = Annotated[NumericColumn | CategoricalColumn | TextColumn, Field(discriminator="kind")]
ExclusionReason = Literal["identifier", "constant", "timestamp", "label", "requested"]


class ExcludedColumn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    column: str
    reason: ExclusionReason
    detail: str


class FeatureSpec(BaseModel):
    """Serializable: lives in the artifact, read by the scorer (featurize) and the operator."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    columns: list[ColumnSpec]
    excluded: list[ExcludedColumn] = Field(default_factory=list)
    missing_tokens: list[str] = Field(default_factory=lambda: sorted(MISSING_TOKENS))

    @cached_property
    def feature_names(self) -> list[str]:
        return [name for column in self.columns for name in column.feature_names()]

    @cached_property
    def layout(self) -> list[tuple[ColumnSpec, int, int]]:
        """(column, first feature offset, width) per input column, in feature order."""
        out, start = [], 0
        for column in self.columns:
            width = len(column.feature_names())
            out.append((column, start, width))
            start += width
        return out

    @property
    def input_columns(self) -> list[str]:
        return [column.column for column in self.columns]

    def describe(self) -> list[tuple[str, str]]:
        """(feature name, plain-words description) for the model card."""
        out: list[tuple[str, str]] = []
        for col in self.columns:
            if isinstance(col, NumericColumn):
                out.append((col.column, f"the number in column {col.column!r}"))
            elif isinstance(col, CategoricalColumn):
                out += [
                    (f"{col.column}={value}", f"column {col.column!r} is {value!r}")
                    for value in col.categories
                ]
                if col.missing_indicator:
                    out.append((f"{col.column}=(missing)", f"column {col.column!r} not answered"))
            else:
                what = {
                    "chars": "length in characters",
                    "words": "number of words",
                    "intent_buy": "count of buying-intent words (price, quote, demo, ...)",
                    "intent_not": "count of low-intent words (browsing, student, later, ...)",
                    "questions": "number of question marks",
                    "contact_mentions": "mentions of contact data (redacted placeholders)",
                }
                out += [
                    (f"{col.column}:{k}", f"{v} of text {col.column!r}") for k, v in what.items()
                ]
                out += [
                    (f"{col.column}:has={w}", f"text {col.column!r} contains the word {w!r}")
                    for w in col.vocabulary
                ]
        return out


def infer_timestamp_column(columns: Mapping[str, Sequence[str]]) -> str | None:
    """The first column whose present cells are (almost all) ISO timestamps, if any."""
    for name, cells in columns.items():
        # Most columns are plainly not dates: decide that from a few cells, not all of them.
        sample = [v for v in map(normalize, cells[:SAMPLE]) if v is not None]
        if not sample or sum(parse_timestamp(v) is not None for v in sample) < len(sample) / 2:
            continue
        if _is_timestamp(_Profile.of(cells)):
            return name
    return None


def _is_timestamp(profile: _Profile) -> bool:
    sample = list(itertools.islice(profile.present, SAMPLE))
    if sum(parse_timestamp(v) is not None for v in sample) < len(sample) / 2:
        return False
    return profile.at_least(_is_stamp, NUMERIC_SHARE, memo="timestamp")


def _is_stamp(value: str) -> bool:
    return parse_timestamp(value) is not None


@dataclass(frozen=True)
class _Profile:
    """A column as its distinct present values with counts: role inference reads only this."""

    present: Counter[str]
    n_present: int
    n_missing: int
    # Per-value test results shared by the profiles of one encoded column's row selections.
    memo: dict[str, Any] | None = None

    @classmethod
    def of(cls, cells: Sequence[str]) -> _Profile:
        # Encoded columns (leadops.contract.encoded) count by their codes and normalize each
        # distinct value once for all the profiles of their rows.
        fast = getattr(cells, "normalized_counts", None)
        if fast is not None:
            counted, n_missing = fast(normalize)
            present_counts = Counter(counted)
            n_present = sum(counted.values())
            return cls(present_counts, n_present, n_missing, memo=getattr(cells, "memo", None))
        present: Counter[str] = Counter()
        missing = 0
        for raw, count in Counter(cells).items():  # C-speed, and values repeat a lot
            value = normalize(raw)
            if value is None:
                missing += count
            else:
                present[value] += count
        return cls(present=present, n_present=sum(present.values()), n_missing=missing)

    def share(self, test: Callable[[str], bool]) -> float:
        return sum(c for v, c in self.present.items() if test(v)) / self.n_present

    def at_least(self, test: Callable[[str], bool], share: float, *, memo: str = "") -> bool:
        """`self.share(test) >= share`, stopping once the rows left cannot reach it.

        With `memo`, results are kept per value for other profiles of the same column.
        """
        known: dict[str, bool] = {}
        if memo and self.memo is not None:
            known = self.memo.setdefault(f"at_least:{memo}", {})
        n, good, bad = self.n_present, 0, 0
        for value, count in self.present.items():
            ok = known.get(value)
            if ok is None:
                ok = known[value] = test(value)
            if ok:
                good += count
            else:
                bad += count
                if (n - bad) / n < share:  # even all the rest passing falls short
                    return False
        return good / n >= share


def fit_feature_spec(
    columns: Mapping[str, Sequence[str]],
    *,
    label: str | None = None,
    exclude: Collection[str] = (),
    max_categories: int = 50,
    min_category_count: int = 5,
    vocabulary_size: int = 40,
) -> FeatureSpec:
    """Infer every column's role from its cells and fit its encoding (categories, vocabulary)."""
    specs: list[ColumnSpec] = []
    excluded: list[ExcludedColumn] = []
    for name, cells in columns.items():
        if name == label:
            excluded.append(ExcludedColumn(column=name, reason="label", detail="the label"))
            continue
        if name in exclude:
            excluded.append(ExcludedColumn(column=name, reason="requested", detail="--exclude"))
            continue
        profile = _Profile.of(cells)
        role = _infer_role(name, profile, max_categories=max_categories)
        if isinstance(role, ExcludedColumn):
            excluded.append(role)
        elif role == "numeric":
            junk = sum(c for v, c in profile.present.items() if parse_number(v) is None)
            specs.append(NumericColumn(column=name, non_numeric=junk))
        elif role == "text":
            specs.append(
                TextColumn(column=name, vocabulary=_fit_vocabulary(profile, vocabulary_size))
            )
        else:
            specs.append(_fit_categorical(name, profile, max_categories, min_category_count))
    return FeatureSpec(columns=specs, excluded=excluded)


def _infer_role(  # noqa: PLR0911 -- one return per role reads best
    name: str, profile: _Profile, *, max_categories: int
) -> ExcludedColumn | Literal["numeric", "text", "categorical"]:
    distinct = len(profile.present)
    n_rows = profile.n_present + profile.n_missing
    if not distinct:
        return ExcludedColumn(column=name, reason="constant", detail="every cell is missing")
    if distinct == 1 and profile.n_missing == 0:
        return ExcludedColumn(column=name, reason="constant", detail="one value in every row")
    if _is_timestamp(profile):
        return ExcludedColumn(
            column=name, reason="timestamp", detail="dates: used for the time-aware hold-out"
        )
    numbers: dict[str, float | None] = {}  # complete whenever is_numeric holds

    def is_number(value: str) -> bool:
        numbers[value] = parse_number(value)
        return numbers[value] is not None

    is_numeric = profile.at_least(is_number, NUMERIC_SHARE)
    unique_share = distinct / profile.n_present
    keylike = n_rows >= MIN_ROWS_FOR_IDENTIFIER and profile.n_present >= 0.5 * n_rows
    if is_numeric:
        # Integer ids are unique per row; measured quantities repeat or carry fractions.
        if keylike and unique_share == 1.0 and _looks_like_ids(numbers.values()):
            return ExcludedColumn(
                column=name, reason="identifier", detail="a distinct integer id in every row"
            )
        return "numeric"
    words = sum(c * len(v.split()) for v, c in profile.present.items())
    mean_words = words / profile.n_present
    if keylike and unique_share >= IDENTIFIER_SHARE and mean_words < 2:
        return ExcludedColumn(
            column=name,
            reason="identifier",
            detail=f"{unique_share:.0%} of values are distinct single tokens",
        )
    if mean_words >= TEXT_MIN_WORDS and distinct > max_categories:
        return "text"
    return "categorical"


def _looks_like_ids(numbers: Collection[float | None]) -> bool:
    """Integers that are all one width (660737) or nearly a run (1..n): keys, not a measure.

    A measured quantity can be distinct in every row of a small file (seconds on site), but its
    values spread over magnitudes; ids are numbered, not measured.
    """
    values = [x for x in numbers if x is not None]
    if not values or not all(x.is_integer() for x in values):
        return False
    widths = {len(str(abs(int(x)))) for x in values}
    return len(widths) == 1 or max(values) - min(values) < 3 * len(values)


def _fit_categorical(
    name: str, profile: _Profile, max_categories: int, min_count: int
) -> CategoricalColumn:
    counts: Counter[str] = Counter()
    for value, count in profile.present.items():
        counts[value.casefold()] += count
    frequent = [(v, c) for v, c in counts.items() if c >= min_count]
    frequent.sort(key=lambda item: (-item[1], item[0]))
    categories = [v for v, _ in frequent[:max_categories]]
    return CategoricalColumn(
        column=name, categories=categories, missing_indicator=profile.n_missing >= min_count
    )


def _fit_vocabulary(profile: _Profile, size: int) -> list[str]:
    # Words in at least 0.5 % (min 5) and at most 60 % of texts, most common first.
    df: Counter[str] = Counter()
    for value, count in profile.present.items():
        for word in {w for w in tokens(value) if w not in STOPWORDS and len(w) >= 3}:
            df[word] += count
    n = profile.n_present
    if n == 0:
        return []
    low, high = max(5, math.ceil(0.005 * n)), 0.6 * n
    kept = [(w, c) for w, c in df.items() if low <= c <= high]
    kept.sort(key=lambda item: (-item[1], item[0]))
    return [w for w, _ in kept[:size]]
