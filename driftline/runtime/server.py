"""The managed local Prefect server: ``prefect server start`` on SQLite under driftline's state directory.

Prefect's ephemeral mode is not a home for driftline: events emitted from another process start their own
temporary server and are lost, and it runs no scheduler. So driftline starts a real server (once; it is reused
while it runs) and points PREFECT_API_URL at it. A PREFECT_API_URL already set by the user wins.

A server's home holds its SQLite database, its log, its pid (``server.pid``) and its port (``server.port``), so
``driftline server stop|status --home HOME`` finds a server started on any port (the demo's, for one).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from driftline.errors import ServerError
from driftline.runtime.processes import launch
from driftline.runtime.zombies import default_heartbeat
from driftline.settings import TELEMETRY_OFF, get_settings, quiet_telemetry

_started: dict[Path, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ServerInfo:
    api_url: str
    ui_url: str
    home: Path | None  # None when the server is not one driftline manages
    pid: int | None


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:port (so a server can be started there)."""
    with socket.socket() as sock:
        # As uvicorn binds: a connection lingering in TIME_WAIT from a stopped server does not take the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _pid_file(home: Path) -> Path:
    return home / "server.pid"


def _port_file(home: Path) -> Path:
    return home / "server.port"


def _urls(port: int) -> tuple[str, str]:
    return f"http://127.0.0.1:{port}/api", f"http://127.0.0.1:{port}"


def start(home: Path, port: int, timeout: float = 120.0) -> ServerInfo:
    """Start ``prefect server start`` on 127.0.0.1:port with its SQLite database under ``home``; wait until healthy."""
    api_url, ui_url = _urls(port)
    home.mkdir(parents=True, exist_ok=True)
    if healthy(api_url):
        return ServerInfo(api_url, ui_url, home, _read_pid(home))
    env = {
        **os.environ,
        **{k: os.environ.get(k, v) for k, v in TELEMETRY_OFF.items()},
        "PREFECT_HOME": str(home),
        "PREFECT_UI_URL": ui_url,
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
    }
    process = launch(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        home / "server.log",
        env=env,
        append=True,
    )
    _started[home.resolve()] = process  # keep the handle: the server outlives this call, on purpose
    _pid_file(home).write_text(str(process.pid))
    _port_file(home).write_text(str(port))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(api_url, timeout=1.0):
            return ServerInfo(api_url, ui_url, home, process.pid)
        if process.poll() is not None:
            raise ServerError(
                f"prefect server on port {port} exited with code {process.returncode}; see {home / 'server.log'}"
            )
        time.sleep(0.5)
    stop(home)
    raise ServerError(f"prefect server on port {port} not healthy after {timeout:.0f} s; see {home / 'server.log'}")


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _read_pid(home: Path) -> int | None:
    return _read_int(_pid_file(home))


def running(home: Path) -> ServerInfo | None:
    """The server driftline started under ``home``, if it still runs and answers on the port it was started on."""
    pid, port = _read_pid(home), _read_int(_port_file(home))
    if pid is None or port is None:
        return None
    try:
        os.killpg(pid, 0)
    except (ProcessLookupError, PermissionError):
        return None
    api_url, ui_url = _urls(port)
    return ServerInfo(api_url, ui_url, home, pid) if healthy(api_url) else None


def start_own(home: Path, preferred_port: int) -> ServerInfo:
    """Reuse the server running under ``home``, or start one on ``preferred_port`` (another free port if taken).

    Unlike ``start``, never adopts a server that merely answers on the port: it may be another project's.
    """
    info = running(home)
    if info is not None:
        return info
    return start(home, preferred_port if port_free(preferred_port) else free_port())


def stop(home: Path, timeout: float = 20.0) -> bool:
    """Stop the server driftline started under ``home``; return whether one was running."""
    pid = _read_pid(home)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        _pid_file(home).unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(pid, signal.SIGKILL)
    process = _started.pop(home.resolve(), None)
    if process is not None:
        process.wait(timeout=timeout)
    _pid_file(home).unlink(missing_ok=True)
    _port_file(home).unlink(missing_ok=True)
    return True


def ensure(home: Path, port: int) -> ServerInfo:
    """Use PREFECT_API_URL if the user set it; otherwise start (or reuse) driftline's managed server."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        if not healthy(configured):
            raise ServerError(f"PREFECT_API_URL={configured} is not answering (GET /health failed)")
        return ServerInfo(configured, os.environ.get("PREFECT_UI_URL", configured.removesuffix("/api")), None, None)
    return start(home, port)


def connect() -> ServerInfo:
    """Make sure a Prefect API is reachable and exported as PREFECT_API_URL before Prefect is imported."""
    quiet_telemetry()
    default_heartbeat()  # before Prefect is imported: its settings are read once
    settings = get_settings()
    info = ensure(settings.prefect_home, settings.prefect_port)
    os.environ["PREFECT_API_URL"] = info.api_url
    os.environ.setdefault("PREFECT_UI_URL", info.ui_url)
    if "prefect.context" in sys.modules:  # imported already (the warm worker's child): read the settings again
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
    return info
