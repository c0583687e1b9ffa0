"""Terminal tables and machine-readable output (CSV, JSON)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.errors import ConfigError, printable


def fmt_number(x: Any, digits: int = 1) -> str:
    """A number for a terminal cell: thousands separators, ``-`` for missing, ``never``
    for infinity."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float | np.floating):
        if math.isinf(x):
            return "never"
        return f"{x:,.{digits}f}"
    if isinstance(x, int | np.integer):
        return f"{int(x):,}"
    return printable(str(x))


def table(
    rows: Sequence[Sequence[Any] | None],
    headers: Sequence[str],
    *,
    title: str = "",
    digits: int | Sequence[int] = 1,
) -> str:
    """A plain-text table: text columns left-aligned, numbers right-aligned (with
    thousands separators; ``digits`` after the point, one for all or per column).
    A row of ``None`` becomes a separator line."""
    if isinstance(digits, int):
        digits = [digits] * len(headers)
    body = [r for r in rows if r is not None]
    text_col = [
        all(isinstance(r[i], str) for r in body if r[i] is not None) and bool(body)
        for i in range(len(headers))
    ]
    cells = [
        [fmt_number(v, d) for v, d in zip(r, digits, strict=True)] if r is not None else None
        for r in rows
    ]
    widths = [len(h) for h in headers]
    for r in cells:
        if r is not None:
            widths = [max(w, len(c)) for w, c in zip(widths, r, strict=True)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.ljust(w) if left else v.rjust(w)
            for v, w, left in zip(values, widths, text_col, strict=True)
        ]
        return "  ".join(parts).rstrip()

    sep = "  ".join("-" * w for w in widths)
    out = ["\n".join(map(printable, title.split("\n")))] if title else []
    out += [line(headers), sep]
    out += [sep if r is None else line(r) for r in cells]
    return "\n".join(out)


STATUSES = ("exact", "never", "at_most")
"""Values of a ``<column>_status`` column in a written table (:func:`for_file`):
``exact``, the number is the value; ``never``, the value is infinite (no rate
searched reaches it) and the number is missing (JSON ``null``, an empty CSV cell);
``at_most``, the number is an upper bound (the mildest rate searched already
reaches it)."""


def status_column(column: str) -> str:
    """The name of ``column``'s status column."""
    return f"{column}_status"


def for_file(
    frame: pd.DataFrame, at_most: Mapping[str, pd.Series | None] | None = None
) -> pd.DataFrame:
    """``frame`` as a file holds it: no infinities. Each column named in ``at_most``
    (those present) is written as a float with NaN where it was infinite, and gains
    ``<column>_status`` right after it (:data:`STATUSES`): ``never`` where infinite,
    ``at_most`` where the mask given for the column is true (``None``: it cannot be),
    ``exact`` elsewhere, missing where the number itself is missing. Any other
    numeric column holding an infinity has it as NaN too, with no status column:
    files keep one schema whatever the numbers (a rate reached with no weight kept is
    such an infinity). The frame in memory is left as it is."""
    at_most = {c: m for c, m in (at_most or {}).items() if c in frame.columns}
    numeric = frame.select_dtypes(include="number").columns
    infinite = [c for c in numeric if c not in at_most and np.isinf(frame[c]).any()]
    if not at_most and not infinite:
        return frame
    out: dict[str, pd.Series] = {}
    for column in frame.columns:
        values = frame[column]
        if column in infinite:
            out[column] = values.where(~np.isinf(values))
        elif column in at_most:
            x = values.astype(float)
            never = np.isinf(x)
            bound = at_most[column]
            bound = np.zeros(len(x), bool) if bound is None else bound.to_numpy(dtype=bool)
            status = np.where(never, "never", np.where(bound, "at_most", "exact")).astype(object)
            status[x.isna().to_numpy()] = None
            name = status_column(column)
            if name in frame.columns:
                raise ValueError(f"{name!r} is already a column")
            out[column] = x.where(~never)
            out[name] = pd.Series(status, index=frame.index, dtype=object)
        else:
            out[column] = values
    return pd.DataFrame(out, index=frame.index)


def breakeven_at_most(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """The status columns of a storage break-even table (rows of
    :class:`simulator.storage.BreakEven`), for :func:`for_file`: ``nonstructured_rate``
    and ``ratio`` are infinite ("never") where no non-structured rate stores in as
    few bits, and upper bounds where rate 1, every weight kept, the mildest that
    :func:`simulator.storage.storage_breakeven` tries, already does."""
    bound = frame["nonstructured_rate"] <= 1.0
    return {"nonstructured_rate": bound, "ratio": bound}


def _jsonable(x: Any) -> Any:
    """``x`` with numpy scalars as Python ones and every NaN or infinity as ``None``
    (standard JSON has neither)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        x = float(x)
        return x if math.isfinite(x) else None
    if x is pd.NA or x is pd.NaT:
        return None
    return x


@contextmanager
def _writing(path: Path):
    """Create the folder; turn any failure to write into one clear error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or e
        raise ConfigError(str(path), f"cannot write file ({reason})") from None


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write a standard JSON document: NaN and infinity as ``null`` (tables in it go
    through :func:`records`, which says where a null means "never")."""
    path = Path(path)
    text = json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n"
    with _writing(path):
        path.write_text(text, encoding="utf-8")
    return path


def _json_column(values: pd.Series) -> list:
    """A column's cells as Python values for :mod:`json` (floats exact, ``None`` for
    NaN and infinity)."""
    kind = values.dtype.kind
    if kind == "f":
        a = values.to_numpy(dtype=float)
        finite = np.isfinite(a)
        return a.tolist() if finite.all() else np.where(finite, a, None).tolist()
    if kind in "iub":
        return values.tolist()
    return [_jsonable(v) for v in values.tolist()]


def write_frame_json(
    path: str | Path, frame: pd.DataFrame, at_most: Mapping[str, pd.Series | None] | None = None
) -> Path:
    """Write a table as a JSON list of row objects, one row a line, so that
    ``pd.read_json(path)`` gives the table back: numbers as JSON numbers (floats to
    their last digit), no infinities (:func:`for_file`, with ``at_most`` naming the
    columns that carry a status)."""
    path = Path(path)
    frame = for_file(frame, at_most)
    names = [str(c) for c in frame.columns]
    columns = [_json_column(frame.iloc[:, i]) for i in range(frame.shape[1])]
    encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    lines = [encode(dict(zip(names, row, strict=True))) for row in zip(*columns, strict=True)]
    text = "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"
    with _writing(path):
        path.write_text(text, encoding="utf-8")
    return path


def write_csv(
    path: str | Path, frame: pd.DataFrame, at_most: Mapping[str, pd.Series | None] | None = None
) -> Path:
    """Write a table as CSV without its index and with no infinities (:func:`for_file`,
    with ``at_most`` naming the columns that carry a status): a missing number is an
    empty cell, so ``pd.read_csv`` reads numeric columns as numbers."""
    path = Path(path)
    frame = for_file(frame, at_most)
    with _writing(path):
        frame.to_csv(path, index=False)
    return path


def records(
    frame: pd.DataFrame, at_most: Mapping[str, pd.Series | None] | None = None
) -> list[dict[str, Any]]:
    """A table's rows as plain dicts for :func:`write_json`, with no infinities
    (:func:`for_file`, with ``at_most`` naming the columns that carry a status)."""
    return for_file(frame, at_most).to_dict(orient="records")
