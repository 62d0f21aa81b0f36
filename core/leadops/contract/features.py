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

import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Final, Literal

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
# Redacted contact data (`[REDACTED]`, `[EMAIL]`, `[PHONE]`): the text gave a way to reach them.
_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z_]*\]")
_ISO_DATE = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$"
)

NUMERIC_SHARE: Final = 0.95  # at least this share of present cells parse as numbers
IDENTIFIER_SHARE: Final = 0.95  # distinct/present at or above this: a key, not a feature
TEXT_MIN_WORDS: Final = 3.0  # mean words per cell for free text
MIN_ROWS_FOR_IDENTIFIER: Final = 20


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


def text_derived(text: str) -> tuple[float, float, float, float, float, float]:
    """The fixed text-derived numbers, in TEXT_DERIVED order."""
    words = tokens(text)
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

    def feature_names(self) -> list[str]:
        names = [f"{self.column}={value}" for value in self.categories]
        return [*names, f"{self.column}=(missing)"] if self.missing_indicator else names


class TextColumn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["text"] = "text"
    column: str
    vocabulary: list[str] = Field(description="words whose presence is a feature")

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

    @property
    def feature_names(self) -> list[str]:
        return [name for column in self.columns for name in column.feature_names()]

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
        present = [v for v in map(normalize, cells) if v is not None]
        if present and _share(present, lambda v: parse_timestamp(v) is not None) >= NUMERIC_SHARE:
            return name
    return None


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
        role = _infer_role(name, cells, max_categories=max_categories)
        if isinstance(role, ExcludedColumn):
            excluded.append(role)
        elif role == "numeric":
            junk = sum(
                1 for v in map(normalize, cells) if v is not None and parse_number(v) is None
            )
            specs.append(NumericColumn(column=name, non_numeric=junk))
        elif role == "text":
            specs.append(
                TextColumn(column=name, vocabulary=_fit_vocabulary(cells, vocabulary_size))
            )
        else:
            specs.append(_fit_categorical(name, cells, max_categories, min_category_count))
    return FeatureSpec(columns=specs, excluded=excluded)


def _share(values: Sequence[str], test: Callable[[str], bool]) -> float:
    return sum(1 for v in values if test(v)) / len(values)


def _infer_role(  # noqa: PLR0911 -- one return per role reads best
    name: str, cells: Sequence[str], *, max_categories: int
) -> ExcludedColumn | Literal["numeric", "text", "categorical"]:
    values = [normalize(v) for v in cells]
    present = [v for v in values if v is not None]
    n_missing = len(values) - len(present)
    distinct = set(present)
    if not distinct:
        return ExcludedColumn(column=name, reason="constant", detail="every cell is missing")
    if len(distinct) == 1 and n_missing == 0:
        return ExcludedColumn(column=name, reason="constant", detail="one value in every row")
    if _share(present, lambda v: parse_timestamp(v) is not None) >= NUMERIC_SHARE:
        return ExcludedColumn(
            column=name, reason="timestamp", detail="dates: used for the time-aware hold-out"
        )
    numbers = [parse_number(v) for v in present]
    parsed = [x for x in numbers if x is not None]
    is_numeric = len(parsed) >= NUMERIC_SHARE * len(present)
    unique_share = len(distinct) / len(present)
    keylike = len(values) >= MIN_ROWS_FOR_IDENTIFIER and len(present) >= 0.5 * len(values)
    if is_numeric:
        # Integer ids are unique per row; measured quantities repeat or carry fractions.
        if keylike and unique_share == 1.0 and all(x.is_integer() for x in parsed):
            return ExcludedColumn(
                column=name, reason="identifier", detail="a distinct integer in every row"
            )
        return "numeric"
    mean_words = sum(len(v.split()) for v in present) / len(present)
    if keylike and unique_share >= IDENTIFIER_SHARE and mean_words < 2:
        return ExcludedColumn(
            column=name,
            reason="identifier",
            detail=f"{unique_share:.0%} of values are distinct single tokens",
        )
    if mean_words >= TEXT_MIN_WORDS and len(distinct) > max_categories:
        return "text"
    return "categorical"


def _fit_categorical(
    name: str, cells: Sequence[str], max_categories: int, min_count: int
) -> CategoricalColumn:
    counts: Counter[str] = Counter()
    missing = 0
    for cell in cells:
        value = normalize(cell)
        if value is None:
            missing += 1
        else:
            counts[value.casefold()] += 1
    frequent = [(v, c) for v, c in counts.items() if c >= min_count]
    frequent.sort(key=lambda item: (-item[1], item[0]))
    categories = [v for v, _ in frequent[:max_categories]]
    return CategoricalColumn(
        column=name, categories=categories, missing_indicator=missing >= min_count
    )


def _fit_vocabulary(cells: Sequence[str], size: int) -> list[str]:
    # Words in at least 0.5 % (min 5) and at most 60 % of texts, most common first.
    df: Counter[str] = Counter()
    n = 0
    for cell in cells:
        value = normalize(cell)
        if value is None:
            continue
        n += 1
        df.update({w for w in tokens(value) if w not in STOPWORDS and len(w) >= 3})
    if n == 0:
        return []
    low, high = max(5, math.ceil(0.005 * n)), 0.6 * n
    kept = [(w, c) for w, c in df.items() if low <= c <= high]
    kept.sort(key=lambda item: (-item[1], item[0]))
    return [w for w, _ in kept[:size]]
