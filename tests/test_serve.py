"""`vegviz serve` beyond this machine: only the browser origins the user names may open a session."""
from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess

import pytest

from conftest import wait_until_up
from vegviz import cli


def serve_args(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["serve", *argv])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def test_a_reachable_server_needs_named_origins(capsys, tmp_path):
    app = tmp_path / "app.py"
    app.write_text("import panel as pn\npn.panel('hello').servable()\n")
    port = free_port()
    assert cli.main(["serve", str(app), "--address", "0.0.0.0", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert "any site could open a session" in err and "Fix: name the address" in err and "--allow-origin" in err
    assert cli.main(["serve", str(app), "--address", "0.0.0.0", "--port", str(port), "--allow-origin", f"*:{port}"]) == 2
    assert "no wildcard" in capsys.readouterr().err
    assert cli.main(["serve", str(app), "--port", str(port), "--allow-origin", "myhost:1"]) == 2
    assert "Fix: add --address 0.0.0.0" in capsys.readouterr().err

    cmd, env = cli.serve_command(serve_args(str(app), "--address", "0.0.0.0", "--port", str(port), "--allow-origin",
                                            f"a.example:{port}", "--allow-origin", f"b.example:{port}",
                                            "--basic-auth", "secret"))
    assert cmd.count("--allow-websocket-origin") == 2 and f"a.example:{port}" in cmd and "*" not in " ".join(cmd)
    assert cmd[cmd.index("--basic-auth") + 1] == "secret" and len(cmd[cmd.index("--cookie-secret") + 1]) == 64
    assert env["VEGVIZ_ALLOW_REMOTE"] == "1"
    cmd, env = cli.serve_command(serve_args(str(app), "--port", str(port)))  # this machine only: nothing to name
    assert "--allow-websocket-origin" not in cmd


async def _websocket_status(url: str, origin: str) -> int:
    """101 when the server accepts the websocket handshake from ``origin``, else its HTTP status."""
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    try:
        conn = await websocket_connect(HTTPRequest(url, headers={"Origin": origin}))
    except HTTPClientError as e:
        return e.code
    conn.close()
    return 101


def test_a_websocket_from_an_unnamed_origin_is_refused(tmp_path):
    app = tmp_path / "app.py"
    app.write_text("import panel as pn\npn.panel('hello').servable()\n")
    port = free_port()
    cmd, env = cli.serve_command(serve_args(str(app), "--address", "0.0.0.0", "--port", str(port),
                                            "--allow-origin", f"127.0.0.1:{port}"))
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/app", proc, log, "panel serve")
        ws = f"ws://127.0.0.1:{port}/app/ws"
        assert asyncio.run(_websocket_status(ws, f"http://127.0.0.1:{port}")) == 101  # the named origin
        assert asyncio.run(_websocket_status(ws, "http://evil.example")) == 403  # any other page
        assert asyncio.run(_websocket_status(ws, f"http://evil.example:{port}")) == 403
    finally:
        proc.terminate()
        proc.wait(15)
    assert "Refusing websocket connection from Origin 'http://evil.example'" in log.read_text()


def test_the_server_threads_are_set_by_serve_or_the_environment(monkeypatch, tmp_path, capsys):
    """``vegviz serve --threads N`` reaches the app's server hook as VEGVIZ_SERVER_THREADS; a bad value is refused
    with the fix, and 0 means no pool (every session on the event loop)."""
    from vegviz.dashboards import app as app_module

    app = tmp_path / "app.py"
    app.write_text("import panel as pn\npn.panel('hello').servable()\n")
    _, env = cli.serve_command(serve_args(str(app), "--port", str(free_port()), "--threads", "3"))
    assert env[app_module.SERVER_THREADS_ENV] == "3"
    assert cli.main(["serve", str(app), "--port", str(free_port()), "--threads", "-1"]) == 2
    assert "0 or more" in capsys.readouterr().err
    monkeypatch.delenv(app_module.SERVER_THREADS_ENV, raising=False)
    assert app_module.server_threads() == app_module.SERVER_THREADS
    monkeypatch.setenv(app_module.SERVER_THREADS_ENV, "0")
    assert app_module.server_threads() == 0
    monkeypatch.setenv(app_module.SERVER_THREADS_ENV, "many")
    with pytest.raises(ValueError, match="not a number of threads.*Fix"):
        app_module.server_threads()
