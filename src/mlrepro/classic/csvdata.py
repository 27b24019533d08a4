"""Numeric CSV files with a header row -> arrays for the classic estimators (and the CLI)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from mlrepro.errors import InputError


def read_csv(path, *, target: str | None = None, columns=None):
    """Read a numeric CSV whose first row names the columns.

    Args:
        path: the file.
        target: column to return as y (None: no y).
        columns: feature columns to keep, in this order (None: every column but `target`).

    Returns (X, y, feature_names): X float64 of shape (n_rows, n_features), y float64 of shape
    (n_rows,) or None. Blank lines are skipped. Every problem is an InputError naming the file:
    missing or empty file, unknown column, a cell that is not a finite number (with its row and
    column), or a row with the wrong number of fields.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = list(csv.reader(f))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a CSV file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    except csv.Error as err:
        raise InputError(f"{path}: malformed CSV ({err})") from None

    numbered = [(i, row) for i, row in enumerate(lines, start=1) if any(c.strip() for c in row)]
    if not numbered:
        raise InputError(f"{path}: empty file; expected a header row naming the columns")
    _, header = numbered[0]
    names = [h.strip() for h in header]
    if any(not h for h in names):
        raise InputError(f"{path}: header has an empty column name (column {names.index('') + 1})")
    duplicates = sorted({h for h in names if names.count(h) > 1})
    if duplicates:
        raise InputError(f"{path}: header repeats column name(s) {', '.join(duplicates)}")
    available = ", ".join(names)

    if target is not None and target not in names:
        raise InputError(f"{path}: unknown target column {target!r}; available: {available}")
    if columns is None:
        features = [h for h in names if h != target]
    else:
        if isinstance(columns, str):
            columns = [columns]
        features = list(columns)
        for name in features:
            if name not in names:
                raise InputError(f"{path}: unknown column {name!r}; available: {available}")
        if target in features:
            raise InputError(f"{path}: target column {target!r} is also listed as a feature")
    if not features:
        raise InputError(f"{path}: no feature columns left (header: {available})")

    data = numbered[1:]
    if not data:
        raise InputError(f"{path}: header only, no data rows")
    # Only the columns used are parsed: a text column left out with `columns` is no error.
    used = [names.index(h) for h in features] + (
        [names.index(target)] if target is not None else []
    )
    values = np.empty((len(data), len(names)), dtype=np.float64)
    for r, (line_no, row) in enumerate(data, start=1):
        if len(row) != len(names):
            raise InputError(
                f"{path}: row {r} (line {line_no}) has {len(row)} fields, expected {len(names)} "
                "as in the header"
            )
        for c in used:
            cell = row[c]
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                shown = repr(cell.strip()) if cell.strip() else "an empty cell"
                raise InputError(
                    f"{path}: row {r} (line {line_no}), column {names[c]!r}: {shown} is not a "
                    "finite number"
                )
            values[r - 1, c] = value

    index = {h: i for i, h in enumerate(names)}
    X = np.ascontiguousarray(values[:, [index[h] for h in features]])
    y = values[:, index[target]].copy() if target is not None else None
    return X, y, features
