"""Security: who can reach the server, what a browser can make it read or write,
and that user files are only ever parsed as data."""

from __future__ import annotations

import ast
import os
import pickle
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ganmm import data, uploads
from ganmm.errors import DataError, GanmmError
from ganmm.store import RunStore, StoreError
from ganmm.ui import common

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
SOURCES = [ROOT / "Home.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "ganmm").rglob("*.py"))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    """The dashboard started the way `make run` starts it, minus the address flag:
    what the project's own config decides."""
    port = _free_port()
    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "GANMM_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://localhost:{port}"
    try:
        end = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read()
                break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < end, "the dashboard did not start"
                time.sleep(0.3)
        yield port, url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp* write them) listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if int(hex_port, 16) == port and state == "0A":  # LISTEN
                    found.append(address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc/net")
def test_the_server_listens_on_localhost_only_by_default(default_server):
    port, _ = default_server
    addresses = _listening(port)
    loopback = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1
    assert addresses and set(addresses) <= loopback, addresses
    assert CONFIG["server"]["address"] == "localhost"
    assert re.search(r"^HOST\s*\?=\s*localhost$", (ROOT / "Makefile").read_text(), re.M)


def test_xsrf_protection_is_on_and_an_upload_without_its_token_is_refused(default_server):
    _, url = default_server
    assert CONFIG["server"]["enableXsrfProtection"] is True
    request = urllib.request.Request(f"{url}/_stcore/upload_file/some-session/some-file", method="PUT",
                                     data=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403


def test_the_upload_size_is_limited():
    assert 1 <= CONFIG["server"]["maxUploadSize"] <= 200  # MB, the README's figure
    assert "200 MB" in (ROOT / "README.md").read_text()


def test_the_dashboard_loads_builtins_and_uploads_only_never_a_named_path(tmp_path):
    outside = tmp_path / "secret.csv"
    outside.write_text("a,b\n1,2\n3,4\n")
    for source in (str(outside), "/etc/passwd", "../../etc/passwd", str(uploads.uploads_dir()),
                   str(uploads.uploads_dir() / ".." / "runs.sqlite")):
        with pytest.raises(GanmmError, match="built-in datasets and uploaded files only"):
            common.load_dataset(source)
    kept = uploads.save_upload("secret.csv", outside.read_bytes())
    assert common.load_dataset(str(kept)).n_samples == 2  # the same bytes, uploaded: fine
    with pytest.raises(GanmmError, match="uploaded labels files only"):
        common.load_dataset(str(kept), labels=str(outside))
    # a link planted inside the uploads folder does not lead out of it
    link = uploads.uploads_dir() / "link.csv"
    link.symlink_to(outside)
    with pytest.raises(GanmmError, match="uploaded files only"):
        common.load_dataset(str(link))


def test_no_page_offers_a_text_field_that_could_name_a_file():
    names = ["Home.py", *(f"pages/{p.name}" for p in sorted((ROOT / "pages").glob("*.py")))]
    for name in names:
        at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=120)
        at = (at if name == "Home.py" else at.switch_page(name)).run()
        assert not at.exception, name
        labels = [w.label for w in at.text_input] + [w.label for w in at.text_area]
        assert all(label == "Run name (optional)" for label in labels), (name, labels)


@pytest.mark.parametrize("name", ["../../../escape", "..\\..\\x", "/etc/passwd", "a/../../b", "\x00nul",
                                  "." * 300, "run\nname"])
def test_run_names_and_exports_stay_inside_ganmm_home(ganmm_home, name, tmp_path):
    store = RunStore()
    ds = data.from_arrays(np.arange(20.0).reshape(10, 2), np.arange(10) % 2, name=name)
    record = store.create_run(dataset=ds, model="gmm", config={}, seed=0, device="cpu", name=name)
    assert "/" not in record.name and "\\" not in record.name and "\x00" not in record.name
    assert store.run_dir(record.run_id).resolve().is_relative_to(ganmm_home.resolve())
    try:
        kept = store.rename(record.run_id, name)
    except StoreError as exc:  # nothing usable left once cleaned: refused, clearly
        assert "visible character" in str(exc)
    else:
        assert kept == store.get_run(record.run_id).name and "/" not in kept and "\x00" not in kept
    for bad_id in (name, "../runs", "/tmp"):
        with pytest.raises(StoreError):
            store.run_dir(bad_id)
    before = set(tmp_path.rglob("*"))
    from ganmm.models import make_model

    for snap in make_model("kmeans", n_clusters=2, max_iter=1).fit_iter(ds.X, ds.y):
        store.append_iteration(record.run_id, snap)
    out = store.export_run(record.run_id, tmp_path / "export.zip")  # the zip's members are fixed names
    import zipfile

    with zipfile.ZipFile(out) as zf:
        assert all(not m.startswith(("/", "..")) and ".." not in Path(m).parts for m in zf.namelist())
    new = set(tmp_path.rglob("*")) - before
    assert {p for p in new if not p.is_relative_to(ganmm_home)} == {out}  # nothing else, anywhere
    # and the dashboard's download is named from the run id alone
    assert 'file_name=f"ganmm-{run_id}.zip"' in (ROOT / "Home.py").read_text()


def test_user_files_are_never_unpickled(monkeypatch, tmp_path):
    def trap(*args, **kwargs):
        raise AssertionError("a user file was unpickled")

    monkeypatch.setattr(pickle, "load", trap)
    monkeypatch.setattr(pickle, "loads", trap)
    import io

    objects = io.BytesIO()
    np.save(objects, np.array([{"x": 1}, "y"], dtype=object), allow_pickle=True)
    npz = io.BytesIO()
    np.savez(npz, X=np.array([[1, 2], [3, 4]], dtype=object))
    for name, content in (("obj.npy", objects.getvalue()), ("obj.npz", npz.getvalue()),
                          ("raw.npy", pickle.dumps([[1.0, 2.0]]))):
        path = uploads.save_upload(name, content)
        with pytest.raises(DataError, match="pickle|object"):
            common.load_dataset(str(path))


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            yield node, owner, name


def test_no_code_evaluates_unpickles_or_runs_a_shell():
    """Read every module of the app: no eval/exec, no pickle or torch.load, no
    allow_pickle=True, no shell (os.system, os.popen, subprocess with shell=True)."""
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, owner, name in _calls(tree):
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if name in ("eval", "exec", "compile") and not owner:
                found.append(f"{where} {name}()")
            if (owner, name) in {("pickle", "load"), ("pickle", "loads"), ("torch", "load"),
                                 ("os", "system"), ("os", "popen"), ("pd", "read_pickle"),
                                 ("joblib", "load"), ("yaml", "load")}:
                found.append(f"{where} {owner}.{name}()")
            for kw in node.keywords:
                if kw.arg in ("allow_pickle", "shell") and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    found.append(f"{where} {kw.arg}=...")
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                if any(m in ("subprocess", "pickle", "marshal", "shelve") for m in modules):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {modules}")
    assert not found, found
