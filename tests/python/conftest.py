"""Shared fixtures for the Python client tests: real boto3 and the real aws CLI against a
real `kedge serve` process.

Fixtures (names are stable; other suites, e.g. DynamoDB, rely on them):

- ``kedge_bin``            path to the kedge binary (``$KEDGE_BIN`` or target/debug/kedge)
- ``kedge_server_factory`` ``start(*extra_args, data_dir=None, in_memory=False)`` → KedgeServer;
                           every server it starts is stopped (and must exit 0) at teardown
- ``kedge_server``         a fresh ``kedge serve --data-dir <tmp>`` for the test:
                           ``.url``, ``.data_dir``, ``.proc``, ``.restart()``
- ``kedge_endpoint``       ``kedge_server.url`` (``http://127.0.0.1:PORT``)
- ``aws_client``           ``aws_client("sqs", endpoint=None, **creds)`` → boto3 client
- ``sqs``                  boto3 SQS client for ``kedge_endpoint``
- ``aws_cli``              ``aws_cli("sqs", "list-queues")`` → parsed JSON output;
                           ``aws_cli.run(...)`` → CompletedProcess (for error cases)
"""

from __future__ import annotations

import json
import os
import pathlib
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time

import boto3
import pytest
from botocore.config import Config

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_KEDGE_BIN = REPO_ROOT / "target" / "debug" / "kedge"
READY_PREFIX = "kedge serve listening on "
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0

ACCESS_KEY = "test"
SECRET_KEY = "test"
REGION = "us-east-1"
ACCOUNT_ID = "000000000000"


def _aws_cli_path() -> str:
    """The aws CLI next to the running interpreter (the venv's), else the one on PATH."""
    override = os.environ.get("AWS_CLI")
    if override:
        return override
    candidate = pathlib.Path(sys.executable).parent / "aws"
    if candidate.exists():
        return str(candidate)
    venv = REPO_ROOT / ".venv" / "bin" / "aws"
    if venv.exists():
        return str(venv)
    found = shutil.which("aws")
    if found:
        return found
    pytest.fail("aws CLI not found: install it in the venv (.venv/bin/pip install awscli)")


class KedgeServer:
    """One `kedge serve` process (restartable on the same data directory)."""

    def __init__(self, binary: pathlib.Path, data_dir: pathlib.Path | None, log_dir: pathlib.Path,
                 extra_args: tuple[str, ...] = (), in_memory: bool = False):
        self.binary = pathlib.Path(binary)
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.extra_args = tuple(extra_args)
        self.in_memory = in_memory
        self.proc: subprocess.Popen | None = None
        self.url: str = ""
        self.host: str = ""
        self.port: int = 0
        self.starts = 0
        self.last_exit_code: int | None = None
        self.stop_requested = False

    # ----- lifecycle ------------------------------------------------------------------

    def _command(self, bind: str) -> list[str]:
        cmd = [str(self.binary), "serve", "--bind", bind]
        if self.in_memory:
            cmd.append("--in-memory")
        else:
            cmd += ["--data-dir", str(self.data_dir)]
        cmd += list(self.extra_args)
        return cmd

    def _stderr_path(self) -> pathlib.Path:
        return self.log_dir / f"kedge-serve-{self.starts}.stderr.log"

    def stderr_text(self) -> str:
        try:
            return self._stderr_path().read_text(errors="replace")
        except OSError:
            return ""

    def start(self, bind: str = "127.0.0.1:0") -> "KedgeServer":
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self.starts += 1
        self.stop_requested = False
        stderr = open(self._stderr_path(), "wb")
        # Settings the server reads from the environment would change what the tests expect
        # (KEDGE_CREDENTIALS, KEDGE_BIND, KEDGE_DATA_DIR, AWS_REGION): only flags count.
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith("KEDGE_") and k != "KEDGE_LOG") and k != "AWS_REGION"}
        try:
            self.proc = subprocess.Popen(
                self._command(bind),
                stdout=subprocess.PIPE,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        finally:
            stderr.close()
        lines: queue.Queue = queue.Queue()
        proc = self.proc

        def pump():
            # Read the ready line, then keep draining stdout so the server never blocks on it.
            for raw in iter(proc.stdout.readline, b""):
                lines.put(raw.decode(errors="replace").rstrip("\r\n"))
            lines.put(None)

        threading.Thread(target=pump, daemon=True, name="kedge-stdout").start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                raise RuntimeError(
                    f"kedge serve did not print its listening line within {START_TIMEOUT_S}s; "
                    f"stderr:\n{self.stderr_text()}"
                )
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                rc = proc.wait(timeout=5)
                raise RuntimeError(
                    f"kedge serve exited with {rc} before it was ready ({self._command(bind)}); "
                    f"stderr:\n{self.stderr_text()}"
                )
            if line.startswith(READY_PREFIX):
                self.url = line[len(READY_PREFIX):].strip().rstrip("/")
                hostport = self.url.split("://", 1)[1]
                self.host, port = hostport.rsplit(":", 1)
                self.port = int(port)
                return self

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM and wait; returns the exit code (raises if it does not exit in time)."""
        proc = self.proc
        if proc is None:
            return 0
        self.stop_requested = True
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                raise AssertionError(
                    f"kedge serve did not exit within {timeout}s of SIGTERM; stderr:\n{self.stderr_text()}"
                )
        self.last_exit_code = proc.returncode
        return proc.returncode

    def restart(self) -> "KedgeServer":
        """SIGTERM (must exit 0), then start again on the same data directory.

        The same port is reused when it is free again, so queue URLs stay valid; otherwise a
        new port is picked and ``.url`` changes.
        """
        rc = self.stop()
        assert rc == 0, f"kedge serve exited with {rc} on SIGTERM; stderr:\n{self.stderr_text()}"
        old_port = self.port
        try:
            return self.start(bind=f"127.0.0.1:{old_port}")
        except RuntimeError:
            return self.start()

    def kill(self):
        """SIGKILL (no graceful shutdown), e.g. to test crash durability; ``start()`` again after."""
        self.stop_requested = True
        self._kill()

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __repr__(self) -> str:
        return f"KedgeServer(url={self.url!r}, data_dir={str(self.data_dir)!r})"


# ----- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kedge_bin() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("KEDGE_BIN") or DEFAULT_KEDGE_BIN)
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"kedge binary not found at {path}: build it with `cd {REPO_ROOT} && cargo build -p kedge` "
            "(or point KEDGE_BIN at a built binary)",
            pytrace=False,
        )
    return path


@pytest.fixture
def kedge_server_factory(kedge_bin, tmp_path_factory):
    """Start extra servers: ``start("--credentials", "AK:SECRET")``; all are stopped at teardown."""
    servers: list[KedgeServer] = []

    def start(*extra_args: str, data_dir: pathlib.Path | None = None, in_memory: bool = False) -> KedgeServer:
        base = tmp_path_factory.mktemp("kedge")
        if data_dir is None and not in_memory:
            data_dir = base / "data"
            data_dir.mkdir()
        server = KedgeServer(kedge_bin, data_dir, base, extra_args, in_memory=in_memory)
        servers.append(server)
        return server.start()

    yield start

    failures = []
    for server in servers:
        if server.proc is None:
            continue
        was_running = server.running
        if not was_running and not server.stop_requested:
            failures.append(f"{server!r} died during the test (exit status {server.proc.returncode}); "
                            f"stderr:\n{server.stderr_text()}")
            continue
        try:
            rc = server.stop()
        except AssertionError as e:
            failures.append(str(e))
            continue
        if was_running and rc != 0:
            failures.append(f"{server!r} exited with {rc} on SIGTERM; stderr:\n{server.stderr_text()}")
    assert not failures, "\n".join(failures)


@pytest.fixture
def kedge_server(kedge_server_factory) -> KedgeServer:
    return kedge_server_factory()


@pytest.fixture
def kedge_endpoint(kedge_server) -> str:
    return kedge_server.url


def make_client(service: str, endpoint: str, access_key: str = ACCESS_KEY,
                secret_key: str = SECRET_KEY, region: str = REGION, **config):
    cfg = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=config.pop("read_timeout", 40),
        **config,
    )
    return _shared_session().client(
        service,
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=cfg,
    )


def make_resource(service: str, endpoint: str, access_key: str = ACCESS_KEY,
                  secret_key: str = SECRET_KEY, region: str = REGION):
    """boto3's resource layer (e.g. ``sqs.Queue``, ``dynamodb.Table``) for an endpoint."""
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=40)
    return _shared_session().resource(
        service,
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=cfg,
    )


_SESSION: boto3.session.Session | None = None


def _shared_session() -> boto3.session.Session:
    """One boto3 session for the whole run: it caches the service models, which makes creating
    a client per test cheap (a fresh session re-parses them, ~0.2 s per client)."""
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session(region_name=REGION)
    return _SESSION


@pytest.fixture
def aws_client(request):
    """``aws_client("dynamodb")`` → boto3 client for the test's kedge server (or ``endpoint=``)."""

    def factory(service: str, endpoint: str | None = None, **kw):
        if endpoint is None:
            endpoint = request.getfixturevalue("kedge_endpoint")
        return make_client(service, endpoint, **kw)

    return factory


@pytest.fixture
def sqs(kedge_endpoint):
    return make_client("sqs", kedge_endpoint)


def cli_env(tmp: pathlib.Path, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") or k in ("AWS_CLI",)}
    env.update(
        AWS_ACCESS_KEY_ID=access_key,
        AWS_SECRET_ACCESS_KEY=secret_key,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(tmp / "aws-config-absent"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "aws-credentials-absent"),
        AWS_PAGER="",
        AWS_MAX_ATTEMPTS="1",
        AWS_RETRY_MODE="standard",
    )
    return env


class AwsCliError(AssertionError):
    def __init__(self, result: subprocess.CompletedProcess):
        self.result = result
        super().__init__(
            f"aws {' '.join(result.args[1:])} exited {result.returncode}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )


class AwsCli:
    """Runs the real aws CLI against an endpoint with test credentials."""

    def __init__(self, endpoint: str, tmp: pathlib.Path, access_key: str = ACCESS_KEY,
                 secret_key: str = SECRET_KEY):
        self.endpoint = endpoint
        self.binary = _aws_cli_path()
        self.env = cli_env(tmp, access_key, secret_key)

    def run(self, *args: str, endpoint: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [self.binary, *args, "--endpoint-url", endpoint or self.endpoint, "--output", "json"]
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=timeout)

    def __call__(self, *args: str, **kw):
        result = self.run(*args, **kw)
        if result.returncode != 0:
            raise AwsCliError(result)
        out = result.stdout.strip()
        return json.loads(out) if out else {}


@pytest.fixture
def aws_cli(kedge_endpoint, tmp_path) -> AwsCli:
    return AwsCli(kedge_endpoint, tmp_path)
