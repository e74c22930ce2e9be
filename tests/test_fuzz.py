"""Hostile input: every loader, fed random, adversarial and mutated bytes, gives a
valid Dataset or a DataError that says what to change; never another exception,
a hang, or memory out of proportion to the input.

Budgets are small on purpose (the suite runs on two busy cores): each property
tries at most a few hundred examples and each example gets a few seconds.
"""

from __future__ import annotations

import gzip
import io
import pickle
import re
import struct
import time
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from ganmm import data, loaders
from ganmm.data import DEFAULT_LIMITS, Dataset, Limits, load, load_bytes
from ganmm.errors import DataError, GanmmError
from ganmm.uploads import NAME_MAX, save_upload, uploads_dir

pytestmark = pytest.mark.timeout(180)  # a hang fails the test instead of stalling the suite

# Small limits keep every example cheap; they are what the size checks are tested against.
FUZZ = Limits(max_rows=5_000, max_features=2_000, max_bytes=1 << 20)

FUZZ_SETTINGS = settings(max_examples=120, deadline=5_000, derandomize=True, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                HealthCheck.function_scoped_fixture])

NAMES = {
    "csv": ["data.csv", "data.tsv", "data.txt"],
    "npy": ["data.npy"],
    "npz": ["data.npz"],
    "idx": ["data.idx", "train-images-idx3-ubyte"],
}
ALL_NAMES = [n for names in NAMES.values() for n in names]
ALL_NAMES += [n + ".gz" for n in ALL_NAMES]
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MB = 2**20


# --------------------------------------------------------------------------- #
# the one allowed outcome
# --------------------------------------------------------------------------- #

def outcome(fn, *args, **kwargs) -> Dataset | DataError:
    """Run a loader: it must return a usable Dataset or raise a DataError with a
    message. Any other exception propagates and fails the test."""
    try:
        ds = fn(*args, **kwargs)
    except DataError as exc:
        assert isinstance(exc, GanmmError) and str(exc).strip(), "a DataError must say what to change"
        if currently_in_test_context():  # shown by pytest --hypothesis-show-statistics
            event("DataError")
        return exc
    if currently_in_test_context():
        event("Dataset")
    assert isinstance(ds, Dataset)
    X = ds.X
    assert X.dtype == np.float32 and X.ndim == 2, (X.dtype, X.shape)
    n, d = X.shape
    assert n >= 2 and d >= 1
    assert np.isfinite(X).all(), "the scaled features hold NaN/inf"
    assert ds.offset.shape == ds.scale.shape == (d,)
    assert np.isfinite(ds.offset).all() and np.isfinite(ds.scale).all() and (ds.scale > 0).all(), \
        "the map back to the original units is not finite"
    assert np.isfinite(ds.inverse(X)).all()
    assert len(ds.feature_names) == d
    if ds.image_shape is not None:
        assert ds.kind == "image" and ds.image_shape[0] * ds.image_shape[1] == d
    if ds.y is not None:
        assert ds.y.shape == (n,) and ds.y.dtype == np.int64
        assert ds.y.min() >= 0 and ds.y.max() < len(ds.label_names)
    return ds


def columns_outcome(path: str) -> list[str] | DataError:
    """data.csv_columns: a list of distinct names, or a DataError."""
    try:
        cols = data.csv_columns(path, limits=FUZZ)
    except DataError as exc:
        assert str(exc).strip()
        return exc
    assert isinstance(cols, list) and all(isinstance(c, str) and c for c in cols)
    assert len(set(cols)) == len(cols), "column names offered for labels must be distinct"
    names, text = data.csv_column_kinds(path, limits=FUZZ)  # what the Data page preselects from
    assert names == cols and set(text) <= set(cols)
    return cols


# --------------------------------------------------------------------------- #
# file builders
# --------------------------------------------------------------------------- #

def idx_bytes(arr: np.ndarray, code: int = 0x08, dims: tuple[int, ...] | None = None) -> bytes:
    dims = arr.shape if dims is None else dims
    header = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    return header + np.asarray(arr).astype(IDX_DTYPES[code]).tobytes()


def npy_bytes(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def npy_raw(header: str, body: bytes = b"", version: int = 1) -> bytes:
    """A .npy file with a hand-written header dict (padded as numpy pads it)."""
    text = header.encode("latin1")
    fixed = 10 if version == 1 else 12
    text += b" " * (-(fixed + len(text) + 1) % 64) + b"\n"
    size = struct.pack("<H" if version == 1 else "<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + size + text + body


def npz_bytes(compress: bool = True, **arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    return buf.getvalue()


def zip_with(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buf.getvalue()


def set_declared_sizes(raw: bytes, size: int) -> bytes:
    """Rewrite every member's uncompressed size, in the local headers and the
    central directory, to ``size``."""
    out = bytearray(raw)
    pos = out.find(b"PK\x03\x04")
    while pos != -1:
        out[pos + 22: pos + 26] = struct.pack("<I", size)
        pos = out.find(b"PK\x03\x04", pos + 4)
    pos = out.find(b"PK\x01\x02")
    while pos != -1:
        out[pos + 24: pos + 28] = struct.pack("<I", size)
        pos = out.find(b"PK\x01\x02", pos + 4)
    return bytes(out)


def traced_peak(fn, *args, **kwargs) -> tuple[object, float, float]:
    """(result, peak traced allocation in MiB, seconds) of one call."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1] / MB, time.perf_counter() - start
    finally:
        if not was_tracing:
            tracemalloc.stop()


def peak_mb(fn, *args, **kwargs) -> tuple[Dataset | DataError, float, float]:
    """(outcome, peak traced allocation in MiB, seconds) of one loader call."""
    return traced_peak(outcome, fn, *args, **kwargs)


# --------------------------------------------------------------------------- #
# strategies
# --------------------------------------------------------------------------- #

# mostly small dims (so that headers and bodies sometimes agree), else huge or any
u32 = st.one_of(st.integers(0, 8), st.integers(1, 6), st.integers(2, 5), st.integers(0, 2**32 - 1),
                st.sampled_from([2**31, 2**32 - 1, 60000]))


@st.composite
def idx_headed(draw) -> bytes:
    """The IDX magic with a random type code and dims, then a body that fits or not."""
    magic = draw(st.sampled_from([b"\x00\x00"] * 6 + [b"\x00\x01", b"\x08\x03"]))
    code = draw(st.sampled_from(sorted(IDX_DTYPES) * 3 + [0x00, 0x07, 0x0A, 0x0F, 0xFF]))
    ndim = draw(st.sampled_from([1, 2, 2, 3, 3, 3, 0, 4, 255]))
    dims = draw(st.lists(u32, min_size=min(ndim, 6), max_size=min(ndim, 6)))
    head = magic + bytes([code, ndim]) + struct.pack(f">{len(dims)}I", *dims)
    itemsize = np.dtype(IDX_DTYPES.get(code, ">u1")).itemsize
    expected = int(np.prod(dims, dtype=object)) * itemsize if dims else 0
    if expected <= 4096 and draw(st.booleans()):
        body = draw(st.binary(min_size=expected, max_size=expected))  # sizes agree
    else:
        body = draw(st.binary(max_size=128))
    return head + body


NPY_DESCRS = [
    "'<f8'", "'<f8'", "'>f4'", "'>f4'", "'<f2'", "'|u1'", "'|u1'", "'|i1'", "'<i8'", "'>u8'", "'|b1'", "'<f16'",
    "'<c16'",
    "'|O'", "'<U3'", "'|S4'", "'|V8'", "'<M8[s]'", "'<m8[D]'", "'<U0'", "'|S0'",
    "[('a', '<f8')]", "[('a', '|O')]", "('<f8', (2,))", "'garbage'", "None", "3", "'<f8'*999",
]


@st.composite
def npy_headed(draw) -> bytes:
    """The NPY magic with a hand-made header (any descr, shape, order), then a body."""
    if draw(st.integers(0, 9)) == 0:  # the magic and then anything at all
        return b"\x93NUMPY" + draw(st.binary(max_size=200))
    descr = draw(st.sampled_from(NPY_DESCRS))
    odd = st.sampled_from(["-1", "1.5", "'a'", "True", "None"]) if draw(st.integers(0, 3)) == 0 else st.nothing()
    dims = draw(st.lists(st.one_of(st.integers(0, 6), st.integers(2, 6), st.integers(2, 6),
                                   st.integers(0, 2**70), odd), min_size=1, max_size=4))
    shape = "(" + "".join(f"{dim}, " for dim in dims) + ")"
    if draw(st.integers(0, 9)) == 0:
        shape = draw(st.sampled_from(["[2, 2]", "'2x2'", "(" * 200 + ")" * 200, "None", "2"]))
    fortran = draw(st.sampled_from(["False", "False", "True", "True", "1", "'no'"]))
    header = f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}"
    if draw(st.integers(0, 9)) == 0:
        header = draw(st.sampled_from(["{}", "{'descr': '<f8'}", "[1, 2]", "{" * 500, "__import__('os')",
                                       "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), 'x': 1}"]))
    version = draw(st.sampled_from([1, 1, 1, 2, 2, 3]))
    expected = 0
    if all(isinstance(dim, int) for dim in dims):
        try:
            expected = int(np.prod(dims, dtype=object) or 0) * np.dtype(eval(descr)).itemsize  # noqa: S307
        except Exception:  # noqa: BLE001 - not a dtype numpy knows: any body will do
            expected = 0
    if 0 < expected <= 4096 and draw(st.booleans()):
        body = draw(st.binary(min_size=expected, max_size=expected + 8))
    else:
        body = draw(st.binary(max_size=128))
    return npy_raw(header, body, version=min(version, 2)) if version < 3 else \
        b"\x93NUMPY\x03\x00" + struct.pack("<I", len(header)) + header.encode() + body


@st.composite
def magic_then_junk(draw) -> tuple[str, bytes]:
    """A format's magic bytes followed by random bytes, under any name."""
    magic = draw(st.sampled_from([
        b"\x93NUMPY\x01\x00", b"\x93NUMPY\x02\x00", b"\x93NUMPY",
        b"PK\x03\x04", b"PK\x05\x06", b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
        b"\x1f\x8b", b"\x1f\x8b\x08\x00", b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\x03",
        b"\x00\x00\x08\x03", b"\x00\x00\x0d\x02", b"\x80\x04\x95", b"\xef\xbb\xbf",
    ]))
    return draw(st.sampled_from(ALL_NAMES)), magic + draw(st.binary(max_size=300))


@st.composite
def random_array(draw) -> np.ndarray:
    n = draw(st.integers(2, 12))
    d = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["normal", "uint8", "int", "images", "huge", "tiny", "vector"]))
    if kind == "uint8":
        return rng.integers(0, 256, size=(n, d), dtype=np.uint8)
    if kind == "int":
        return rng.integers(-(2**40), 2**40, size=(n, d))
    if kind == "images":
        return rng.integers(0, 256, size=(n, d, draw(st.integers(1, 4))), dtype=np.uint8)
    if kind == "huge":
        return rng.normal(size=(n, d)) * 1e37
    if kind == "tiny":
        return rng.normal(size=(n, d)) * 1e-30
    if kind == "vector":
        return rng.normal(size=n)
    return rng.normal(size=(n, d)) * 10.0 ** draw(st.integers(-3, 6))


def _idx_code_for(arr: np.ndarray) -> int:
    if arr.dtype == np.uint8:
        return 0x08
    if arr.dtype.kind == "i":
        return 0x0E  # the values of int64 need f8 to stay exact
    return 0x0D if float(np.abs(arr).max()) < 3e38 else 0x0E


@st.composite
def valid_file(draw) -> tuple[str, bytes]:
    """A well-formed file of a random format (maybe gzipped), before mutation."""
    fmt = draw(st.sampled_from(["csv", "tsv", "npy", "npz", "npz-stored", "idx"]))
    arr = draw(random_array())
    flat = arr.reshape(len(arr), -1) if arr.ndim != 1 else arr.reshape(-1, 1)
    if fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        head = sep.join(f"c{j}" for j in range(flat.shape[1])) + ",label\n" if draw(st.booleans()) else ""
        head = head.replace(",", sep)
        rows = [sep.join(repr(float(v)) for v in row) + (sep + "ab"[i % 2] if head else "")
                for i, row in enumerate(flat)]
        name, blob = f"data.{fmt}", (head + "\n".join(rows) + "\n").encode()
    elif fmt == "npy":
        name, blob = "data.npy", npy_bytes(arr)
    elif fmt.startswith("npz"):
        arrays = {"X": arr, "y": np.arange(len(arr)) % 3} if draw(st.booleans()) else {"X": arr}
        name, blob = "data.npz", npz_bytes(compress=fmt == "npz", **arrays)
    else:
        name, blob = "train-images-idx3-ubyte", idx_bytes(arr, _idx_code_for(arr))
    if draw(st.booleans()):
        name, blob = name + ".gz", gzip.compress(blob, mtime=0)
    return name, blob


@st.composite
def mutated(draw, base) -> tuple[str, bytes]:
    """A valid file damaged by bit flips, byte overwrites, truncation, junk, or a
    header field set to a random 32-bit value."""
    name, good = draw(base)
    blob = bytearray(good)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "byte", "truncate", "append", "insert", "u32", "delete"]))
        if not blob:
            blob = bytearray(draw(st.binary(max_size=16)))
            continue
        at = draw(st.integers(0, len(blob) - 1))
        if op == "flip":
            blob[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            blob[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            del blob[at:]
        elif op == "append":
            blob += draw(st.binary(min_size=1, max_size=64))
        elif op == "insert":
            blob[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del blob[at: at + draw(st.integers(1, 16))]
        else:  # a header field (IDX dims, zip sizes, npy header length) made up
            at = draw(st.sampled_from([min(at, 64), 2, 4, 8, 18, 22]))
            blob[at: at + 4] = struct.pack("<I", draw(u32))
    return name, bytes(blob)


NUMBER = st.one_of(st.floats(-1e6, 1e6).map(repr), st.integers(-1000, 1000).map(str))
MILD_CELLS = st.one_of(NUMBER, NUMBER, NUMBER, NUMBER, st.sampled_from(["", " ", "NA", "nan", "?", " 7 "]))
CELLS = st.one_of(
    NUMBER, NUMBER, NUMBER, NUMBER, NUMBER, NUMBER,  # mostly numbers, so that some tables load
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["", " ", "NA", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-0", "0x10",
                     "1_000", " 3 ", '"1"', '"a,b"', '"', '""', "abc", "é", "\ufeff1", "\x00", "True",
                     "1,5", "1;2", "1\t2", "\r", "\u2028", "?", "null", "'x'", "\\", "#1"]),
    st.text(max_size=6),
    st.sampled_from(["9" * 5000, "a" * 200_000, '"' + "x" * 140_000 + '"']),  # very long fields
)


@st.composite
def csv_text(draw) -> tuple[bytes, str | None]:
    """Table-like text from hostile cells, delimiters, line ends and encodings,
    and a label column to ask for (maybe one that is not there)."""
    cells = CELLS if draw(st.integers(0, 2)) == 0 else MILD_CELLS  # a third of the files are hostile
    width = draw(st.integers(1, 5))
    n_rows = draw(st.integers(0, 8))
    seps = draw(st.lists(st.sampled_from([",", "\t", ";", " ", "|", ", "]), min_size=1, max_size=2))
    if draw(st.booleans()):
        seps = seps[:1]  # one separator, as a real file has
    newline = draw(st.sampled_from(["\n", "\r\n", "\r", "\n\n"]))
    header = [draw(st.sampled_from(["a", "b", "label", "", "a", "1", "x y", '"q"'])) for _ in range(width)]
    lines = [draw(st.sampled_from(seps)).join(header)] if draw(st.booleans()) else []
    for _ in range(n_rows):
        w = width if draw(st.integers(0, 9)) else draw(st.integers(1, width + 2))  # now and then ragged
        lines.append(draw(st.sampled_from(seps)).join(draw(cells) for _ in range(w)))
    text = newline.join(lines) + (newline if draw(st.booleans()) else "")
    if draw(st.booleans()):
        text = "\ufeff" + text
    encoding = draw(st.sampled_from(["utf-8"] * 4 + ["cp1252", "latin-1", "utf-16"]))
    raw = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 5)) == 0:  # bytes that are not UTF-8 anywhere in the file
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff\xfe", b"\x81", b"\xc3(", b"\xed\xa0\x80"])) + raw[at:]
    label = draw(st.one_of(st.none(), st.none(), st.sampled_from(["label", "a", "b", "x0", "missing", ""])))
    return raw, label


# --------------------------------------------------------------------------- #
# properties
# --------------------------------------------------------------------------- #

@FUZZ_SETTINGS
@given(blob=st.binary(max_size=600), name=st.sampled_from(ALL_NAMES))
def test_arbitrary_bytes_under_every_name(blob, name):
    outcome(load_bytes, blob, name, limits=FUZZ)


@FUZZ_SETTINGS
@given(case=magic_then_junk())
def test_magic_bytes_then_junk(case):
    name, blob = case
    result = outcome(load_bytes, blob, name, limits=FUZZ)
    if blob[:2] == b"\x1f\x8b" or (blob[:1] == b"\x80" and loaders.file_format(name) != "csv"):
        # a damaged gzip stream, or a pickle, is never data whatever the name says
        assert isinstance(result, DataError)


@FUZZ_SETTINGS
@given(blob=idx_headed(), gz=st.booleans())
def test_idx_headers_with_any_type_and_dims(blob, gz):
    result = outcome(load_bytes, gzip.compress(blob) if gz else blob,
                     "x-idx3-ubyte.gz" if gz else "x.idx", limits=FUZZ)
    if isinstance(result, Dataset):  # a header must agree with the bytes to be accepted
        code, ndim = blob[2], blob[3]
        dims = struct.unpack(f">{ndim}I", blob[4: 4 + 4 * ndim])
        assert blob[:2] == b"\x00\x00" and code in IDX_DTYPES
        assert len(blob) == 4 + 4 * ndim + int(np.prod(dims)) * np.dtype(IDX_DTYPES[code]).itemsize
        assert result.n_samples == dims[0] <= FUZZ.max_rows


@FUZZ_SETTINGS
@given(blob=npy_headed(), gz=st.booleans())
def test_npy_headers_with_any_descr_and_shape(blob, gz):
    result = outcome(load_bytes, gzip.compress(blob) if gz else blob,
                     "x.npy.gz" if gz else "x.npy", limits=FUZZ)
    if isinstance(result, Dataset):
        assert b"'|O'" not in blob and b"'<U" not in blob and b"'|S" not in blob


@FUZZ_SETTINGS
@given(blob=npy_headed())
def test_npy_headers_as_labels_and_inside_npz(blob):
    X = np.random.default_rng(0).normal(size=(4, 2))
    outcome(load_bytes, npy_bytes(X), "x.npy", labels_bytes=blob, limits=FUZZ)
    outcome(load_bytes, zip_with({"X.npy": npy_bytes(X), "y.npy": blob}), "x.npz", limits=FUZZ)
    outcome(load_bytes, zip_with({"X.npy": blob}, zipfile.ZIP_STORED), "x.npz", limits=FUZZ)


@settings(FUZZ_SETTINGS, max_examples=200)
@given(case=mutated(valid_file()))
def test_valid_files_mutated(case):
    name, blob = case
    outcome(load_bytes, blob, name, limits=FUZZ)


@FUZZ_SETTINGS
@given(case=mutated(valid_file()), labels=mutated(st.sampled_from([
    ("y-idx1-ubyte", idx_bytes(np.arange(6) % 3)),
    ("y.npy", npy_bytes(np.array(["a", "b", "a", "c", "b", "a"]))),
    ("y.npy.gz", gzip.compress(npy_bytes(np.arange(6.0)))),
])))
def test_mutated_labels_files(case, labels):
    name, blob = case
    if loaders.file_format(name) in ("npy", "idx"):
        outcome(load_bytes, blob, name, labels_bytes=labels[1], limits=FUZZ)
    X = idx_bytes(np.random.default_rng(1).integers(0, 256, (6, 3, 2)))
    outcome(load_bytes, X, "x-idx3-ubyte", labels_bytes=labels[1], limits=FUZZ)


@settings(FUZZ_SETTINGS, max_examples=200)
@given(case=csv_text(), name=st.sampled_from(NAMES["csv"]), gz=st.booleans())
def test_csv_from_hostile_cells(tmp_path_factory, case, name, gz):
    raw, label = case
    blob = gzip.compress(raw, mtime=0) if gz else raw
    outcome(load_bytes, blob, name + (".gz" if gz else ""), label_column=label, limits=FUZZ)
    path = tmp_path_factory.mktemp("csv") / (name + (".gz" if gz else ""))
    path.write_bytes(blob)
    columns_outcome(str(path))


@FUZZ_SETTINGS
@given(arr=random_array(), fmt=st.sampled_from(["csv", "tsv", "semicolon", "npy", "npz", "idx"]),
       header=st.booleans(), bom=st.booleans(), gz=st.booleans())
def test_well_formed_files_load_with_their_values(arr, fmt, header, bom, gz):
    """The other half of the contract: good files of any shape are not refused."""
    if fmt in ("csv", "tsv", "semicolon"):
        arr = np.asarray(arr, dtype=np.float64)
        flat = arr.reshape(len(arr), -1)
        sep = {"csv": ",", "tsv": "\t", "semicolon": ";"}[fmt]
        lines = [sep.join(f"col {j}" for j in range(flat.shape[1]))] if header else []
        lines += [sep.join(repr(float(v)) for v in row) for row in flat]
        blob = ("\ufeff" if bom else "") + "\r\n".join(lines) + "\r\n"
        name, blob, expected = "t.csv", blob.encode(), flat
    elif fmt == "npy":
        name, blob, expected = "t.npy", npy_bytes(arr), arr.reshape(len(arr), -1)
    elif fmt == "npz":
        name, blob, expected = "t.npz", npz_bytes(X=arr, y=np.arange(len(arr)) % 2), arr.reshape(len(arr), -1)
    else:
        code = _idx_code_for(arr)
        name, blob = "t-idx3-ubyte", idx_bytes(arr, code)
        expected = arr.astype(IDX_DTYPES[code]).astype(np.float64).reshape(len(arr), -1)
    if gz:
        name, blob = name + ".gz", gzip.compress(blob, mtime=0)
    constant = bool(np.all(expected.min(axis=0) == expected.max(axis=0)))
    result = outcome(load_bytes, blob, name, limits=FUZZ)
    if constant:
        assert isinstance(result, DataError) and "constant" in str(result)
        return
    assert isinstance(result, Dataset), result
    assert result.X.shape == expected.shape
    if arr.ndim == 3 and fmt in ("npy", "npz", "idx"):
        assert result.image_shape == arr.shape[1:] and result.kind == "image"
    spread = np.abs(expected).max(axis=0) + 1e-30
    assert np.all(np.abs(result.inverse(result.X) - expected) <= 1e-4 * spread)
    if fmt == "npz":
        assert result.y.tolist() == (np.arange(len(arr)) % 2).tolist()


@FUZZ_SETTINGS
@given(blob=st.one_of(st.binary(max_size=300), csv_text().map(lambda c: c[0])), gz=st.booleans())
def test_csv_columns_of_any_bytes(tmp_path_factory, blob, gz):
    path = tmp_path_factory.mktemp("cols") / ("c.csv.gz" if gz else "c.csv")
    path.write_bytes(gzip.compress(blob) if gz else blob)
    columns_outcome(str(path))


# --------------------------------------------------------------------------- #
# the upload path: save_upload, then what the Data page does with the file
# --------------------------------------------------------------------------- #

TRAVERSAL = st.sampled_from([
    "", "../", "../../", "../../../../../../", "/", "/etc/", "/tmp/", "C:\\", "..\\..\\", "\\\\server\\share\\",
    "./", "~/", "//", "%2e%2e/", "..%2f", "\x00", "a\x00/", "\u202e", "....//", ".../", "uploads/../../",
])
EXTENSIONS = st.sampled_from([".csv", ".tsv", ".txt", ".npy", ".npz", "-idx3-ubyte", ".csv.gz", ".npy.gz",
                              ".pdf", "", ".", "..", ".csv\x00.png", ".csv/", ".CSV", ".csv ", "/.."])
STEMS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["data", "..", ".", "...", "-", "_", " ", "con", "nul", "\x00", ".hidden", "a" * 300]),
    st.text(alphabet=".", min_size=1, max_size=300),
    st.integers(1, 600).map(lambda n: "x" * n),
    st.integers(1, 300).map(lambda n: "." * n + "x"),
    st.integers(1, 300).map(lambda n: "y" * n + "." * 120 + "z"),
)
UPLOAD_NAMES = st.one_of(
    st.builds(lambda pre, stem, ext: pre + stem + ext, st.lists(TRAVERSAL, max_size=3).map("".join),
              STEMS, EXTENSIONS),
    st.text(max_size=300),
    st.text(alphabet="./\\\x00", max_size=50),
)
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
CSV_UPLOAD = b"a,b,label\n1,2,x\n3,5,y\n4,1,x\n"


def _files_outside(home, root) -> list:
    return [p for p in home.rglob("*") if p.is_file() and not p.resolve().is_relative_to(root)]


@settings(FUZZ_SETTINGS, max_examples=150)
@given(name=UPLOAD_NAMES, content=st.one_of(st.just(CSV_UPLOAD), st.binary(max_size=200),
                                             st.just(gzip.compress(CSV_UPLOAD))))
def test_uploads_stay_inside_the_uploads_folder(ganmm_home, name, content):
    root = uploads_dir().resolve()
    before = sorted(ganmm_home.rglob("*"))
    try:
        path = save_upload(name, content)
    except DataError as exc:
        assert str(exc).strip()
        assert sorted(ganmm_home.rglob("*")) == before, "a refused upload must leave nothing behind"
        return
    assert path.resolve().is_relative_to(root) and path.resolve().parent.parent == root
    assert SAFE_NAME.fullmatch(path.name) and len(path.name) <= NAME_MAX, path.name
    assert not path.is_symlink() and path.read_bytes() == content
    assert _files_outside(ganmm_home, root) == []
    # what the Data page does next: offer CSV columns, then load the file
    label = None
    if loaders.file_format(path.name) == "csv":
        columns = columns_outcome(str(path))
        label = "label" if isinstance(columns, list) and "label" in columns else None
    outcome(load, str(path), label_column=label, limits=FUZZ)


def test_upload_names_cut_to_length_keep_their_type_and_stay_visible(ganmm_home):
    for name in ["a" * 5000 + ".csv", "y" * 300 + "." * 120 + "z.csv", "." * 99 + "x.csv",
                 "../" * 500 + "deep.npy", "b" * 50 + "." * 60 + "x.csv"]:
        path = save_upload(name, CSV_UPLOAD)
        assert len(path.name) <= NAME_MAX and not path.name.startswith("."), path.name
        assert path.resolve().parent.parent == uploads_dir().resolve()
        assert loaders.file_format(path.name) == loaders.file_format(name)
    for name in ["." * 300, "../..", "/", "\x00\x00", "\\..\\..\\", "", " ", "..csv.."]:
        with pytest.raises(DataError):
            save_upload(name, CSV_UPLOAD)
    assert _files_outside(ganmm_home, uploads_dir().resolve()) == []


# --------------------------------------------------------------------------- #
# explicit hostile cases: refused quickly, before the memory they ask for
# --------------------------------------------------------------------------- #

def test_gzip_bomb_refused_with_little_memory():
    bomb = gzip.compress(b"\x00" * (40 * MB), compresslevel=9)  # 40 MB of zeros in ~40 KB
    assert len(bomb) < MB
    for name in ("bomb-idx3-ubyte.gz", "bomb.csv.gz", "bomb.npy.gz", "bomb.npz.gz"):
        result, peak, seconds = peak_mb(load_bytes, bomb, name, limits=Limits(max_bytes=4 * MB))
        assert isinstance(result, DataError) and "exceeds the limit of 4,194,304 bytes" in str(result)
        assert peak < 12, f"{peak:.0f} MiB allocated to refuse a 4 MiB-capped bomb"
    # a bomb split into many gzip members is still one stream to the cap
    members = gzip.compress(b"\x00" * MB) * 20
    assert isinstance(outcome(load_bytes, members, "x.csv.gz", limits=Limits(max_bytes=4 * MB)), DataError)


def test_a_table_of_empty_cells_is_refused_by_its_cell_count_before_parsing():
    """25 MB of "," unpacks from ~50 KB and would cost ~1 GB to parse (about 40
    bytes a cell): the cell count is checked before pandas runs."""
    line = b"," * 999 + b"\n"  # 1,000 empty cells a row
    bomb = gzip.compress(line * 25_000, compresslevel=9)  # 25 million cells
    assert len(bomb) < MB
    result, peak, _ = peak_mb(load_bytes, bomb, "cells.csv.gz")
    assert isinstance(result, DataError) and "Limits.max_cells" in str(result)
    assert peak < 8 * 25, f"{peak:.0f} MiB allocated to refuse 25 MB of empty cells"  # not ~1 GB


def test_bomb_inside_a_labels_file_and_via_csv_columns(tmp_path):
    bomb = gzip.compress(b"\x00" * (20 * MB))
    X = idx_bytes(np.random.default_rng(0).integers(0, 256, (6, 2, 2)))
    result, peak, _ = peak_mb(load_bytes, X, "x-idx3-ubyte", labels_bytes=bomb, limits=Limits(max_bytes=MB))
    assert isinstance(result, DataError) and "exceeds the limit" in str(result) and peak < 8
    path = tmp_path / "bomb.csv.gz"
    path.write_bytes(bomb)
    with pytest.raises(DataError, match="exceeds the limit"):
        data.csv_columns(str(path), limits=Limits(max_bytes=MB))


def test_small_files_cost_memory_in_proportion_to_their_size_not_the_limit(tmp_path):
    """With the default 512 MiB limit, reading a 30-byte file (plain or gzipped)
    must not reserve the whole limit."""
    small = b"a,b\n1,2\n3,5\n4,1\n"
    path = tmp_path / "small.csv"
    path.write_bytes(small)
    gz_path = tmp_path / "small.csv.gz"
    gz_path.write_bytes(gzip.compress(small))
    for fn, args in [(load_bytes, (gzip.compress(small), "s.csv.gz")), (load, (str(path),)),
                     (load, (str(gz_path),)), (data.csv_columns, (str(gz_path),))]:
        result, peak, _ = traced_peak(fn, *args)
        assert isinstance(result, (Dataset, list)) and peak < 50, \
            f"{fn.__name__}{args[-1:]}: {peak:.0f} MiB traced for a 30-byte file"


@pytest.mark.parametrize("dims", [(2**31, 2**31), (2**32 - 1, 2**32 - 1, 2**32 - 1), (60000, 28, 28),
                                  (2**32 - 1,), (1, 2**32 - 1)])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_header_claiming_huge_sizes_refused_at_once(dims, gz):
    blob = idx_bytes(np.zeros(16, np.uint8), dims=dims)
    result, peak, seconds = peak_mb(load_bytes, gzip.compress(blob) if gz else blob,
                                    "big-idx3-ubyte" + (".gz" if gz else ""))
    assert isinstance(result, DataError) and "header says" in str(result)
    assert peak < 50 and seconds < 5


def test_idx_header_within_bytes_but_over_the_limits_refused():
    body = np.zeros((3, 4000), np.uint8)
    with pytest.raises(DataError, match="4,000 features but at most 2,000"):
        load_bytes(idx_bytes(body), "w-idx2-ubyte", limits=FUZZ)
    with pytest.raises(DataError, match="features"):  # zero rows of ~1.8e19 features: no bytes at all
        load_bytes(idx_bytes(np.zeros(0, np.uint8), dims=(0, 2**32 - 1, 2**32 - 1)), "z.idx")


@pytest.mark.parametrize("shape, version", [
    ("(10**12, 10**12)", 1), ("(2**62, 2)", 1), ("(1000000000, 784)", 2), ("(2**31, 2**31, 2**31)", 1),
    ("(0, 10**18)", 1), ("(10**18, 0)", 1),
])
def test_npy_header_claiming_a_huge_shape_refused(shape, version):
    shape = str(eval(shape))  # noqa: S307 - our own literal
    blob = npy_raw(f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}", b"\x00" * 64, version)
    for payload, name in [(blob, "huge.npy"), (gzip.compress(blob), "huge.npy.gz"),
                          (zip_with({"X.npy": blob}), "huge.npz")]:
        result, peak, seconds = peak_mb(load_bytes, payload, name)
        assert isinstance(result, DataError), name
        assert peak < 50 and seconds < 5


def test_npy_header_length_field_lies():
    """A v2 header may claim 4 GiB of header text; the file has 80 bytes."""
    blob = b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**32 - 1) + b"{'descr': '<f8', " + b"\x00" * 60
    result, peak, _ = peak_mb(load_bytes, blob, "lie.npy")
    assert isinstance(result, DataError) and peak < 50
    nested = npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': " + "(" * 3000 + ")" * 3000 + "}")
    assert isinstance(outcome(load_bytes, nested, "deep.npy"), DataError)


def test_npz_member_declaring_a_huge_size_refused_before_decompressing(monkeypatch):
    bomb_member = npy_raw("{'descr': '|u1', 'fortran_order': False, 'shape': (40000, 1000), }",
                          b"\x00" * 40_000_000)
    archive = zip_with({"X.npy": bomb_member})
    assert len(archive) < MB
    liar = set_declared_sizes(zip_with({"X.npy": b"\x00" * 100}), 2**32 - 2)  # 100 bytes, "4 GiB"
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *a, **k: opened.append(a) or real_open(self, *a, **k))
    for payload, limits in [(archive, Limits(max_bytes=4 * MB)), (liar, DEFAULT_LIMITS)]:
        result, peak, seconds = peak_mb(load_bytes, payload, "bomb.npz", limits=limits)
        assert isinstance(result, DataError) and "once decompressed, more than the limit" in str(result)
        assert peak < 12 and seconds < 5
    assert opened == [], "the member was opened although its declared size is over the limit"


def test_npz_member_lying_small_about_its_size_is_cut_off():
    """The directory says 1,000 bytes, the stream inflates to 40 MB: decompression
    stops at the declared size and the damage is reported."""
    real = zip_with({"X.npy": b"\x00" * (40 * MB)})
    result, peak, _ = peak_mb(load_bytes, set_declared_sizes(real, 1000), "lie.npz", limits=Limits(max_bytes=4 * MB))
    assert isinstance(result, DataError) and peak < 12


def test_npz_encrypted_or_unknown_compression_refused():
    raw = bytearray(zip_with({"X.npy": npy_bytes(np.eye(3))}))
    encrypted = bytearray(raw)
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        pos = encrypted.find(sig)
        flag_at = pos + (6 if sig == b"PK\x03\x04" else 8)
        encrypted[flag_at] |= 1  # "encrypted" bit
    assert isinstance(outcome(load_bytes, bytes(encrypted), "enc.npz"), DataError)
    unknown = bytearray(raw)
    for sig, at in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        pos = unknown.find(sig)
        unknown[pos + at: pos + at + 2] = struct.pack("<H", 99)  # AES / unknown method
    assert isinstance(outcome(load_bytes, bytes(unknown), "aes.npz"), DataError)


UNPICKLED: list[str] = []


def _tripwire(tag: str) -> str:
    UNPICKLED.append(tag)
    return tag


class _Trap:
    """Unpickling this calls _tripwire: proof that a file was unpickled."""

    def __reduce__(self):
        return (_tripwire, ("unpickled",))


def test_object_and_pickle_arrays_are_never_unpickled():
    UNPICKLED.clear()
    obj = npy_bytes(np.array([[_Trap(), 1.0], [2.0, 3.0]], dtype=object), allow_pickle=True)
    structured = npy_bytes(np.array([(1.0, _Trap())], dtype=[("a", "<f8"), ("b", "O")]), allow_pickle=True)
    raw_pickle = pickle.dumps(_Trap())
    forged = npy_raw("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", raw_pickle)
    cases = [
        (obj, "obj.npy"), (gzip.compress(obj), "obj.npy.gz"), (structured, "rec.npy"),
        (raw_pickle, "p.npy"), (zip_with({"X.npy": obj}), "obj.npz"),
        (zip_with({"X.npy": npy_bytes(np.eye(3)), "y.npy": obj}), "y.npz"),
        (raw_pickle, "p-idx3-ubyte"), (raw_pickle, "p.csv"),
    ]
    for payload, name in cases:
        result = outcome(load_bytes, payload, name)
        assert isinstance(result, DataError), name
    labels = outcome(load_bytes, npy_bytes(np.eye(2)), "x.npy", labels_bytes=obj)
    assert isinstance(labels, DataError) and "pickled/object arrays are not accepted" in str(labels)
    # a pickle body behind a numeric header is read as numbers (or refused), never run
    outcome(load_bytes, forged, "forged.npy")
    assert UNPICKLED == []


def test_duplicate_header_names_do_not_take_quadratic_time(tmp_path):
    """A header repeating one name thousands of times (a cheap file) must be named
    and checked in linear time, for csv_columns as for loading."""
    width = 20_000
    text = ",".join(["a"] * width) + "\n" + ",".join(["1"] * width) + "\n"
    path = tmp_path / "dups.csv"
    path.write_text(text)
    start = time.perf_counter()
    columns = data.csv_columns(str(path))
    assert time.perf_counter() - start < 5
    assert len(columns) == width and len(set(columns)) == width and columns[:3] == ["a", "a.1", "a.2"]
    start = time.perf_counter()
    with pytest.raises(DataError, match="features but at most"):
        load_bytes(text.encode(), "dups.csv")
    assert time.perf_counter() - start < 5


def test_images_whose_pixel_range_float32_cannot_hold_are_refused_not_nan():
    wide = np.array([[[-3e38, 3e38]], [[0.0, 1e38]]], dtype=np.float32)  # span overflows float32
    narrow = np.array([[[-1e-300, 1e-300]], [[0.0, 1e-300]]])  # span underflows to 0 in float32
    for arr, code in [(wide, 0x0D), (narrow, 0x0E)]:
        for payload, name in [(idx_bytes(arr, code), "x-idx3-ubyte"), (npy_bytes(arr), "x.npy")]:
            result = outcome(load_bytes, payload, name)
            assert isinstance(result, DataError) and "pixel values" in str(result), name


def test_csv_long_fields_nul_and_odd_encodings_refused_clearly():
    cases = {
        "quoted field over the csv limit": b'a,b\n"' + b"x" * 200_000 + b'",1\n2,3\n',
        "NUL bytes": b"1,2\n3,\x004\n",
        "UTF-16": "a,b\n1,2\n3,4\n".encode("utf-16"),
        "only separators": b",,,\n,,,\n,,,\n",
        "only a BOM": b"\xef\xbb\xbf",
        "only newlines": b"\n\r\n\r\n",
        "unbalanced quote": b'a,b\n"1,2\n3,4\n',
    }
    for what, blob in cases.items():
        result = outcome(load_bytes, blob, "t.csv", limits=FUZZ)
        assert isinstance(result, DataError), what
    ok = outcome(load_bytes, b"\xef\xbb\xbfa;b\r\n1;2\r\n3;4\r\n5;6\r\n", "t.csv")
    assert isinstance(ok, Dataset) and ok.feature_names == ("a", "b")


def test_zero_byte_and_one_byte_files_of_every_type(tmp_path):
    for name in ALL_NAMES:
        for blob in (b"", b"\x00", b"\x1f", b"\x1f\x8b", gzip.compress(b"")):
            path = tmp_path / name
            path.write_bytes(blob)
            assert isinstance(outcome(load, str(path), limits=FUZZ), DataError), (name, blob)


def test_truncated_deflate_inside_gzip_and_zlib_raw_refused():
    packed = gzip.compress(npy_bytes(np.random.default_rng(0).normal(size=(50, 4))))
    for cut in (10, len(packed) // 2, len(packed) - 4):
        assert isinstance(outcome(load_bytes, packed[:cut], "x.npy.gz"), DataError)
    # a bare zlib stream is not gzip: read as the named format, and refused
    assert isinstance(outcome(load_bytes, zlib.compress(b"1,2\n3,4\n"), "x.csv"), DataError)
