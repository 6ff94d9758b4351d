"""Checks of the files users give: one clear line per problem, naming file, row, column, fix.

Every reader of a user's table (sample CSVs, regional tables, target maps, gene lists)
goes through :func:`read_user_table` (or :func:`read_name_list`), then
:func:`numeric_columns` for the columns that must hold numbers. They recognise empty,
binary and wrongly delimited files, header-only tables, duplicated column or row names,
text in numeric columns and values that are not finite or absurdly large, and raise
:class:`~brainexpr.errors.InputError` with a message of one line. :func:`close_names`
suggests the names a user probably meant (case-insensitively); :func:`check_choice` and
:func:`check_choices` are the one "must be one of" check of every option, suggesting the
closest valid value.
"""

from __future__ import annotations

import csv
import difflib
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError

logger = logging.getLogger(__name__)

#: Delimiters recognised in a header line, with the words used in messages.
DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
#: Largest magnitude accepted in a value column (beyond it squares overflow float64 sums).
VALUE_LIMIT = 1e15
_SNIFF_BYTES = 65536


#: Leading bytes of zip-based (.xlsx, .ods) and legacy (.xls) spreadsheet files.
SPREADSHEET_MAGIC = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
_SPREADSHEET_FIX = "save it as CSV (comma-separated) or TSV"


def _head(path: Path, what: str, spreadsheet_fix: str = _SPREADSHEET_FIX) -> str:
    """The first bytes of a text file, decoded (one-line errors for missing/empty/binary;
    ``spreadsheet_fix`` ends the message for a spreadsheet file)."""
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    if not path.is_file():
        raise InputError(f"{what} {path} is a folder, not a file")
    with open(path, "rb") as handle:
        raw = handle.read(_SNIFF_BYTES)
    if not raw.strip():
        raise InputError(f"{what} {path} is empty; expected a table with a header row")
    if raw.startswith(SPREADSHEET_MAGIC):
        raise InputError(f"{what} {path} is a zip or Excel file: a binary spreadsheet, not "
                         f"CSV/TSV; {spreadsheet_fix}")
    if b"\x00" in raw:
        raise InputError(f"{what} {path} is a binary file, not a text table; give a CSV or TSV "
                         "file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        cut = len(raw) == _SNIFF_BYTES and exc.start >= len(raw) - 4  # a character cut in two
        if not cut:
            raise InputError(f"{what} {path} is not UTF-8 text (byte {exc.start}); export it "
                             "as CSV (UTF-8)") from None
        return raw[:exc.start].decode("utf-8-sig")


def detect_delimiter(header: str) -> str:
    """The delimiter of a header line: the most frequent of :data:`DELIMITERS` (',' if none)."""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def read_user_table(path, what: str = "table", sep: str | None = None,
                    index_col: int | None = None,
                    spreadsheet_fix: str = _SPREADSHEET_FIX) -> pd.DataFrame:
    """Read a user's CSV/TSV table, refusing files that cannot be what was meant.

    Parameters
    ----------
    path : path-like
    what : str
        What the file is, for messages (``"sample table"``).
    sep : str, optional
        Expected delimiter; None takes the one of the header line (any of
        :data:`DELIMITERS`). A file whose header has another delimiter and none of
        ``sep`` is an error naming the delimiter found.
    index_col : int, optional
        Column to use as the index (e.g. 0 for region names); its values must be unique.
    spreadsheet_fix : str
        What to do with a spreadsheet file, ending its error message.

    Returns
    -------
    pandas.DataFrame
        As read (cells keep their text; see :func:`numeric_columns`).

    Raises
    ------
    InputError
        Missing, empty, binary or non-UTF-8 file; wrong delimiter; duplicated column or
        index names; a header without data rows; unparseable rows.
    """
    path = Path(path)
    text = _head(path, what, spreadsheet_fix)
    header = text.splitlines()[0]
    found = detect_delimiter(header)
    if sep is None:
        sep = found
    elif sep not in header and found != sep and header.count(found):
        raise InputError(f"{what} {path} is {DELIMITERS[found]}-separated, expected "
                         f"{DELIMITERS[sep]}-separated; save it with {DELIMITERS[sep]}s "
                         f"(and decimal points){' or name it .tsv' if found == chr(9) else ''}")
    names = next(csv.reader(io.StringIO(header), delimiter=sep))
    names = [n.strip() for n in names]
    seen = {}
    for index, name in enumerate(names, start=1):
        if name in seen and name:
            raise InputError(f"{what} {path}: column {name!r} appears twice (columns {seen[name]} "
                             f"and {index}); give every column its own name")
        seen[name] = index
    try:
        table = pd.read_csv(path, sep=sep, index_col=index_col, encoding="utf-8-sig",
                            dtype=str, keep_default_na=True, skipinitialspace=True)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what} {path} as a {DELIMITERS[sep]}-separated table "
                         f"({str(exc).splitlines()[0]}); every row needs as many cells as the "
                         "header") from None
    table.columns = [str(c).strip() for c in table.columns]
    if table.empty and len(table.index) == 0:
        raise InputError(f"{what} {path} has a header but no data rows")
    if index_col is not None:
        table.index = table.index.astype(str).str.strip()
        duplicated = table.index[table.index.duplicated()].unique()
        if len(duplicated):
            row = int(np.flatnonzero(table.index.duplicated())[0]) + 2
            raise InputError(f"{what} {path}, line {row}: row name {duplicated[0]!r} appears "
                             "more than once; give each row once (average duplicates first)")
    return table


def numeric_columns(table: pd.DataFrame, columns, path, what: str = "table",
                    limit: float = VALUE_LIMIT, allow_missing: bool = True) -> pd.DataFrame:
    """Convert columns of a table read by :func:`read_user_table` to float, checking them.

    Parameters
    ----------
    table : pandas.DataFrame
    columns : sequence of str
        Columns that must hold numbers.
    path : path-like
        The file, for messages.
    what : str
        What the columns are (``"gene column"``), for messages.
    limit : float
        Largest accepted magnitude.
    allow_missing : bool
        Accept empty cells (NaN); otherwise they are an error.

    Returns
    -------
    pandas.DataFrame
        ``table[columns]`` as float64.

    Raises
    ------
    InputError
        At the first text cell, infinite or too-large value (or missing value), naming the
        file line (the header is line 1) and the column.
    """
    out = {}
    for column in columns:
        raw = table[column]
        values = pd.to_numeric(raw, errors="coerce")
        text = raw.notna() & values.isna()
        problems = [(text, "{value!r} is not a number; {what}s hold numbers only"
                           + (" (leave a missing value empty)" if allow_missing else ""))]
        big = values.notna() & ~(np.abs(values.to_numpy(dtype=float, na_value=0.0)) <= limit)
        problems.append((big, f"value {{value}} is not finite or beyond +-{limit:g}; check "
                              "the file and its units"))
        if not allow_missing:
            problems.append((raw.isna(), "the value is missing; every {what} needs a value"))
        for mask, template in problems:
            mask = np.asarray(mask, dtype=bool)
            if mask.any():
                row = int(np.flatnonzero(mask)[0])
                raise InputError(f"{path}, line {row + 2}, column {column!r}: "
                                 + template.format(value=raw.iloc[row], what=what))
        out[column] = values.astype(float)
    return pd.DataFrame(out, index=table.index)


def text_columns(table: pd.DataFrame, columns) -> list[str]:
    """Columns of ``columns`` in which no cell is a number (labels, not measurements)."""
    return [c for c in columns
            if table[c].notna().any() and pd.to_numeric(table[c], errors="coerce").isna().all()]


def read_name_list(path, what: str = "gene list") -> list[str]:
    """Read a text file with one name per line (blank lines skipped, duplicates once).

    Raises
    ------
    InputError
        Missing, empty or binary file.
    """
    path = Path(path)
    _head(path, what)
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        names = list(dict.fromkeys(line.strip() for line in handle if line.strip()))
    if not names:
        raise InputError(f"{what} {path} holds no names; give one name per line")
    return names


def close_names(name, available, n: int = 3) -> list[str]:
    """Names of ``available`` that ``name`` probably meant, best first.

    A case-insensitive exact match comes first (``apoe`` -> ``APOE``), then close
    spellings ignoring case.
    """
    available = [str(a) for a in available]
    by_upper = {}
    for candidate in available:
        by_upper.setdefault(candidate.upper(), []).append(candidate)
    key = str(name).upper()
    exact = by_upper.get(key, [])
    close = difflib.get_close_matches(key, list(by_upper), n=n, cutoff=0.6)
    found = exact + [c for k in close for c in by_upper[k] if c not in exact]
    return list(dict.fromkeys(found))[:n]


def _suggestion(value, allowed) -> str:
    """`` (did you mean 'x'?)`` for the allowed value closest to a misspelt string."""
    if not isinstance(value, str):
        return ""
    by_text = {str(a): a for a in allowed if a is not None}
    close = close_names(value, by_text, n=1)
    return f" (did you mean {by_text[close[0]]!r}?)" if close else ""


def check_choice(value, allowed, name: str, *, or_else: str | None = None, error=InputError):
    """Return ``value`` when it is one of ``allowed``; else raise one line that names the
    parameter, the allowed values, what was received and the closest allowed value.

    Parameters
    ----------
    value : object
    allowed : iterable
        The valid values (e.g. the keys of the registry dict that dispatches on them).
    name : str
        Parameter name used in the message.
    or_else : str, optional
        What else is accepted, in words (``"a NIfTI file"``); its check is the caller's.
    error : type
        Exception class (default :class:`~brainexpr.errors.InputError`).

    Examples
    --------
    >>> check_choice("krigin", ("kriging", "knn"), "model")
    Traceback (most recent call last):
    ...
    brainexpr.errors.InputError: model must be one of 'kriging', 'knn', got 'krigin' (did you mean 'kriging'?)
    """
    allowed = list(allowed)
    if value in allowed:
        return value
    shown = ", ".join(map(repr, allowed)) + (f" or {or_else}" if or_else else "")
    raise error(f"{name} must be one of {shown}, got {value!r}{_suggestion(value, allowed)}")


def check_choices(values, allowed, name: str) -> list:
    """Validate a non-empty list of values against ``allowed`` (as :func:`check_choice`).

    Returns
    -------
    list
        ``values`` as a list.
    """
    values, allowed = list(values), list(allowed)
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        hint = _suggestion(unknown[0], allowed) if unknown else ""
        raise InputError(f"{name} must be among {', '.join(map(repr, allowed))}, got "
                         f"{unknown or values}{hint}")
    return values


def describe_unknown(names, available, what: str, noun: str = "gene", limit: int = 5) -> str:
    """One-line message for names not in ``available``, with the closest names of each.

    ``"2 gene(s) not in the model: apoe (closest: APOE); XYZ1 (closest: none)"``.
    """
    names = list(names)
    hints = [f"{name} (closest: {', '.join(close_names(name, available)) or 'none'})"
             for name in names[:limit]]
    return (f"{len(names)} {noun}(s) not in {what}: {'; '.join(hints)}"
            + (" ..." if len(names) > limit else ""))
