"""File-format parsers behind :func:`ganmm.data.load`: CSV/TSV, NPY, NPZ, IDX.

Every parser takes the file's bytes and returns a :class:`Table` of raw arrays
(no scaling, no label encoding); :mod:`ganmm.data` turns a table into a
``Dataset``. Nothing here trusts a header: sizes are checked against the
:class:`Limits` and against the bytes actually present before any array is
allocated, user files are never unpickled, and every malformed input ends in a
:class:`~ganmm.errors.DataError` whose message says what to change.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from ganmm.errors import DataError


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what a loader accepts, checked before allocating."""

    max_rows: int = 200_000
    """most data rows (samples) a file may hold"""
    max_features: int = 10_000
    """most features (columns, or pixels per image) a file may hold"""
    max_bytes: int = 512 * 2**20
    """most bytes a file may hold once decompressed"""
    max_cells: int = 20_000_000
    """most cells (rows x columns) a text table may hold: parsing costs about 40
    bytes a cell, so 20 million cells stay under a gigabyte (e.g. 25,000 rows of
    784 pixels + a label)"""


DEFAULT_LIMITS = Limits()

ACCEPTED_TYPES = (
    ".csv, .tsv, .txt (comma-, tab- or semicolon-separated text), "
    ".npy, .npz (NumPy arrays), .idx or *-ubyte (MNIST IDX), each optionally .gz"
)

# Errors that the standard library, NumPy and pandas raise on malformed input.
# The loaders turn these (and only these) into DataError at their boundary.
MALFORMED_INPUT_ERRORS = (
    ValueError, TypeError, IndexError, KeyError, OverflowError, EOFError, OSError,
    RuntimeError, NotImplementedError, MemoryError, UnicodeError, struct.error,
    zlib.error, zipfile.BadZipFile, csv.Error, pd.errors.ParserError,
    pd.errors.EmptyDataError,
)


class Table(NamedTuple):
    """Raw arrays read from one file, before validation and scaling."""

    X: np.ndarray
    """(n, d) numeric features, images already flattened to h*w"""
    labels: np.ndarray | None
    """(n,) raw label values (numbers or strings), or None"""
    feature_names: tuple[str, ...] | None
    """column names when the file has them, else None"""
    image_shape: tuple[int, int] | None
    """(h, w) when the file holds images, else None"""


def file_format(filename: str) -> str:
    """Return "csv", "npy", "npz" or "idx" for a file name (".gz" ignored)."""
    name = filename.lower().strip()
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    if name.endswith(".npy"):
        return "npy"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".idx") or "ubyte" in name:
        return "idx"
    raise DataError(
        f"cannot tell the type of {filename!r} from its name; "
        f"rename it with one of the accepted types: {ACCEPTED_TYPES}"
    )


def check_size(n_rows: int, n_features: int, limits: Limits) -> None:
    """Raise DataError if a shape exceeds the row or feature limit."""
    if n_rows > limits.max_rows:
        raise DataError(
            f"the data has {n_rows:,} rows but at most {limits.max_rows:,} are "
            f"accepted (Limits.max_rows); use a sample of the rows or raise the limit"
        )
    if n_features > limits.max_features:
        raise DataError(
            f"the data has {n_features:,} features but at most {limits.max_features:,} "
            f"are accepted (Limits.max_features); reduce the features or raise the limit"
        )


def maybe_gunzip(data: bytes, limits: Limits) -> bytes:
    """Decompress gzip data (recognised by its magic bytes) with a size cap.

    The gzip header's size field is never trusted: at most
    ``limits.max_bytes + 1`` bytes of output are produced, and more is an error.
    """
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = read_at_most(stream, limits.max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"the gzip data could not be decompressed ({exc}); "
            f"the file may be truncated or damaged, so download or export it again"
        ) from exc
    if len(out) > limits.max_bytes:
        raise DataError(
            f"the decompressed size exceeds the limit of {limits.max_bytes:,} bytes "
            f"(Limits.max_bytes); use a smaller file or raise the limit"
        )
    return out


_PIECE = 2**20


def read_at_most(stream: io.BufferedIOBase, limit: int) -> bytes:
    """Read up to ``limit`` bytes from a binary stream, one MiB at a time.

    ``stream.read(limit)`` would reserve the whole limit (512 MiB by default)
    up front, even for a file of a few bytes; this keeps memory in proportion
    to the bytes actually there.
    """
    out = io.BytesIO()
    while (left := limit - out.tell()) > 0:
        piece = stream.read(min(left, _PIECE))
        if not piece:
            break
        out.write(piece)
    return out.getvalue()


# --------------------------------------------------------------------------- #
# IDX (the MNIST format)
# --------------------------------------------------------------------------- #

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx_array(data: bytes, limits: Limits) -> np.ndarray:
    """Parse one IDX file into an array, checking its header against the bytes."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(
            "this is not an IDX file: it should start with two zero bytes, a type "
            "code and the number of dimensions; choose an MNIST-format (*-ubyte) file"
        )
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise DataError(
            f"the IDX header has an unknown type code 0x{code:02X}; the file is damaged "
            f"or not IDX, so download it again"
        )
    if ndim == 0 or len(data) < 4 + 4 * ndim:
        raise DataError(
            "the IDX header is truncated or declares no dimensions; "
            "the file is damaged, so download it again"
        )
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    held = len(data) - 4 - 4 * ndim
    if expected != held:
        raise DataError(
            f"the IDX header says {'x'.join(map(str, dims))} ({expected:,} bytes) but "
            f"the file holds {held:,} bytes; the file is truncated or damaged, "
            f"so download it again"
        )
    check_size(dims[0], math.prod(dims[1:]), limits)
    return np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)


def parse_idx(data: bytes, limits: Limits) -> Table:
    """Parse an IDX features file: 3-D is images, 2-D a table, 1-D one feature."""
    arr = read_idx_array(data, limits)
    return _table_from_array(arr, "the IDX file")


# --------------------------------------------------------------------------- #
# NPY and NPZ
# --------------------------------------------------------------------------- #

def read_npy_array(data: bytes, limits: Limits, *, allow_strings: bool = False) -> np.ndarray:
    """Parse one .npy file without unpickling, checking its header first."""
    if data[:1] == b"\x80":
        raise DataError(
            "this file is a Python pickle, not a NumPy array; pickled/object arrays "
            "are not accepted, so save it with numpy.save(path, array, allow_pickle=False)"
        )
    if data[:4] == b"PK\x03\x04":
        raise DataError(
            "this file is a zip archive, not a single .npy array; "
            "rename it to .npz if it was written by numpy.savez"
        )
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except Exception as exc:  # noqa: BLE001 - numpy parses the header with Python's
        # tokenizer and ast, which raise SyntaxError, TokenError, ... on garbage
        raise DataError(
            f"this is not a readable .npy file ({exc}); save the array with numpy.save"
        ) from exc
    if dtype.hasobject:
        raise DataError(
            "the array holds Python objects; pickled/object arrays are not accepted, "
            "so convert it to numbers (e.g. array.astype(float)) before saving"
        )
    kinds = "biuf" + ("US" if allow_strings else "")
    if dtype.kind not in kinds or dtype.names is not None or dtype.subdtype is not None:
        raise DataError(
            f"the array has type {dtype}, which is not plain numbers; "
            f"convert it with array.astype(float) before saving"
        )
    if any(dim < 0 for dim in shape):
        raise DataError("the .npy header declares a negative size; save the array again")
    expected = math.prod(shape) * dtype.itemsize
    held = len(data) - stream.tell()
    if expected > held:
        raise DataError(
            f"the .npy header says {'x'.join(map(str, shape)) or 'a scalar'} "
            f"({expected:,} bytes) but the file holds {held:,} bytes; "
            f"the file is truncated, so save or download it again"
        )
    if len(shape) >= 1:
        check_size(shape[0], math.prod(shape[1:]), limits)
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except MALFORMED_INPUT_ERRORS as exc:
        raise DataError(f"the .npy file could not be read ({exc}); save it again") from exc


def parse_npy(data: bytes, limits: Limits) -> Table:
    """Parse a .npy features array: (n, d) table or (n, h, w) images."""
    return _table_from_array(read_npy_array(data, limits), "the .npy array")


def parse_npz(data: bytes, limits: Limits) -> Table:
    """Parse a .npz archive holding ``X`` and optionally ``y``.

    Member sizes declared in the zip directory are checked against
    ``limits.max_bytes`` before anything is decompressed.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {info.filename: info for info in archive.infolist()}
    except MALFORMED_INPUT_ERRORS as exc:
        raise DataError(
            f"this is not a readable .npz (zip) archive ({exc}); "
            f"save the arrays with numpy.savez(path, X=features, y=labels)"
        ) from exc
    if "X.npy" not in members:
        found = ", ".join(sorted(n.removesuffix(".npy") for n in members)) or "none"
        raise DataError(
            f"the .npz archive has no array named 'X' (found: {found}); "
            f"save the features with numpy.savez(path, X=features, y=labels)"
        )
    wanted = [key for key in ("X", "y") if f"{key}.npy" in members]
    declared = sum(members[f"{key}.npy"].file_size for key in wanted)
    if declared > limits.max_bytes:
        raise DataError(
            f"the .npz arrays declare {declared:,} bytes once decompressed, more than "
            f"the limit of {limits.max_bytes:,} bytes (Limits.max_bytes); "
            f"use a smaller file or raise the limit"
        )
    arrays = {}
    for key in wanted:
        try:
            with archive.open(members[f"{key}.npy"]) as member:
                raw = member.read(limits.max_bytes + 1)
        except MALFORMED_INPUT_ERRORS as exc:
            raise DataError(
                f"the array {key!r} in the .npz archive could not be decompressed ({exc}); "
                f"save the archive again"
            ) from exc
        if len(raw) > limits.max_bytes:
            raise DataError(
                f"the decompressed size exceeds the limit of {limits.max_bytes:,} bytes "
                f"(Limits.max_bytes); use a smaller file or raise the limit"
            )
        arrays[key] = read_npy_array(raw, limits, allow_strings=(key == "y"))
    table = _table_from_array(arrays["X"], "the array 'X'")
    if "y" in arrays:
        table = table._replace(labels=labels_vector(arrays["y"], "the array 'y'"))
    return table


# --------------------------------------------------------------------------- #
# Separate labels files (IDX or NPY)
# --------------------------------------------------------------------------- #

def parse_labels(data: bytes, limits: Limits) -> np.ndarray:
    """Parse a labels file given apart from the features (IDX or .npy, maybe gz)."""
    data = maybe_gunzip(data, limits)
    if data[:6] == b"\x93NUMPY":
        return labels_vector(read_npy_array(data, limits, allow_strings=True), "the labels file")
    return labels_vector(read_idx_array(data, limits), "the labels file")


def labels_vector(arr: np.ndarray, what: str) -> np.ndarray:
    """Check that labels form a 1-D vector (an (n, 1) column is accepted)."""
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(
            f"{what} should be 1-D (one label per row) but has shape "
            f"{'x'.join(map(str, arr.shape))}; choose the labels file that goes with the data"
        )
    return arr


def _table_from_array(arr: np.ndarray, what: str) -> Table:
    """Shape an array into a table: (n,) -> (n, 1); (n, h, w) -> images."""
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{what} has type {arr.dtype}, not numbers; convert it to numbers")
    if arr.ndim == 1:
        return Table(arr.reshape(-1, 1), None, None, None)
    if arr.ndim == 2:
        return Table(arr, None, None, _image_shape(arr, None) if arr.dtype.kind in "biuf" else None)
    if arr.ndim == 3:
        n, h, w = arr.shape
        return Table(arr.reshape(n, h * w), None, None, (h, w))
    raise DataError(
        f"{what} has shape {'x'.join(map(str, arr.shape))}; expected (rows, features) "
        f"or (rows, height, width), so reshape it before saving"
    )


# --------------------------------------------------------------------------- #
# CSV / TSV
# --------------------------------------------------------------------------- #

_MISSING = ("", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "?")
_MISSING_SET = frozenset(_MISSING)
# what pandas' C parser reads as a float: ASCII digits without "_" (Python's float()
# takes "1_000" and other scripts' digits), blanks around them, inf/infinity in any case
_NUMBER = re.compile(r"[ \t]*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[ \t]*|[+-]?inf(?:inity)?",
                     re.ASCII | re.IGNORECASE)
_SNIFF_LINES = 20


def parse_csv(data: bytes, limits: Limits, label_column: str | None = None) -> Table:
    """Parse comma-, tab- or semicolon-separated text with an optional header.

    The delimiter is sniffed from the first lines; the header is detected (a
    first row with words above numbers); ragged rows are reported by line.
    """
    text, delimiter = _text_and_delimiter(data)
    counts, head_rows, header_lines = _scan_rows(text, delimiter)
    if not head_rows:
        raise DataError("the file is empty: it holds no rows; choose a file with data")
    first = head_rows[0]
    has_header = _looks_like_header(head_rows, label_column)
    width = len(first)
    names = _column_names(first if has_header else None, width)
    n_rows = counts - (1 if has_header else 0)
    if n_rows == 0:
        raise DataError("the file is empty: it has a header but no data rows; add rows")
    check_size(n_rows, width - (1 if label_column else 0), limits)
    if n_rows * width > limits.max_cells:
        raise DataError(
            f"the table has {n_rows:,} rows x {width:,} columns = {n_rows * width:,} cells but at "
            f"most {limits.max_cells:,} are accepted (Limits.max_cells); use fewer rows or columns, "
            "or save it as .npy / .npz, which take less memory to read")

    label_idx = None
    if label_column is not None:
        if label_column not in names:
            raise DataError(
                f"there is no column named {label_column!r}; the columns are: "
                f"{_short_list(names)}; choose one of them as the label column"
            )
        label_idx = names.index(label_column)

    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=delimiter, header=None,
            skiprows=header_lines if has_header else 0, skipinitialspace=True,
            # a label column's "NA", "None" or "?" is a class name; only an empty cell is missing there
            keep_default_na=False, engine="c",
            na_values={j: [""] if j == label_idx else list(_MISSING) for j in range(width)},
            low_memory=False, dtype={label_idx: str} if label_idx is not None else None,
        )
    except MALFORMED_INPUT_ERRORS as exc:
        raise DataError(
            f"the text could not be parsed as a table ({exc}); check the quotes and "
            f"separators, or export the file again as CSV"
        ) from exc
    if frame.shape != (n_rows, width):
        raise DataError(
            f"the text reads as {frame.shape[0]} rows of {frame.shape[1]} columns "
            f"where {n_rows} rows of {width} were expected; check for unbalanced quotes"
        )

    labels = None
    if label_idx is not None:
        column = frame.iloc[:, label_idx]
        missing = np.flatnonzero(column.isna().to_numpy())
        if missing.size:
            raise DataError(
                f"the label column {label_column!r} has {missing.size:,} empty "
                f"cell{'s' if missing.size > 1 else ''}, the first in data row {missing[0] + 1}; "
                "fill them or remove those rows"
            )
        labels = np.array([str(v).strip() for v in column], dtype=str)
    # a column with no name and no values (a trailing separator) is dropped
    empty = frame.isna().all(axis=0).to_numpy()
    unnamed = [not (has_header and first[j]) for j in range(width)]
    keep = [j for j in range(width) if j != label_idx and not (empty[j] and unnamed[j])]
    dtypes = frame.dtypes.tolist()
    bad = [j for j in keep if not pd.api.types.is_numeric_dtype(dtypes[j])]
    if bad:
        head = {j: [str(v) for v in frame.iloc[:20, j].dropna()] for j in bad}
        comma = [j for j, cells in head.items() if cells and all(_DECIMAL_COMMA.fullmatch(c) for c in cells)]
        if comma:  # other text columns may be labels: the commas are what to fix first
            raise DataError(
                f"the numbers use decimal commas ({head[comma[0]][0]} in column {names[comma[0]]!r}); "
                "save the file with decimal points (in a spreadsheet: English number format), "
                "separated by commas, semicolons or tabs")
        bad_names = [names[j] for j in bad]
        raise DataError(
            f"the file has {len(bad)} column{'s' if len(bad) > 1 else ''} that "
            f"{'are' if len(bad) > 1 else 'is'} not numbers ({_short_list(bad_names)}); "
            f"choose one as the label column or remove them"
        )
    if keep and keep[0] == 0 and has_header and not first[0] and _row_numbers(frame.iloc[:, 0]):
        keep = keep[1:]  # pandas' index written by to_csv: an unnamed column 0..n-1 is no feature
    X = frame.iloc[:, keep].to_numpy(dtype=np.float64) if keep else np.empty((n_rows, 0))
    feature_names = tuple(names[j] for j in keep)
    return Table(X, labels, feature_names, _image_shape(X, feature_names if has_header else None))


MNIST_PIXELS = 28 * 28
"""a row of an MNIST CSV after its label: unnamed columns of this many whole numbers are images"""
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_PIXEL_NAME = re.compile(r"(?:pixel|pix|px|p)[ _.-]?\d+(?:[ _.x-]\d+)?|\d+x\d+", re.ASCII | re.IGNORECASE)


def _row_numbers(column: pd.Series) -> bool:
    """True for a column holding 0, 1, ..., n-1 (or 1, ..., n) in any order: row
    numbers (a shuffled frame's index; kept, it told iris' classes apart, as the
    file was sorted by class)."""
    values = column.to_numpy()
    if values.dtype.kind not in "iu" or not len(values):
        return False
    ordered = np.sort(values)
    return bool(ordered[0] in (0, 1) and np.array_equal(ordered, np.arange(ordered[0], ordered[0] + len(values))))


def _image_shape(X: np.ndarray, names: tuple[str, ...] | None) -> tuple[int, int] | None:
    """(side, side) when a table's rows are flattened square images, else None.

    Rows are images when the columns are named as pixels (``pixel0``,
    ``pixel_3_4``, ``1x1``), their number is a square of 8 or more, and every
    value is a whole number from 0 to 255 or lies in [0, 1]; or when the file
    names no columns and a row is MNIST's 784 whole numbers from 0 to 255 with
    some above 16 (8-bit grey levels). Other unnamed tables stay tables: a
    1,024-bit fingerprint or a bag of 400 word counts is no 32x32 or 20x20
    image, and the rule was kept this narrow because a file read differently
    gets a new fingerprint (its earlier runs' views then say the data changed)."""
    n, d = X.shape
    side = math.isqrt(d)
    if side < 8 or side * side != d or n == 0:
        return None
    pixel_names = names is not None and all(_PIXEL_NAME.fullmatch(name) for name in names)
    if not pixel_names and (names is not None or d != MNIST_PIXELS):
        return None
    lo, hi = float(X.min()), float(X.max())
    if lo < 0 or hi > 255:
        return None
    whole = bool(np.all(np.floor(X) == X))
    if pixel_names:
        return (side, side) if whole or hi <= 1 else None
    return (side, side) if whole and hi > 16 else None


def csv_columns(data: bytes) -> list[str]:
    """The column names of CSV/TSV text (x0, x1, ... without a header), read from
    its first lines only: what a page offers as label columns before the file
    can be loaded."""
    return _csv_head(data)[0]


LABEL_NAMES = frozenset({"label", "labels", "class", "classes", "target", "digit", "species",
                         "category", "truth"})
"""column names a page takes for the label column when no column holds text ("y" is
not one: in x,y files it is the second coordinate)"""


def label_guess(columns: list[str], text_columns: list[str],
                rows: list[list[str]] | None = None) -> str | None:
    """The column a page preselects as the labels: the one column that holds text
    (the file cannot load with it among the features), else a column named like
    labels (``label``, ``class``, ``target``, ...), else, in a file without a
    header whose first lines (``rows``) read as MNIST's (a whole number, then
    784 whole numbers from 0 to 255), its first column; else None."""
    if text_columns:
        return text_columns[0] if len(text_columns) == 1 else None
    named = [c for c in columns if c.strip().lower() in LABEL_NAMES]
    if named:
        return named[0] if len(named) == 1 else None
    unnamed = columns == [f"x{j}" for j in range(len(columns))]
    if unnamed and len(columns) == MNIST_PIXELS + 1 and rows and all(_mnist_row(row) for row in rows):
        return "x0"
    return None


def _mnist_row(row: list[str]) -> bool:
    """A label (a whole number) then 784 pixels, whole numbers 0..255."""
    if len(row) != MNIST_PIXELS + 1 or not all(_INTEGER.fullmatch(cell) for cell in row):
        return False
    return all(0 <= int(cell) <= 255 for cell in row[1:])


def csv_head_info(data: bytes) -> tuple[list[str], list[str], str | None]:
    """The column names of CSV/TSV text, those of them that hold something other than
    numbers (or missing values) in its first lines, and the :func:`label_guess`:
    what a page offers before the file can be loaded (a text column cannot be a
    feature), from one read of its first lines."""
    names, rows = _csv_head(data)
    text = _text_columns(names, rows)
    return names, text, label_guess(names, text, rows)


def _text_columns(names: list[str], rows: list[list[str]]) -> list[str]:
    return [name for j, name in enumerate(names)
            if any(j < len(row) and row[j] and not _is_number(row[j]) for row in rows)]


def _csv_head(data: bytes) -> tuple[list[str], list[list[str]]]:
    """The column names and the data rows among the first lines of CSV/TSV text."""
    text, delimiter = _text_and_delimiter(data)
    lines = text[: 2**20].splitlines()
    if len(text) > 2**20 and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut short (as in _sniff_delimiter)
    head = "\n".join(lines[:_SNIFF_LINES])
    _, head_rows, _ = _scan_rows(head, delimiter)
    if not head_rows:
        return [], []
    first = head_rows[0]
    header = _looks_like_header(head_rows, None)
    rows = [row for row in csv.reader(io.StringIO(head), delimiter=delimiter, skipinitialspace=True)
            if any(c.strip() for c in row)]  # cells as the loader sees them: no leading blanks
    return _column_names(first if header else None, len(first)), rows[1:] if header else rows


def _decode(data: bytes) -> str:
    """Decode text as UTF-8 (with or without BOM), else Windows-1252."""
    if b"\x00" in data:
        raise DataError(
            "the file holds NUL bytes, so it is binary rather than CSV text; "
            "choose a text file or give the right extension (.npy, .npz, .idx)"
        )
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DataError("the file is not readable text; save it as UTF-8 CSV")


_SEP_LINE = re.compile(r"sep=([,;\t|])[ \t]*(?:\r\n|\r|\n|$)")


def _text_and_delimiter(data: bytes) -> tuple[str, str]:
    """The file's text and its separator: the one a first line ``sep=;`` names
    (Excel writes it, and reads it back), which is then left out, or the sniffed one."""
    text = _decode(data)
    named = _SEP_LINE.match(text)
    if named:  # left as a blank line, so that messages name the file's own line numbers
        return "\n" + text[named.end():], named.group(1)
    return text, _sniff_delimiter(text)


def _sniff_delimiter(text: str) -> str:
    """Pick the separator that splits the first lines into the most equal fields."""
    sample = text[: 2**20].splitlines()
    if len(text) > 2**20 and len(sample) > 1:
        sample = sample[:-1]  # the last line may be cut short
    lines = [ln for ln in sample[: _SNIFF_LINES * 5] if ln.strip()][:_SNIFF_LINES]
    best, best_fields = ",", 1
    for delimiter in ("\t", ",", ";", " "):
        if delimiter == " " and best_fields > 1:
            break
        try:
            reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=True)
            widths = {len(row) for row in reader}
        except csv.Error:
            continue
        if len(widths) == 1 and (width := widths.pop()) > best_fields:
            best, best_fields = delimiter, width
    return best


def _scan_rows(text: str, delimiter: str) -> tuple[int, list[list[str]], int]:
    """Count records and check that all have the same number of fields.

    Returns the record count, the first records (up to ``_SNIFF_LINES``), and the
    line on which the first record ends (the lines to skip past a header).
    """
    if '"' in text or delimiter == " ":
        return _scan_rows_quoted(text, delimiter)
    count, head_rows, width, header_lines = 0, [], 0, 0
    for line_num, line in enumerate(io.StringIO(text, newline=None), start=1):
        if not line.strip() and delimiter not in line:  # a blank line
            continue
        fields = line.count(delimiter) + 1
        count += 1
        if count == 1:
            width, header_lines = fields, line_num
        if count <= _SNIFF_LINES:
            head_rows.append([cell.strip() for cell in line.split(delimiter)])
        if fields != width:
            raise _ragged(line_num, fields, width)
    return count, head_rows, header_lines


def _scan_rows_quoted(text: str, delimiter: str) -> tuple[int, list[list[str]], int]:
    """:func:`_scan_rows` for text with quoted fields, using the csv module."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, skipinitialspace=True)
    count, head_rows, width, header_lines = 0, [], 0, 0
    try:
        for row in reader:
            if len(row) <= 1 and not "".join(row).strip():  # a blank line
                continue
            count += 1
            if count == 1:
                width, header_lines = len(row), reader.line_num
            if count <= _SNIFF_LINES:
                head_rows.append([cell.strip() for cell in row])
            if len(row) != width:
                raise _ragged(reader.line_num, len(row), width)
    except csv.Error as exc:
        raise DataError(
            f"line {reader.line_num} could not be read as CSV ({exc}); "
            f"fix the quoting on that line"
        ) from exc
    return count, head_rows, header_lines


def _ragged(line_num: int, fields: int, width: int) -> DataError:
    return DataError(
        f"line {line_num} has {fields} fields but the first line has {width}; make every "
        f"line have the same number of fields (look for a stray separator or quote)"
    )


def _is_number(cell: str) -> bool:
    """True for a cell that reads as a number or as a missing value, as the loader
    (pandas) reads them: the missing markers are matched exactly."""
    return cell in _MISSING_SET or _NUMBER.fullmatch(cell) is not None


def _looks_like_header(rows: list[list[str]], label_column: str | None) -> bool:
    """A header is a first row with words where the data below has numbers, or
    whose numbers count up as names do (``country,1990,2000,2010`` above rows
    that do not: years, wavelengths, pixel numbers as column names)."""
    first, below = rows[0], rows[1:]
    if below and _pandas_names(first) and not any(_pandas_names(row) for row in below):
        return True
    words = [not _is_number(cell) for cell in first]
    if not any(words):
        return False
    if not below or all(words) or (label_column is not None and label_column in first):
        return True
    if any(w and _is_number(cell) for w, cell in zip(words, below[0])):
        return True
    return _counts_up(first) and not any(_counts_up(row) for row in below)


_INTEGER = re.compile(r"[ \t]*[+-]?\d+[ \t]*", re.ASCII)


def _pandas_names(row: list[str]) -> bool:
    """True for the header pandas writes for a frame made from an array: the column
    numbers 0, 1, ..., m-1, after an empty cell above the index (``,0,1``), or
    alone when there are three or more (``to_csv(index=False)``: ``0,1,2,3``)."""
    cells = row[1:] if row and row[0] == "" else row
    if not cells or not all(_INTEGER.fullmatch(cell) for cell in cells):
        return False
    if [int(cell) for cell in cells] != list(range(len(cells))):
        return False
    return len(cells) >= 3 or len(cells) < len(row)


def _counts_up(row: list[str]) -> bool:
    """True when the row's numbers are three or more whole numbers, each larger than
    the last (two, as in ``a,1,5``, are too often a data row)."""
    numbers = [cell for cell in row if _is_number(cell) and cell not in _MISSING_SET]
    if len(numbers) < 3 or not all(_INTEGER.fullmatch(cell) for cell in numbers):
        return False
    values = [int(cell) for cell in numbers]
    return all(a < b for a, b in zip(values, values[1:]))


def _column_names(header: list[str] | None, width: int) -> list[str]:
    """Header names made unique and non-empty, or x0, x1, ... without a header."""
    if header is None:
        return [f"x{j}" for j in range(width)]
    names: list[str] = []
    taken: set[str] = set()
    next_k: dict[str, int] = {}  # per base name, the suffix to try next: linear, not cubic, time
    for j, raw in enumerate(header):
        name = raw or f"x{j}"
        base, k = name, next_k.get(name, 1)
        while name in taken:
            name, k = f"{base}.{k}", k + 1
        next_k[base] = k
        taken.add(name)
        names.append(name)
    return names


def _short_list(names: list[str], at_most: int = 8) -> str:
    """Join names for a message, eliding the tail of a long list."""
    shown = ", ".join(names[:at_most])
    return shown + (f", and {len(names) - at_most} more" if len(names) > at_most else "")

