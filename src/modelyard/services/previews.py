"""Previews of artifacts: the head of a file read and decoded for the portal to show.

Only the start of a file is read, so a preview costs the same for a 1 KB file as for a 10 GB
one: text up to ``TEXT_LIMIT`` bytes, the first ``ROW_LIMIT`` rows of a table.
"""

from __future__ import annotations

import codecs
import io
import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from modelyard.artifacts.base import ArtifactStore, open_artifact
from modelyard.floats import reads_as_number
from modelyard.metadata.store import Store
from modelyard.schemas import ArtifactPublic
from modelyard.services.artifacts import get_artifact

TEXT_LIMIT = 64 * 1024
ROW_LIMIT = 100
COLUMN_LIMIT = 100
CELL_LIMIT = 1000
# A CSV file is read to its end to count its rows only up to this size.
CSV_COUNT_LIMIT = 64 * 1024 * 1024

PreviewKind = Literal["text", "json", "table", "image", "none"]

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/svg+xml", "image/webp"})
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"})
CSV_TYPES = frozenset({"text/csv", "text/tab-separated-values", "application/csv"})
CSV_EXTENSIONS = frozenset({".csv", ".tsv"})
PARQUET_TYPES = frozenset(
    {"application/vnd.apache.parquet", "application/x-parquet", "application/parquet"}
)
TEXT_TYPES = frozenset(
    {
        "application/x-yaml",
        "application/yaml",
        "application/xml",
        "application/toml",
        "application/javascript",
        "application/x-ndjson",
        "application/jsonl",
        "application/x-sh",
        "application/sql",
    }
)
TEXT_EXTENSIONS = frozenset(
    {".txt", ".log", ".md", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".py", ".jsonl", ".sql"}
)


@dataclass(slots=True)
class Preview:
    """What the preview of one artifact shows; ``note`` says why it shows less than asked."""

    artifact: ArtifactPublic
    kind: PreviewKind
    text: str = ""
    shown_bytes: int = 0
    truncated: bool = False
    columns: list[str] = field(default_factory=list)
    column_types: list[str] = field(default_factory=list)
    total_columns: int = 0
    rows: list[list[str | None]] = field(default_factory=list)
    numeric: list[bool] = field(default_factory=list)  # per column: right-aligned numbers
    rounded_to: int | None = None  # significant digits floats are shown to, when any are
    total_rows: int | None = None
    format: str = ""
    note: str = ""


def preview_kind(media_type: str, path: str) -> str:
    """How to show an artifact: image, parquet, csv, json, text or none."""
    media = media_type.split(";")[0].strip().lower()
    ext = PurePosixPath(path).suffix.lower()
    if media in IMAGE_TYPES or (media == "application/octet-stream" and ext in IMAGE_EXTENSIONS):
        return "image"
    if media in PARQUET_TYPES or ext == ".parquet":
        return "parquet"
    if media in CSV_TYPES or ext in CSV_EXTENSIONS:
        return "csv"
    if media == "application/json" or media.endswith("+json") or ext == ".json":
        return "json"
    if media.startswith("text/") or media in TEXT_TYPES or ext in TEXT_EXTENSIONS:
        return "text"
    return "none"


@dataclass(frozen=True, slots=True)
class _File:
    """The artifact's content, read in ranges from its store."""

    files: ArtifactStore
    run_id: str
    path: str
    size: int

    def read(self, start: int, length: int) -> bytes:
        return self.files.open_range(self.run_id, self.path, start, length)

    def open(self) -> io.BufferedReader:
        return open_artifact(self.files, self.run_id, self.path, size=self.size)


def preview_artifact(store: Store, files: ArtifactStore, *, run_id: str, path: str) -> Preview:
    """The artifact's metadata and a preview of its head; NotFound when it is missing."""
    meta = get_artifact(store, run_id=run_id, path=path)
    file = _File(files, run_id, meta.path, meta.size)
    kind = preview_kind(meta.media_type, meta.path)
    if kind == "image":
        return Preview(meta, "image")
    if kind == "parquet":
        return _parquet(meta, file)
    if kind == "csv":
        return _csv(meta, file)
    if kind == "json":
        return _json(meta, file)
    if kind == "text":
        return _text(meta, file)
    return Preview(meta, "none")


def _head(file: _File, limit: int) -> tuple[str, int, bool]:
    """The file's first ``limit`` bytes as text, with how many bytes that is and whether
    the file goes on; a character cut in half at the limit is left out, not garbled."""
    data = file.read(0, limit + 1)
    truncated = len(data) > limit
    data = data[:limit]
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = decoder.decode(data, final=not truncated)
    return text, len(data), truncated


def _text(meta: ArtifactPublic, file: _File, note: str = "") -> Preview:
    text, shown, truncated = _head(file, TEXT_LIMIT)
    if "\x00" in text:
        return Preview(meta, "none", note="The file holds binary data, not text.")
    return Preview(meta, "text", text=text, shown_bytes=shown, truncated=truncated, note=note)


def _json(meta: ArtifactPublic, file: _File) -> Preview:
    if meta.size > TEXT_LIMIT:
        return _text(meta, file, note="Too large to pretty-print; shown as it was written.")
    raw = file.read(0, meta.size)
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return _text(meta, file, note=f"This is not valid JSON ({exc}); shown as text.")
    pretty = json.dumps(value, indent=2, ensure_ascii=False)
    return Preview(meta, "json", text=pretty, shown_bytes=len(raw))


def _cell(value: Any) -> str | None:
    """One table cell as text; a very long one ends with a visible ellipsis."""
    if value is None:
        return None
    if isinstance(value, bytes):
        text = value.hex()
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    return text if len(text) <= CELL_LIMIT else text[:CELL_LIMIT] + "…"


FLOAT_DIGITS = 6  # significant digits of a stored float in a table preview


def _float_cell(value: float | None) -> str | None:
    """A stored float as people read it: 0.30000000000000004 is 0.3, 1234567.891 is 1.23457e+06."""
    if value is None:
        return None
    return f"{value:.{FLOAT_DIGITS}g}"


def _column_cells(column: pa.ChunkedArray) -> list[str | None]:
    if pa.types.is_floating(column.type):
        return [_float_cell(v) for v in column.to_pylist()]
    return [_cell(v) for v in column.to_pylist()]


def _rows(table: pa.Table) -> list[list[str | None]]:
    columns = [_column_cells(col) for col in table.columns]
    return [list(row) for row in zip(*columns, strict=True)]


def _numeric(column: pa.ChunkedArray) -> bool:
    """A column of numbers: typed as one, or (CSV, read as text) every cell shown reads as one."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return True
    if not pa.types.is_string(kind):
        return False
    cells = [v for v in column.to_pylist() if v not in (None, "")]
    return bool(cells) and all(reads_as_number(v) for v in cells)


def _table_preview(meta: ArtifactPublic, table: pa.Table, fmt: str, types: list[str]) -> Preview:
    total_columns = table.num_columns
    shown = table.select(list(range(min(total_columns, COLUMN_LIMIT)))).slice(0, ROW_LIMIT)
    return Preview(
        meta,
        "table",
        columns=list(shown.column_names),
        column_types=types[:COLUMN_LIMIT],
        total_columns=total_columns,
        rows=_rows(shown),
        numeric=[_numeric(col) for col in shown.columns],
        rounded_to=FLOAT_DIGITS
        if any(pa.types.is_floating(c.type) for c in shown.columns)
        else None,
        format=fmt,
    )


def _csv(meta: ArtifactPublic, file: _File) -> Preview:
    """The first rows of a CSV file, each cell exactly as written (no number re-formatting).
    A first row of numbers only is data, not a header (e.g. ``numpy.savetxt`` output)."""
    delimiter = "\t" if PurePosixPath(meta.path).suffix.lower() == ".tsv" else ","
    parse = pacsv.ParseOptions(delimiter=delimiter)
    try:
        with file.open() as f, pacsv.open_csv(f, parse_options=parse) as sniff:
            schema = sniff.schema  # types inferred from the first block
        header = not all(reads_as_number(name) for name in schema.names)
        generated = [f"f{i}" for i in range(len(schema.names))]  # duplicate names are legal
        source = file.open()
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=generated, skip_rows=int(header)),
            parse_options=parse,
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(generated, pa.string())
            ),
        )
        with source, reader:
            batches, count, complete = _read_rows(reader, meta.size)
    except (pa.ArrowException, OSError) as exc:
        return _text(meta, file, note=f"This could not be read as CSV ({exc}); shown as text.")
    names = schema.names if header else [f"column {i + 1}" for i in range(len(schema.names))]
    table = pa.Table.from_batches(batches, schema=reader.schema).rename_columns(names)
    preview = _table_preview(meta, table, "CSV", [str(t) for t in schema.types])
    preview.total_rows = count if complete else None
    if not header:
        preview.note = "The first row holds only numbers, so it is shown as data, not as a header."
    return preview


def _read_rows(reader: Any, size: int) -> tuple[list[pa.RecordBatch], int, bool]:
    """Batches holding the first ROW_LIMIT rows, and the row count: exact when the whole
    file was read (complete), else a lower bound."""
    batches: list[pa.RecordBatch] = []
    kept = count = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return batches, count, True
        except pa.ArrowInvalid:
            if kept < ROW_LIMIT:
                raise
            return batches, count, False  # a bad row past the head: show the head
        if kept < ROW_LIMIT:
            batches.append(batch.slice(0, ROW_LIMIT - kept))
            kept += batches[-1].num_rows
        count += batch.num_rows
        if count > ROW_LIMIT and size > CSV_COUNT_LIMIT:
            return batches, count, False


def _parquet(meta: ArtifactPublic, file: _File) -> Preview:
    try:
        with file.open() as source, pq.ParquetFile(source) as parquet:
            schema = parquet.schema_arrow
            head = next(parquet.iter_batches(batch_size=ROW_LIMIT), None)
            total = parquet.metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        return Preview(meta, "none", note=f"This could not be read as Parquet ({exc}).")
    table = schema.empty_table() if head is None else pa.Table.from_batches([head], schema=schema)
    preview = _table_preview(meta, table, "Parquet", [str(t) for t in schema.types])
    preview.total_rows = total
    return preview
