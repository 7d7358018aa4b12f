"""The Binder configuration (binder/): its dependency list agrees with pyproject.toml and the
Makefile, its start script and demo settings, and (slow) its install steps in a fresh virtual
environment, after which the notebooks execute and JupyterLab proxies the dashboards.

mybinder.org itself cannot be reached from the test machine; the slow test repeats what
repo2docker does for this repository (pip install -r binder/requirements.txt from the
repository root, binder/postBuild, then binder/start in front of every process).
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CHROMIUM = os.environ.get("VEGVIZ_CHROMIUM", "/usr/bin/chromium")


# ----------------------------------------------------------------------------- reading the files

def binder_requirements() -> tuple[list[str], list[Requirement], list[str]]:
    """(pip options, named requirements, local requirements such as '-e .[sources]') of binder/requirements.txt."""
    options, named, local = [], [], []
    for raw in (BINDER / "requirements.txt").read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-e ") or line.startswith("."):
            local.append(line)
        elif line.startswith("-"):
            options.append(line)
        else:
            named.append(Requirement(line))
    return options, named, local


def makefile_torch() -> Requirement:
    m = re.search(r"^TORCH_SPEC\s*\?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert m, "the Makefile no longer defines TORCH_SPEC"
    return Requirement(m.group(1))


def pinned(req: Requirement) -> Version:
    (spec,) = req.specifier
    assert spec.operator == "==", f"{req} should pin one version"
    return Version(spec.version)


def project_dependencies() -> dict[str, Requirement]:
    return {canonicalize_name(Requirement(d).name): Requirement(d) for d in PYPROJECT["project"]["dependencies"]}


# ----------------------------------------------------------------------------- agreement (fast)

def test_binder_torch_is_the_makefile_version_as_the_cpu_build():
    options, named, _ = binder_requirements()
    torch = next(r for r in named if r.name == "torch")
    make = pinned(makefile_torch())
    binder = pinned(torch)
    assert binder.public == make.public, f"binder pins torch {binder}, the Makefile {make}: keep them the same"
    assert binder.local == "cpu", "Binder has no GPU: pin the +cpu build (PyPI's Linux wheel is the CUDA one)"
    assert f"--extra-index-url {CPU_INDEX}" in options, "the +cpu build is only on the PyTorch CPU index"
    assert project_dependencies()["torch"].specifier.contains(binder), "pyproject's torch range excludes it"


def test_binder_installs_vegviz_with_its_dependencies_and_no_test_tools():
    _, named, local = binder_requirements()
    assert len(local) == 1 and local[0].startswith("-e ."), \
        "vegviz must be installed editable from the repository (catalogs/ and dashboards/ sit next to it)"
    extras = set(re.findall(r"\[([^\]]*)\]", local[0])[0].split(",")) if "[" in local[0] else set()
    optional = PYPROJECT["project"]["optional-dependencies"]
    assert extras <= set(optional), f"binder asks for extras pyproject does not define: {extras - set(optional)}"
    assert "test" not in extras, "the test extra (Playwright) does not belong in the Binder image"
    # the notebooks' and dashboards' stack comes from [project.dependencies]; nothing pinned in
    # binder/requirements.txt may contradict it
    deps = project_dependencies()
    for req in named:
        name = canonicalize_name(req.name)
        if name in deps and any(s.operator == "==" for s in req.specifier):
            assert deps[name].specifier.contains(pinned(req), prereleases=True), \
                f"binder pins {req}, pyproject needs {deps[name]}"
    for needed in ("jupyterlab", "ipykernel", "panel", "jupyter-bokeh", "ipywidgets"):
        assert needed in deps, f"{needed} left pyproject's dependencies: add it to binder/requirements.txt"
    assert "jupyter-server-proxy" in {r.name for r in named}
    for extra in extras:  # e.g. tifffile for notebooks/04's sample GeoTIFFs
        assert all(not Requirement(r).name.startswith("playwright") for r in optional[extra])


def test_binder_python_and_scripts():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    m = re.fullmatch(r"python-(3\.\d+)", runtime)
    assert m, f"runtime.txt must read python-3.X, got {runtime!r}"
    from packaging.specifiers import SpecifierSet

    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(m.group(1) + ".0")
    for script in ("postBuild", "start"):
        path = BINDER / script
        assert os.access(path, os.X_OK), f"binder/{script} must be executable (repo2docker runs it)"
        assert path.read_text().startswith("#!/bin/bash")
    entry = PYPROJECT["project"]["entry-points"]["jupyter_serverproxy_servers"]
    assert entry == {"vegviz": "vegviz.binder:setup_dashboards"}


def _start_env(home: Path, **extra) -> dict:
    """The environment binder/start exports, run in front of `env` with this interpreter's python first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VEGVIZ_") and k not in ("OMP_NUM_THREADS", "MALLOC_ARENA_MAX")}
    env.update(HOME=str(home), PATH=f"{Path(sys.executable).parent}:{env['PATH']}", **extra)
    out = subprocess.run([str(BINDER / "start"), "env", "-0"], env=env, capture_output=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def test_start_exports_the_demo_environment_and_keeps_given_values(tmp_path):
    env = _start_env(tmp_path)
    assert env["VEGVIZ_DATA_DIR"] == str(Path(sys.prefix) / "share" / "vegviz")  # where postBuild builds
    assert env["VEGVIZ_RUNS_DIR"] == str(tmp_path / "vegviz-runs")
    assert env["VEGVIZ_DEMO"] == "binder" and env["VEGVIZ_VARIANT"] == "small"
    assert env["OMP_NUM_THREADS"] == "2" and env["MALLOC_ARENA_MAX"] == "2"
    given = _start_env(tmp_path, VEGVIZ_DATA_DIR=str(tmp_path / "d"), VEGVIZ_DEMO="")
    assert given["VEGVIZ_DATA_DIR"] == str(tmp_path / "d")


def test_demo_settings_reach_the_training_dashboard_only_in_demo_mode(monkeypatch):
    from vegviz.dashboards import TrainingDashboard
    from vegviz.demo import DEMO_SETTINGS, demo_config

    cfg = demo_config()
    assert cfg.data == "virtual_ucrb_small" and cfg.hparams.filters == DEMO_SETTINGS["hparams"]["filters"]
    assert cfg.periods.train[0].startswith("1998")  # the small basin's split from the catalog
    assert demo_config(model="lstm", max_epochs=1).model == "lstm"

    monkeypatch.delenv("VEGVIZ_DEMO", raising=False)
    plain = TrainingDashboard()
    assert plain.window == 365 and plain.filters == 16  # the study's defaults
    monkeypatch.setenv("VEGVIZ_DEMO", "binder")
    demo = TrainingDashboard()
    got = demo.config()
    for key in ("window", "burn_in", "stride", "chunk", "batch_size", "max_epochs", "patience", "data"):
        assert getattr(got, key) == getattr(cfg, key), key
    assert got.hparams.filters == cfg.hparams.filters
    assert got.num_threads == min(cfg.num_threads, os.cpu_count() or 1)
    assert TrainingDashboard(window=70, burn_in=20).window == 70  # given settings win
    assert "virtual_ucrb" in plain.param.data.objects and "virtual_ucrb" not in demo.param.data.objects


def test_proxy_entry_serves_the_dashboards_under_the_jupyter_prefix():
    from vegviz.binder import dashboards_dir, setup_dashboards

    spec = setup_dashboards()
    cmd = spec["command"]
    assert cmd[:4] == [sys.executable, "-m", "panel", "serve"] and Path(cmd[4]) == dashboards_dir()
    assert (dashboards_dir() / "main.py").exists()
    assert cmd[cmd.index("--port") + 1] == "{port}"
    assert cmd[cmd.index("--prefix") + 1] == "{base_url}vegviz"
    assert cmd[cmd.index("--address") + 1] == "127.0.0.1"  # reachable only through the authenticated proxy
    assert spec["absolute_url"] is True  # the prefix reaches panel, so its links and websocket carry it
    assert spec["launcher_entry"]["path_info"] == "vegviz/dashboards"


# ----------------------------------------------------------------------------- the install (slow)

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_requirements(path: Path) -> Path:
    """binder/requirements.txt for this machine: no PyTorch index (unreachable here), torch==X (CPU build here)."""
    lines = []
    for line in (BINDER / "requirements.txt").read_text().splitlines():
        if line.startswith("--extra-index-url") and CPU_INDEX in line:
            continue
        lines.append(re.sub(r"^torch==([\w.]+)\+cpu\b", r"torch==\1", line))
    path.write_text("\n".join(lines) + "\n")
    return path


NB_RUNNER = """
import sys, nbformat
from nbclient import NotebookClient
path, out = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
nb.cells.insert(0, nbformat.v4.new_code_cell("import sys; print('KERNEL', sys.prefix)"))
NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": sys.argv[3]}}).execute()
nbformat.write(nb, out)
"""


@pytest.fixture(scope="module")
def binder_venv(tmp_path_factory):
    """A fresh venv with binder/requirements.txt installed (pip's cache reused) and binder/postBuild run."""
    tmp = tmp_path_factory.mktemp("binder")
    venv, home = tmp / "venv", tmp / "home"
    home.mkdir()
    times = {}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r",
                          str(local_requirements(tmp / "requirements.txt"))], cwd=ROOT, capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-3000:]
    times["pip install"] = time.perf_counter() - t0
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEGVIZ_") and not k.startswith("JUPYTER")}
    env.update(HOME=str(home), PATH=f"{venv / 'bin'}:{env['PATH']}", JUPYTER_DATA_DIR=str(home / "jupyter-data"),
               JUPYTER_CONFIG_DIR=str(home / "jupyter-config"), JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"))
    env.pop("VIRTUAL_ENV", None)
    t0 = time.perf_counter()
    post = subprocess.run([str(BINDER / "postBuild")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert post.returncode == 0, post.stdout[-2000:] + post.stderr[-3000:]
    times["postBuild"] = time.perf_counter() - t0
    yield {"venv": venv, "home": home, "env": env, "tmp": tmp, "times": times}
    print("\nBinder install in a fresh venv:", ", ".join(f"{k} {v:.0f} s" for k, v in times.items()))


@pytest.mark.slow
def test_binder_install_gives_cpu_torch_and_a_consistent_environment(binder_venv):
    py = str(binder_venv["venv"] / "bin" / "python")
    out = subprocess.run([py, "-c", "import torch, vegviz, jupyter_server_proxy; print(torch.__version__, "
                          "torch.version.cuda, vegviz.__file__)"], capture_output=True, text=True, check=True)
    version, cuda, location = out.stdout.split()
    assert Version(version).public == pinned(makefile_torch()).public and cuda == "None", out.stdout
    assert Path(location).resolve().is_relative_to(ROOT), "vegviz should be the editable checkout"
    check = subprocess.run([py, "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    names = subprocess.run([py, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True)
    installed = {p["name"].lower() for p in json.loads(names.stdout)}
    assert not {n for n in installed if n.startswith("nvidia-")}, "a CUDA build crept in"
    assert "playwright" not in installed and "pytest" not in installed
    # postBuild built the small basin where binder/start points VEGVIZ_DATA_DIR
    data = binder_venv["venv"] / "share" / "vegviz"
    assert any(data.glob("virtual_ucrb-small-*.zarr")), sorted(p.name for p in data.iterdir())


def notebook_imports(path: Path) -> list[str]:
    """The top-level import statements of a notebook's code cells (IPython magics left out)."""
    import ast

    nb = nbformat.read(path, as_version=4)
    found = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            found += [ast.unparse(node) for node in ast.parse(code).body
                      if isinstance(node, (ast.Import, ast.ImportFrom))]
    return found


@pytest.mark.slow
def test_every_notebooks_imports_resolve_in_the_binder_venv(binder_venv):
    # what each notebook needs is installed; executing all four here too would repeat
    # tests/test_notebooks.py (same packages, see the agreement tests) at ~2.5 min of suite time
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "dashboards").glob("*.ipynb"))
    assert len(notebooks) >= 8
    statements = sorted({s for nb in notebooks for s in notebook_imports(nb)})
    assert any("vegviz.data" in s for s in statements) and any("TrainingDashboard" in s for s in statements)
    statements.append("import tifffile")  # imported lazily by notebook 04's sample GeoTIFFs ([sources] extra)
    run = subprocess.run([str(BINDER / "start"), "python", "-c", "\n".join(statements)], cwd=ROOT,
                         env=binder_venv["env"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.slow
# The tour is the first thing a Binder visitor opens: it runs here end to end, in the Binder venv.
@pytest.mark.parametrize("name", ["01_data_tour"])
def test_notebooks_execute_in_the_binder_venv(binder_venv, name):
    tmp, env = binder_venv["tmp"], binder_venv["env"]
    runner = tmp / "run_notebook.py"
    runner.write_text(NB_RUNNER)
    out = tmp / f"{name}.out.ipynb"
    t0 = time.perf_counter()
    run = subprocess.run([str(BINDER / "start"), "python", str(runner), str(ROOT / "notebooks" / f"{name}.ipynb"),
                          str(out), str(ROOT / "notebooks")], cwd=ROOT, env=env, capture_output=True, text=True)
    binder_venv["times"][name] = time.perf_counter() - t0
    assert run.returncode == 0, run.stderr[-4000:]
    nb = nbformat.read(out, as_version=4)
    first = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert first.strip() == f"KERNEL {binder_venv['venv']}", "the notebook ran outside the Binder venv"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors


@pytest.mark.slow
def test_jupyterlab_proxies_the_dashboards(binder_venv):
    """JupyterLab (the venv's, through binder/start) lists the vegviz server and serves the app under /vegviz/."""
    env, home = dict(binder_venv["env"]), binder_venv["home"]
    env["VEGVIZ_RUNS_DIR"] = str(home / "no-runs-yet")  # binder/start keeps it: the app opens on Training
    port, base = _free_port(), "/user/binder-test/"
    log = (home / "jupyter.log").open("w")
    server = subprocess.Popen([str(BINDER / "start"), "jupyter", "lab", "--no-browser", f"--port={port}",
                               "--ip=127.0.0.1", f"--ServerApp.base_url={base}", "--IdentityProvider.token=",
                               "--ServerApp.password=", *(["--allow-root"] if os.geteuid() == 0 else [])],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}{base}"
    try:
        t0 = time.time()
        while True:
            try:
                info = json.load(urllib.request.urlopen(url + "server-proxy/servers-info", timeout=10))
                break
            except OSError:
                assert server.poll() is None and time.time() - t0 < 120, (home / "jupyter.log").read_text()[-3000:]
                time.sleep(0.5)
        entry = next(s for s in info["server_processes"] if s["name"] == "vegviz")
        assert entry["launcher_entry"]["title"] == "vegviz dashboards"
        assert entry["launcher_entry"]["path_info"] == "vegviz/dashboards"
        # the first request starts panel serve (the app warms up) and is proxied to it
        app_url = url + "vegviz/dashboards"
        page = urllib.request.urlopen(app_url, timeout=300).read().decode()
        assert "Access refused" not in page, "the app refused the proxied browser (its client is not loopback?)"
        assert "vegviz · daily LAI" in page, page[:2000]
        scripts = re.findall(r'src="(static/js/bokeh[^"]*)"', page)  # relative: they stay under the proxy prefix
        assert scripts, page[:2000]
        assert urllib.request.urlopen(urljoin(app_url, scripts[0]), timeout=60).status == 200
        if Path(CHROMIUM).exists():  # a real browser: the page's websocket goes through the proxy too
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
                tab = browser.new_page()
                sockets = []
                tab.on("websocket", lambda ws: sockets.append(ws.url))
                tab.goto(app_url, timeout=300_000)
                tab.get_by_text("No results yet").first.wait_for(timeout=120_000)
                tab.locator(".bk-tab", has_text="Skill").first.click()  # built on the server, sent over the socket
                tab.get_by_text("No trained results yet").first.wait_for(timeout=120_000)
                browser.close()
            assert sockets == [f"ws://127.0.0.1:{port}{base}vegviz/dashboards/ws"]
    finally:
        os.killpg(server.pid, 15)  # the Jupyter server and the panel server it started
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
        log.close()
