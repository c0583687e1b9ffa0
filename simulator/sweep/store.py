"""A sweep's folder: chunks of finished points, written whole or not at all, and the
table they make.

::

    OUT/sweep.json                   what the folder holds: the spec and its digest,
                                     the format, the columns and their types
    OUT/chunks/chunk-<hash>.parquet  the rows of a batch of points (or .csv)
    OUT/chunks/chunk-<hash>.json     its manifest: the hashes of its points, its rows,
                                     the SHA-256 of the data file, the spec and code
    OUT/results.parquet              every row in point order (or results.csv)

A chunk's data file is written under a temporary name and renamed into place, then
its manifest the same way: a chunk is finished when its manifest vouches for its data
file, and a killed writer leaves at most a temporary file or a data file without a
manifest, both removed on resume. A resumed run skips the points of every finished
chunk and ends with exactly the rows of an uninterrupted one: the table is rebuilt
from the chunks in point order, each point once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from simulator.errors import ConfigError
from simulator.files import write_via
from simulator.studyparts import sha256_file, source_hash
from simulator.sweep.evaluate import dtypes
from simulator.sweep.spec import Point, SweepSpec

SCHEMA = 1
"""Version of the folder's layout and manifests."""
FORMATS = ("parquet", "csv")
EXTRA = "pyarrow"
"""What writes Parquet: a core dependency, missing only where it was removed or has no
wheels for the platform."""


def parquet_available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def check_format(fmt: str) -> None:
    """A :class:`ConfigError` when ``fmt`` cannot be written here."""
    if fmt not in FORMATS:
        raise ConfigError("--format", f"expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "parquet" and not parquet_available():
        raise ConfigError(
            "--format parquet",
            f"needs pyarrow, which is not installed here: pip install {EXTRA} "
            "(or write CSV with --format csv)",
        )


def code_hash() -> str:
    """A hash of prunesim's own source files: chunks of other code are not reused."""
    return source_hash()[:16]


@dataclass(frozen=True, kw_only=True)
class ChunkWriter:
    """Writes finished batches into a sweep folder's ``chunks/`` (picklable: worker
    processes and Dask workers write their own chunks)."""

    folder: str
    fmt: str
    spec_digest: str
    code: str
    dtypes: tuple[tuple[str, str], ...]

    def write(self, frame: pd.DataFrame, points: Sequence[Point]) -> Path:
        """Write one batch's rows: the data file, then its manifest."""
        keys = [p.key for p in points]
        name = "chunk-" + hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
        chunks = Path(self.folder) / "chunks"
        data = chunks / f"{name}.{self.fmt}"
        write_via(data, lambda tmp: write_table(frame, tmp, self.fmt))
        manifest = {
            "schema": SCHEMA,
            "spec": self.spec_digest,
            "code": self.code,
            "file": data.name,
            "rows": len(frame),
            "sha256": sha256_file(data),
            "points": keys,
        }
        text = json.dumps(manifest, indent=0) + "\n"
        return write_via(chunks / f"{name}.json", lambda tmp: tmp.write_text(text))

    def read(self, path: Path) -> pd.DataFrame:
        return read_table(path, dict(self.dtypes))


def write_table(frame: pd.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        frame.to_parquet(path, index=False, engine="pyarrow")
    else:
        frame.to_csv(path, index=False)


def read_table(path: Path, types: dict[str, str]) -> pd.DataFrame:
    """A table written by :func:`write_table`, with the given column types (CSV keeps
    an empty text empty, and reads an empty number as NaN)."""
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path, engine="pyarrow")
    else:
        numeric = [c for c, t in types.items() if t not in ("string", "bool")]
        frame = pd.read_csv(
            path,
            dtype={c: ("string" if t == "string" else t) for c, t in types.items() if t != "bool"},
            keep_default_na=False,
            na_values={c: [""] for c in numeric},
        )
    if list(frame.columns) != list(types):
        raise ValueError(f"columns {list(frame.columns)} are not the sweep's")
    return frame.astype(types)


class SweepFolder:
    """A sweep's output folder (see the module docstring)."""

    def __init__(self, folder: str | Path, spec: SweepSpec, fmt: str):
        self.path = Path(folder)
        self.spec, self.fmt = spec, fmt
        self.types = dtypes(spec)
        self.notes: list[str] = []

    @property
    def results(self) -> Path:
        return self.path / f"results.{self.fmt}"

    def writer(self) -> ChunkWriter:
        return ChunkWriter(
            folder=str(self.path),
            fmt=self.fmt,
            spec_digest=self.spec.digest(),
            code=code_hash(),
            dtypes=tuple(self.types.items()),
        )

    def _about(self) -> dict:
        return {
            "schema": SCHEMA,
            "name": self.spec.name,
            "spec": self.spec.digest(),
            "source": self.spec.source,
            "format": self.fmt,
            "points": self.spec.count(),
            "variants": list(self.spec.all_variants),
            "parameters": list(self.spec.parameters),
            "columns": self.types,
            "plots": [dataclasses.asdict(p) for p in self.spec.plots],
        }

    def open(self, *, resume: bool, force: bool) -> None:
        """Claim the folder for this sweep. A folder holding a sweep is continued only
        with ``resume`` and the same spec and format, started over only with
        ``force``; anything else is a :class:`ConfigError` saying which."""
        about = self.path / "sweep.json"
        if about.exists() and not force:
            try:
                old = json.loads(about.read_text())
                same = old.get("spec") == self.spec.digest() and old.get("format") == self.fmt
            except (OSError, ValueError, AttributeError):
                old, same = {}, False
            if not resume:
                raise ConfigError(
                    str(self.path),
                    "holds a sweep already: --resume continues it, --force starts it over",
                )
            if not same:
                old = old if isinstance(old, dict) else {}
                what = (
                    f"format {old.get('format')}, not {self.fmt}"
                    if old.get("spec") == self.spec.digest()
                    else f"another spec ({old.get('source', '?')})"
                )
                raise ConfigError(
                    str(self.path),
                    f"holds a sweep of {what}: resume it with that, or start over with --force",
                )
        elif self.path.exists() and any(self.path.iterdir()) and not force and not about.exists():
            raise ConfigError(
                str(self.path), "is not empty and holds no sweep: choose another --out, or --force"
            )
        if force:
            shutil.rmtree(self.path / "chunks", ignore_errors=True)
            for old_results in self.path.glob("results.*"):
                old_results.unlink()
        text = json.dumps(self._about(), indent=1) + "\n"
        write_via(about, lambda tmp: tmp.write_text(text))
        (self.path / "chunks").mkdir(parents=True, exist_ok=True)

    def finished(self) -> dict[str, Path]:
        """Hash of every finished point -> its chunk's data file. Chunks that cannot be
        trusted (no manifest, damaged, of another spec or code) are removed, each with
        a note."""
        chunks = self.path / "chunks"
        done: dict[str, Path] = {}
        vouched: set[str] = set()
        writer = self.writer()
        for manifest in sorted(chunks.glob("chunk-*.json")):
            why, keys, data = self._check(manifest, writer)
            if why:
                self.notes.append(f"{manifest.stem}: {why}; its points are recomputed")
                manifest.unlink(missing_ok=True)
                if data is not None:
                    data.unlink(missing_ok=True)
                continue
            vouched.add(data.name)
            for k in keys:
                done.setdefault(k, data)
        for stray in chunks.iterdir():
            if stray.name.startswith(".") or (
                stray.suffix != ".json" and stray.name not in vouched
            ):
                stray.unlink()  # interrupted while written
        return done

    def _check(self, manifest: Path, writer: ChunkWriter) -> tuple[str, list[str], Path | None]:
        try:
            m = json.loads(manifest.read_text())
            data = manifest.with_name(str(m["file"]))
            if data.parent != manifest.parent:
                return "names a file outside the folder", [], None
            if m.get("schema") != SCHEMA:
                return f"format {m.get('schema')!r}", [], data
            if m.get("spec") != writer.spec_digest:
                return "belongs to another spec", [], data
            if m.get("code") != writer.code:
                return "was computed by other code", [], data
            if not data.is_file() or sha256_file(data) != m.get("sha256"):
                return "its data file is missing or damaged", [], data
            keys = m["points"]
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                return "lists no points", [], data
            return "", keys, data
        except (OSError, ValueError, KeyError, TypeError) as e:
            return f"cannot be read ({type(e).__name__})", [], None

    def combine(self, points: Sequence[Point]) -> pd.DataFrame:
        """Every point's rows from the chunks, in point order (a point listed twice
        gets its rows twice, each with its own index), written to ``results``."""
        done = self.finished()
        missing = [p.key for p in points if p.key not in done]
        if missing:
            raise ConfigError(str(self.path), f"{len(missing)} points have no finished chunk")
        by_file: dict[Path, pd.DataFrame] = {}
        for path in dict.fromkeys(done[p.key] for p in points):
            by_file[path] = read_table(path, self.types)
        rows = pd.concat(by_file.values(), ignore_index=True)
        rows = rows.drop_duplicates(["point", "variant"]).set_index(["point", "variant"])
        order = pd.MultiIndex.from_tuples(
            [(p.key, v) for p in points for v in self.spec.all_variants], names=["point", "variant"]
        )
        table = rows.loc[order].reset_index()
        table["index"] = [p.index for p in points for _ in self.spec.all_variants]
        table = table[list(self.types)].astype(self.types)
        write_via(self.results, lambda tmp: write_table(table, tmp, self.fmt))
        return table
