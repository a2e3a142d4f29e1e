"""Starting the upstream and each target as its own process, and finding the peers.

Each start_* function returns a Target once its port accepts connections; stop() ends
the process group it started (nginx's workers and corsproxy's workers included).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nginx_conf
from drive import BIG_BYTES, ORIGIN
from report import REFERENCE

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".peers"
NODE_PEERS = {"cors-anywhere": "0.4.4", "local-cors-proxy": "1.1.0"}
CORS_ANYWHERE_JS = """
const [module, port] = process.argv.slice(1);
require(module).createServer({}).listen(Number(port), "127.0.0.1", () => console.log("ready"));
"""


@dataclass(slots=True)
class Target:
    """A running server: `target.url("/api/item")` is where wrk sends that case."""

    name: str
    base: str
    process: subprocess.Popen
    log: Path
    echoes_origin: bool = True  # expected Access-Control-Allow-Origin: the origin (else `*`)
    credentials: bool = True  # expected Access-Control-Allow-Credentials: true
    cors: bool = True  # False for the upstream, which must send no CORS header at all
    notes: list[str] = field(default_factory=list)
    helpers: list[subprocess.Popen] = field(default_factory=list)  # stopped with it

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str) -> str:
        return self.base + path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env() -> dict[str, str]:
    """The environment without proxy settings: Node's request libraries would honour them."""
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


def launch(
    args: list[str], log: Path, port: int, what: str, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start args in a new session, output to log; return once 127.0.0.1:port accepts."""
    with log.open("w") as out:
        process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**child_env(), **(env or {})},
            start_new_session=True,
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    stop(process)
    raise RuntimeError(f"{what} did not listen on port {port} within 20 s:\n{log.read_text()}")


def stop_target(target: Target) -> None:
    for helper in target.helpers:
        stop(helper)
    stop(target.process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group this script started, SIGKILL after 5 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def node_peer(name: str) -> Path | None:
    """The installed package directory under bench/.peers, if node and the package are there."""
    package = PEERS / "node_modules" / name
    if shutil.which("node") and (package / "package.json").exists():
        return package
    return None


def prepare_files(workdir: Path) -> None:
    """The upstream's document root: the 64 MiB /big (bench/upstream.py makes its own)."""
    www = workdir / "www"
    www.mkdir()
    chunk = bytes(range(256)) * 4096  # 1 MiB
    with (www / "big").open("wb") as big:
        for _ in range(BIG_BYTES // len(chunk)):
            big.write(chunk)
    workdir.chmod(0o755)
    www.chmod(0o755)


def start_nginx(workdir: Path, name: str, template: str, **values: str | int) -> subprocess.Popen:
    nginx = nginx_binary()
    assert nginx is not None, "caller checks nginx_binary() first"
    port = int(values["PORT"])
    conf = nginx_conf.write(workdir, name, template, WORKERS="auto", **values)
    args = [nginx, "-p", str(workdir), "-e", str(workdir / f"{name}-error.log"), "-c", str(conf)]
    return launch(args, workdir / f"{name}.out", port, f"nginx ({name})")


def start_upstream(workdir: Path) -> Target:
    """nginx serving the three paths when installed, else bench/upstream.py (aiohttp)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if nginx_binary():
        process = start_nginx(workdir, "upstream", nginx_conf.UPSTREAM, PORT=port)
        name = "direct to the upstream"
        note = "upstream: nginx (one worker per core, access log off, /big by sendfile)"
    else:
        args = [sys.executable, str(HERE / "upstream.py"), str(port)]
        process = launch(args, workdir / "upstream.out", port, "bench/upstream.py")
        name = "direct to the upstream"
        note = "upstream: bench/upstream.py (aiohttp; nginx is not installed, so it is slower)"
    target = Target(name, base, process, workdir / "upstream.out", cors=False)
    target.notes.append(note)
    return target


def start_nginx_cors(workdir: Path, upstream_port: int, buffer_size: str) -> Target:
    """nginx_conf.CORS in front of the upstream; buffer_size "" keeps nginx's proxy buffers."""
    port = free_port()
    values: dict[str, str | int] = {
        "PORT": port,
        "UP": upstream_port,
        "BUFFERS": nginx_conf.buffers(buffer_size),
    }
    process = start_nginx(workdir, "nginx-cors", nginx_conf.CORS, **values)
    base = f"http://127.0.0.1:{port}"
    target = Target("nginx with a CORS config", base, process, workdir / "nginx-cors.out")
    shown = f"16 × {buffer_size} (--nginx-buffers)" if buffer_size else "nginx's defaults (8 × 4k)"
    target.notes.append(
        f"nginx CORS config: bench/nginx_conf.py, one worker per core, proxy buffers {shown}"
    )
    return target


def start_corsproxy(
    workdir: Path,
    upstream_port: int,
    extra: list[str],
    label: str = "",
    command: list[str] | None = None,
) -> Target:
    """`python -m corsproxy serve` at --log-level info: the access log on, into a file.

    With `--workers=N` among the extra arguments the target is named "corsproxy, N workers";
    a label (the flags of a --corsproxy-row) names it "corsproxy LABEL". With `--https` among
    them it is reached over HTTPS (its authority made in the bench's own CORSPROXY_HOME).
    command replaces `python -m corsproxy` (another checkout's venv: a before/after row).
    """
    port = free_port()
    up = f"http://127.0.0.1:{upstream_port}"
    args = [*(command or [sys.executable, "-m", "corsproxy"]), "serve", up, "--port", str(port)]
    args += ["--log-level", "info", *extra]
    workers = next((a.split("=", 1)[1] for a in extra if a.startswith("--workers=")), "1")
    name = "corsproxy" if workers == "1" else f"corsproxy, {workers} workers"
    name = f"corsproxy {label}" if label else name
    log = workdir / f"corsproxy-{port}.log"
    home = {"CORSPROXY_HOME": str(workdir / "corsproxy-home")}
    process = launch(args, log, port, name, home)
    scheme = "https" if "--https" in extra else "http"
    target = Target(name, f"{scheme}://127.0.0.1:{port}", process, log)
    shown = ["python", "-m", "corsproxy", *args[3:]] if command is None else args
    target.notes.append(f"{name} command: {' '.join(shown)}")
    return target


def watch_inspector(target: Target) -> Target:
    """Keep a subscriber on the inspector's event stream (what its open page does) via curl.

    The token is read from the `inspector: URL?token=...` start-up line; the stream's events
    are read and thrown away for as long as the target runs.
    """
    deadline = time.monotonic() + 10
    while (url := inspector_url(target.log)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{target.name}: no inspector line:\n{target.log.read_text()}")
        time.sleep(0.05)
    token = url.split("?token=", 1)[1]
    events = f"{target.base}/__corsproxy/api/events"
    args = ["curl", "-sNk", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}", events]
    watcher = subprocess.Popen(args, start_new_session=True, env=child_env())
    target.helpers.append(watcher)
    target.notes.append(f"{target.name}: a subscriber (curl -N) on {events} during the run")
    return target


def inspector_url(log: Path) -> str | None:
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("inspector: ") and "?token=" in line:
            return line.split(" ", 1)[1].strip()
    return None


def start_reference(
    workdir: Path, upstream_port: int, origin: str = ORIGIN, delay_ms: float = 0
) -> Target:
    """bench/reference_proxy.py: a plain aiohttp + uvloop proxy; delay_ms slows every answer."""
    port = free_port()
    up = f"http://127.0.0.1:{upstream_port}"
    args = [sys.executable, str(HERE / "reference_proxy.py"), up, str(port), "--origin", origin]
    name = REFERENCE
    if delay_ms:
        args += ["--delay-ms", str(delay_ms)]
        name = f"{REFERENCE}, {delay_ms:g} ms slower"
    log = workdir / f"reference-{delay_ms:g}.out"
    process = launch(args, log, port, name)
    target = Target(name, f"http://127.0.0.1:{port}", process, log)
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio's loop (uvloop missing)"
    target.notes.append(f"{name}: bench/reference_proxy.py on {loop}, for reference only")
    return target


def start_cors_anywhere(workdir: Path, upstream_port: int) -> Target:
    package = node_peer("cors-anywhere")
    assert package is not None, "caller checks node_peer() first"
    port = free_port()
    args = ["node", "-e", CORS_ANYWHERE_JS, str(package), str(port)]
    process = launch(args, workdir / "cors-anywhere.out", port, "cors-anywhere")
    base = f"http://127.0.0.1:{port}/http://127.0.0.1:{upstream_port}"
    return Target(
        "cors-anywhere (Node)", base, process, workdir / "cors-anywhere.out", False, False
    )


def start_local_cors_proxy(workdir: Path, upstream_port: int, origin: str = ORIGIN) -> Target:
    package = node_peer("local-cors-proxy")
    assert package is not None, "caller checks node_peer() first"
    port = free_port()
    args = ["node", str(package / "bin" / "lcp.js"), "--port", str(port)]
    args += ["--proxyUrl", f"http://127.0.0.1:{upstream_port}", "--credentials"]
    args += ["--origin", origin]
    log = workdir / "local-cors-proxy.out"
    process = launch(args, log, port, "local-cors-proxy")
    base = f"http://127.0.0.1:{port}/proxy"
    return Target("local-cors-proxy (Node)", base, process, log)


def install_peers() -> None:
    """--peers: nginx and wrk from apt, the Node peers from npm into bench/.peers."""
    apt = [p for p, ok in (("nginx", nginx_binary()), ("wrk", shutil.which("wrk"))) if not ok]
    if not shutil.which("npm"):
        apt += ["nodejs", "npm"]
    if apt:
        print(f"bench: apt-get install -y {' '.join(apt)}", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *apt], check=True)
    missing = [f"{n}@{v}" for n, v in NODE_PEERS.items() if node_peer(n) is None]
    if missing:
        print(f"bench: npm install {' '.join(missing)} into {PEERS}", file=sys.stderr)
        PEERS.mkdir(exist_ok=True)
        npm = ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(PEERS), *missing]
        subprocess.run(npm, check=True)
