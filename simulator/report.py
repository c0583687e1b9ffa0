"""Terminal tables and machine-readable output (CSV, JSON)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
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


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        x = float(x)
        return None if math.isnan(x) else ("inf" if math.isinf(x) else x)
    if isinstance(x, np.bool_):
        return bool(x)
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
    """Write a JSON document (infinity as the string "inf", NaN as null)."""
    path = Path(path)
    with _writing(path):
        path.write_text(json.dumps(_jsonable(payload), indent=2) + "\n", encoding="utf-8")
    return path


def write_frame_json(path: str | Path, name: str, frame: pd.DataFrame) -> Path:
    """Write ``{name: [rows]}`` quickly for large tables (infinity as "inf", NaN null)."""
    path = Path(path)
    out = frame.copy()
    for col in out.select_dtypes(include="number").columns:
        if np.isinf(out[col]).any():
            out[col] = out[col].astype(object).where(~np.isinf(out[col].astype(float)), "inf")
    with _writing(path):
        body = out.to_json(orient="records", double_precision=15)
        path.write_text(f'{{"{name}": {body}}}\n', encoding="utf-8")
    return path


def write_csv(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write a DataFrame as CSV without its index."""
    path = Path(path)
    with _writing(path):
        frame.to_csv(path, index=False)
    return path


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as plain dicts."""
    return frame.to_dict(orient="records")
