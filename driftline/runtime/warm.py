"""The warm worker: one local process that has imported the heavy libraries once and forks a child per CLI command.

A fresh ``driftline monitor`` or ``driftline check`` spends most of its time importing Prefect, Great Expectations,
whylogs, scikit-learn and XGBoost (10+ s here) before it touches a 30-row batch. The warm worker pays that once:
``driftline server start --warm`` starts it beside the managed Prefect server, and each later command
(``FORWARDED``) hands it its argv, cwd, environment and stdin/stdout/stderr over a Unix socket; the worker forks a
child that runs the command on the caller's terminal and sends back the exit code. The same pattern as nailgun,
Spring's devtools and gunicorn's ``--preload``.

- **Fallback.** No worker, a stale socket, a worker on another interpreter: the command runs in its own process, as
  without the worker. A killed worker leaves a socket nobody listens on; the next command falls back.
- **No stale code.** The worker imports third-party libraries only (``WARM_LIBRARIES``), never driftline's own
  modules, flows or tasks: the child imports those fresh, so an edited flow runs as edited.
- **Fork safety.** The worker refuses to serve if importing the libraries started a thread; it opens no client,
  event loop or database engine. Prefect reads its settings when imported: the child reads them again when the
  caller's PREFECT_* variables differ from the worker's (and ``driftline.runtime.server.connect`` once it sets
  PREFECT_API_URL).
- **Signals.** Ctrl-C or SIGTERM to the command is passed to the child; a command whose caller dies (its socket
  closes) is stopped with SIGTERM.

``driftline server stop`` and ``make clean`` stop it (``stop``).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from driftline.errors import DriftlineError

# What a run imports, Prefect's engine included; nothing of driftline's own (see the module docstring).
WARM_LIBRARIES = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "sqlalchemy",
    "scipy.stats",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.metrics",
    "xgboost",
    "great_expectations",
    "whylogs",
    "whylogs.viz.drift.column_drift_algorithms",
    "prefect.flows",
    "prefect.tasks",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.artifacts",
    "prefect.events",
    "prefect.cache_policies",
    "prefect.client.orchestration",
)
# The commands that import heavy libraries and end by themselves: the long-running ones (serve, serve-flows, demo)
# and the server's own commands always run in their own process.
FORWARDED = frozenset(
    {
        "check",
        "monitor",
        "train",
        "retrain",
        "evaluate",
        "status",
        "ledger",
        "lineage",
        "models",
        "drift",
        "backtest",
        "replay",
        "verify",
        "trust",
    }
)
SOCKET_NAME = "warm.sock"
# A worker's socket to use instead of the project's own (one worker serves any project: the child takes the
# caller's environment), e.g. for a bench that gives each run a state directory of its own.
SOCKET_VARIABLE = "DRIFTLINE_WARM_SOCKET"
PID_NAME = "warm.pid"
LOG_NAME = "warm.log"
MAX_SOCKET_PATH = 100  # a Unix socket's path is at most 107 bytes on Linux
_MESSAGE_LIMIT = 1 << 20
# The worker this process started, by state dir: it outlives the command that started it, on purpose; stop reaps it.
_started: dict[Path, subprocess.Popen[bytes]] = {}


def home(state_dir: Path) -> Path:
    return state_dir / "warm"


def socket_path(state_dir: Path) -> Path:
    return home(state_dir) / SOCKET_NAME


# --- the caller's side ------------------------------------------------------------------------------------------


def forwardable(argv: Sequence[str]) -> bool:
    """Whether ``argv`` names a command the worker runs: not help, not a long-running or server command."""
    return bool(argv) and argv[0] in FORWARDED and not any(a in ("--help", "-h") for a in argv)


def forward(argv: Sequence[str], state_dir: Path | None = None) -> int | None:
    """Run ``argv`` in the warm worker on this process's stdio and return its exit code; None when there is none.

    None means: run the command here (no worker, a stale socket, or the worker declined it).
    """
    if not forwardable(argv):
        return None
    if state_dir is None:
        from driftline.settings import get_settings

        state_dir = get_settings().state_dir
    path = Path(os.environ.get(SOCKET_VARIABLE) or socket_path(state_dir))
    if not path.exists():
        return None
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(str(path))
    except OSError:  # refused: the worker died and left its socket
        client.close()
        return None
    with client:
        request = {"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ), "python": sys.executable}
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        try:
            socket.send_fds(client, [json.dumps(request).encode()], [0, 1, 2])
        except OSError:  # no stdin/stdout/stderr to hand over (closed): run here
            return None
        previous = {sig: signal.signal(sig, _relay(client)) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            reply = _read_all(client)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if not reply:
        print(
            "error: the warm worker's child ended without an exit code; see .driftline/warm/warm.log", file=sys.stderr
        )
        return 1
    answer = json.loads(reply)
    return None if "fallback" in answer else int(answer["exit"])


def _relay(client: socket.socket) -> Callable[[int, FrameType | None], None]:
    def relay(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):
            client.send(bytes([signum]))

    return relay


def _read_all(client: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        try:
            chunk = client.recv(65536)
        except InterruptedError:  # pragma: no cover - PEP 475 retries recv after a handled signal
            continue
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


# --- the worker ---------------------------------------------------------------------------------------------------


def warm_up(libraries: Sequence[str] = WARM_LIBRARIES) -> None:
    """Import the heavy libraries, telemetry off and whylogs' numpy shim applied; fail if a thread was started."""
    from driftline.libs import numpy_compat
    from driftline.settings import quiet_telemetry

    quiet_telemetry()
    numpy_compat()
    for name in libraries:
        importlib.import_module(name)
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:
        raise DriftlineError(f"warm worker: importing the libraries started threads {threads}; forking is not safe")


def serve(path: Path, runner: str, libraries: Sequence[str] = WARM_LIBRARIES) -> None:
    """Warm up, then accept commands on the Unix socket ``path`` until SIGTERM.

    ``runner`` (``module:function``, given by the CLI that starts the worker) runs one command's argv in a child
    and returns its exit code; the child imports it after the fork, with driftline's own modules fresh.
    """
    warm_up(libraries)
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    listener.settimeout(1.0)
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"warm worker {os.getpid()} ready on {path}", flush=True)
    try:
        while not stopping:
            _reap()
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except InterruptedError:  # pragma: no cover
                continue
            with connection:
                _start_child(connection, listener, runner)
    finally:
        listener.close()
        path.unlink(missing_ok=True)


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _start_child(connection: socket.socket, listener: socket.socket, runner: str) -> None:
    connection.settimeout(10.0)
    try:
        message, fds, _, _ = socket.recv_fds(connection, _MESSAGE_LIMIT, 3)
        if not message:  # a probe (``running``): connected and closed
            return
        request = json.loads(message)
    except (OSError, ValueError) as error:
        print(f"warm worker: a malformed request ({error}); dropped", flush=True)
        return
    try:
        if request.get("python") != sys.executable or len(fds) != 3:
            connection.sendall(json.dumps({"fallback": f"the worker runs {sys.executable}"}).encode())
            return
        pid = os.fork()
        if pid == 0:  # the child: never returns
            listener.close()
            _run_child(connection, fds, request, runner)
        print(f"warm worker: {' '.join(request['argv'])} in child {pid}", flush=True)
    finally:
        for fd in fds:
            os.close(fd)


def _run_child(connection: socket.socket, fds: list[int], request: dict[str, object], runner: str) -> None:
    code = 1
    finished = threading.Event()
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the caller's stdio, open as long as the child runs
        sys.stdout = open(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
        os.chdir(str(request["cwd"]))
        before = _prefect_environment()
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in dict(request["env"]).items()})  # type: ignore[call-overload]
        if _prefect_environment() != before and "prefect.context" in sys.modules:
            from prefect.context import refresh_global_settings_context

            refresh_global_settings_context()  # Prefect read its settings when the worker imported it
        argv = [str(a) for a in request["argv"]]  # type: ignore[attr-defined]
        sys.argv = ["driftline", *argv]
        connection.settimeout(None)
        threading.Thread(target=_watch_caller, args=(connection, finished), daemon=True).start()
        for name in [m for m in sys.modules if m == "driftline" or m.startswith("driftline.")]:
            del sys.modules[name]  # driftline's own code as it is now on disk, not as the worker found it
        module, _, function = runner.partition(":")
        code = int(getattr(importlib.import_module(module), function)(argv))
    except BaseException as error:
        with contextlib.suppress(BaseException):
            print(f"error: warm worker child: {error!r}", file=sys.stderr)
    finally:
        # As a process that exits normally: the exit handlers the command registered (Prefect drains its log and
        # event workers there), then the caller gets the code; os._exit skips the worker's own cleanup.
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        finished.set()
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(BaseException):
            connection.sendall(json.dumps({"exit": code}).encode())
        os._exit(code)


def _prefect_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key.startswith("PREFECT_")}


def _watch_caller(connection: socket.socket, finished: threading.Event) -> None:
    """Pass the caller's signals on to this child; stop it if the caller goes away."""
    while True:
        try:
            data = connection.recv(16)
        except OSError:
            data = b""
        if finished.is_set():
            return
        if not data:
            os.kill(os.getpid(), signal.SIGTERM)
            return
        for signum in data:
            os.kill(os.getpid(), signum)


# --- starting and stopping it ----------------------------------------------------------------------------------


def running(state_dir: Path) -> int | None:
    """The worker's pid if it runs and answers on its socket."""
    pid_file = home(state_dir) / PID_NAME
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with probe:
        try:
            probe.connect(str(socket_path(state_dir)))
        except OSError:
            return None
    return pid


def start(state_dir: Path, runner: str, libraries: Sequence[str] = WARM_LIBRARIES, timeout: float = 180.0) -> int:
    """Start the warm worker for this project (or return the one running); wait until it listens.

    ``runner`` is the ``module:function`` that runs a command in the worker's child (see ``serve``).
    """
    from driftline.runtime.processes import launch

    pid = running(state_dir)
    if pid is not None:
        return pid
    path = socket_path(state_dir)
    if len(str(path)) > MAX_SOCKET_PATH:
        raise DriftlineError(f"warm worker: socket path {path} is longer than {MAX_SOCKET_PATH} bytes")
    home(state_dir).mkdir(parents=True, exist_ok=True)
    log = home(state_dir) / LOG_NAME
    command = [sys.executable, "-m", "driftline.runtime.warm", str(path), runner, ",".join(libraries)]
    process = launch(command, log, append=True)
    _started[state_dir.resolve()] = process
    (home(state_dir) / PID_NAME).write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running(state_dir) is not None:
            return process.pid
        if process.poll() is not None:
            raise DriftlineError(f"warm worker exited with code {process.returncode}; see {log}")
        time.sleep(0.2)
    stop(state_dir)
    raise DriftlineError(f"warm worker not listening after {timeout:.0f} s; see {log}")


def stop(state_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the warm worker (its running children finish); return whether one was running."""
    pid_file = home(state_dir) / PID_NAME
    process = _started.pop(state_dir.resolve(), None)
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pid = None
    if pid is not None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if process is not None:
        process.wait(timeout=timeout)
    pid_file.unlink(missing_ok=True)
    socket_path(state_dir).unlink(missing_ok=True)
    return pid is not None


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a child of this process that ended is reaped here."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


if __name__ == "__main__":
    del sys.path[0]  # ``-m`` put the start directory first; the child imports as the console script does
    serve(Path(sys.argv[1]), sys.argv[2], [name for name in sys.argv[3].split(",") if name])
