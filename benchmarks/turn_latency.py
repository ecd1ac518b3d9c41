"""Turn latency and throughput of the demo store, measured over HTTP against a real server.

Starts ``frontdesk demo`` as a subprocess (on a fresh temporary data dir unless ``--data-dir``
is given), then runs three phases:

1. warm-up: ``--warmup`` messages, one at a time, not counted;
2. latency: ``--messages`` messages, one at a time; percentiles of the server-side turn time
   (the ``Server-Timing: turn;dur=<ms>`` response header) and of the client round trip;
3. throughput: ``--concurrency`` customers at once, each sending its next message as soon as
   the previous reply arrives, until ``--turns`` messages in all; replies per second and the
   server-side percentiles under that load.

Customers open a new conversation every ``--per-conversation`` messages. Messages are drawn
from ``benchmarks/questions.txt`` with light prefixes and suffixes (fixed seed), so most texts
differ. The end of the output compares against the targets (for a 2-core machine):
p50 <= 15 ms and p99 <= 50 ms sequential, >= 150 replies/s with 50 concurrent conversations.

Exit status: 0 after a complete measurement whatever the PASS/MISS lines say; 1 when some
request failed (non-200 or no response); 2 when the server does not start; 130 on Ctrl-C.

    .venv/bin/python benchmarks/turn_latency.py --messages 1000 --turns 1000 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = Path(__file__).resolve().with_name("questions.txt")
SEED = 20240601
HOST = "127.0.0.1"
START_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 60.0

TARGET_P50_MS = 15.0
TARGET_P99_MS = 50.0
TARGET_REPLIES_PER_S = 150.0

PREFIXES = ("hi, ", "hello, ", "hey, ", "hi there, ", "quick question: ", "sorry, ", "um ")
SUFFIXES = (" thanks", " please", " thx", "?", " :)", " thank you", "!")
# Greetings and thanks are sent as they are: decorated they would stop being small talk.
SMALL_TALK = re.compile(r"^(hi|hello|hey|good (morning|afternoon|evening)|thanks?|cheers)\b", re.I)


class ServerError(RuntimeError):
    """The server could not be started."""


# --------------------------------------------------------------------------- messages


def load_questions(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    questions = [line for line in lines if line and not line.startswith("#")]
    if not questions:
        raise SystemExit(f"no questions in {path}")
    return questions


def make_texts(questions: list[str], count: int, rng: random.Random) -> list[str]:
    """``count`` customer messages: a question, sometimes with a prefix and/or a suffix."""
    texts = []
    for _ in range(count):
        text = rng.choice(questions)
        if SMALL_TALK.match(text) and len(text.split()) <= 4:
            texts.append(text)
            continue
        if rng.random() < 0.5:
            prefix = rng.choice(PREFIXES)
            text = prefix + (text[0].lower() + text[1:] if rng.random() < 0.7 else text)
        elif rng.random() < 0.3:
            text = text[0].lower() + text[1:]
        if rng.random() < 0.4:
            text = text + rng.choice(SUFFIXES)
        texts.append(text)
    return texts


# --------------------------------------------------------------------------- statistics


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), ``q`` in [0, 100]."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def summary(values: list[float]) -> dict[str, float | int]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "mean": sum(ordered) / len(ordered) if ordered else float("nan"),
        "p50": percentile(ordered, 50),
        "p95": percentile(ordered, 95),
        "p99": percentile(ordered, 99),
        "max": ordered[-1] if ordered else float("nan"),
    }


@dataclass
class Phase:
    name: str
    server_ms: list[float] = field(default_factory=list)
    client_ms: list[float] = field(default_factory=list)
    messages: int = 0
    replied: int = 0
    cited: int = 0
    handoffs: int = 0
    conversations: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    missing_timing: int = 0
    wall_s: float = 0.0
    server_cpu_s: float | None = None
    client_cpu_s: float = 0.0

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "messages": self.messages,
            "replied": self.replied,
            "replied_with_citation": self.cited,
            "handoffs": self.handoffs,
            "conversations": self.conversations,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "missing_server_timing": self.missing_timing,
            "wall_s": round(self.wall_s, 3),
            "replies_per_s": round(self.replied / self.wall_s, 2) if self.wall_s else None,
            "server_ms": _rounded(summary(self.server_ms)),
            "client_ms": _rounded(summary(self.client_ms)),
            "client_cpu_s": round(self.client_cpu_s, 3),
        }
        if self.server_cpu_s is not None:
            data["server_cpu_s"] = round(self.server_cpu_s, 3)
        return data


def _rounded(values: dict[str, float | int]) -> dict[str, float | int]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()}


# --------------------------------------------------------------------------- customers


class RawResponse:
    def __init__(self, status_code: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class RawConnection:
    """A minimal HTTP/1.1 keep-alive client on one connection. A general client (httpx) costs
    more CPU per request than the server's turn does, and the client shares the machine's two
    cores with the server, so the throughput phase would measure the client instead."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, json_body: dict[str, Any]) -> RawResponse:
        if self._writer is None or self._reader is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        payload = json.dumps(json_body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        try:
            self._writer.write(head + payload)
            await self._writer.drain()
            status_line = await asyncio.wait_for(
                self._reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S
            )
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            await self.close()
            raise
        lines = status_line.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return RawResponse(status, headers, body)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


class Customer:
    """One customer: a conversation at a time, a new one every ``per_conversation`` messages
    or as soon as the bot hands the conversation over (it would stop replying)."""

    def __init__(self, client: RawConnection, phase: Phase, per_conversation: int) -> None:
        self.client = client
        self.phase = phase
        self.per_conversation = per_conversation
        self.conversation: str | None = None
        self.sent = 0

    async def _open(self) -> None:
        response = await self.client.post("/api/conversations", {"channel": "web"})
        if response.status_code != 201:
            raise RuntimeError(f"POST /api/conversations -> {response.status_code}")
        self.conversation = response.json()["id"]
        self.sent = 0
        self.phase.conversations += 1

    async def say(self, text: str) -> None:
        phase = self.phase
        phase.messages += 1
        try:
            if self.conversation is None or self.sent >= self.per_conversation:
                await self._open()
            body = {"text": text, "client_message_id": str(uuid.uuid4())}
            url = f"/api/conversations/{self.conversation}/messages"
            started = time.perf_counter()
            response = await self.client.post(url, body)
            elapsed_ms = (time.perf_counter() - started) * 1000
        except (
            OSError,
            asyncio.IncompleteReadError,
            TimeoutError,
            RuntimeError,
            KeyError,
            ValueError,
        ) as exc:
            phase.error(f"{type(exc).__name__}: {exc}")
            self.conversation = None
            return
        self.sent += 1
        if response.status_code != 200:
            phase.error(f"POST messages -> {response.status_code}: {response.text[:200]}")
            self.conversation = None
            return
        phase.client_ms.append(elapsed_ms)
        timing = response.headers.get("server-timing", "")
        try:
            phase.server_ms.append(float(timing.partition("dur=")[2].split(";")[0]))
        except ValueError:
            phase.missing_timing += 1
        turn = response.json()
        replies = turn.get("replies") or []
        if replies:
            phase.replied += 1
            if replies[0].get("citations"):
                phase.cited += 1
        if turn.get("handoff"):
            phase.handoffs += 1
            self.conversation = None


def new_connection(base_url: str) -> RawConnection:
    address = base_url.removeprefix("http://")
    host, _, port = address.partition(":")
    return RawConnection(host, int(port))


async def run_sequential(
    base_url: str, phase: Phase, texts: list[str], per_conversation: int, server: Server
) -> Phase:
    connection = new_connection(base_url)
    customer = Customer(connection, phase, per_conversation)
    cpu0, server_cpu0, t0 = time.process_time(), server.cpu_seconds(), time.perf_counter()
    for text in texts:
        await customer.say(text)
    phase.wall_s = time.perf_counter() - t0
    phase.client_cpu_s = time.process_time() - cpu0
    phase.server_cpu_s = _delta(server_cpu0, server.cpu_seconds())
    await connection.close()
    return phase


async def run_concurrent(
    base_url: str,
    phase: Phase,
    texts: list[str],
    concurrency: int,
    per_conversation: int,
    server: Server,
) -> Phase:
    queue: Iterator[str] = iter(texts)

    async def customer_loop(customer: Customer) -> None:
        # One event loop: taking the next text from the shared iterator needs no lock.
        for text in queue:
            await customer.say(text)

    connections = [new_connection(base_url) for _ in range(concurrency)]
    customers = [Customer(c, phase, per_conversation) for c in connections]
    cpu0, server_cpu0, t0 = time.process_time(), server.cpu_seconds(), time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for customer in customers:
            group.create_task(customer_loop(customer))
    phase.wall_s = time.perf_counter() - t0
    phase.client_cpu_s = time.process_time() - cpu0
    phase.server_cpu_s = _delta(server_cpu0, server.cpu_seconds())
    for connection in connections:
        await connection.close()
    return phase


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


class Server:
    """``frontdesk demo`` in a subprocess, its output appended to a log file. With ``env``,
    the caller's ``FRONTDESK_*`` and ``OPENAI_*`` variables are left out and ``env`` set
    instead; without, the server inherits them (e.g. ``FRONTDESK_PII_DETECTOR``)."""

    def __init__(
        self, port: int, data_dir: Path, log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.port = port
        self.data_dir = data_dir
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.start_s = 0.0

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        executable = Path(sys.executable).with_name("frontdesk")
        if not executable.exists():
            found = shutil.which("frontdesk")
            if found is None:
                raise ServerError("the frontdesk command was not found next to this Python")
            executable = Path(found)
        command = [
            str(executable),
            "demo",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        env = dict(os.environ)
        if self.env is not None:
            env = {k: v for k, v in env.items() if not k.startswith(("FRONTDESK_", "OPENAI_"))}
            env.update(self.env)
        # One client sends everything: the per-address and per-conversation rate limits would
        # measure the limiter, not the service.
        env.update(
            {"FRONTDESK_RATE_LIMIT_PER_IP": "0", "FRONTDESK_RATE_LIMIT_PER_CONVERSATION": "0"}
        )
        t0 = time.perf_counter()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        deadline = t0 + START_TIMEOUT_S
        while True:
            code = self.process.poll()
            if code is not None:
                raise ServerError(f"the server exited with status {code} while starting")
            with contextlib.suppress(httpx.HTTPError):
                response = httpx.get(f"{self.base_url}/health", timeout=2.0)
                if response.status_code == 200 and response.json().get("status") == "ok":
                    break
            if time.perf_counter() > deadline:
                raise ServerError(f"the server did not answer /health within {START_TIMEOUT_S} s")
            time.sleep(0.25)
        self.start_s = time.perf_counter() - t0

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server process so far (Linux only)."""
        if self.process is None:
            return None
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        # Progress bars redraw with carriage returns; keep what the last redraw left.
        cleaned = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
        return "\n".join(cleaned[-lines:])


# --------------------------------------------------------------------------- the report


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                model = line.split(":", 1)[1].strip()
                break
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    try:
        version = metadata.version("frontdesk")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "nproc": cpus,
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "frontdesk": version,
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "frontdesk_env": sorted(k for k in os.environ if k.startswith("FRONTDESK_")),
    }


def fmt(value: float | int | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:.1f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def print_report(
    info: dict[str, Any],
    phases: list[Phase],
    checks: list[dict[str, Any]],
    distinct: int,
    counted: int,
    server: Server,
    fresh: bool,
) -> None:
    print()
    print("Frontdesk turn latency (demo store, built-in models)")
    print(f"  machine : {info['nproc']} CPUs (nproc), {info['cpu_model']}")
    print(f"  python  : {info['python']}  frontdesk {info['frontdesk']}  {info['platform']}")
    print(f"  date    : {info['date']}")
    if info["frontdesk_env"]:
        print(f"  env     : {', '.join(info['frontdesk_env'])}")
    started = "new data dir, ingest included" if fresh else "reused data dir"
    print(f"  server  : started in {server.start_s:.1f} s ({started})")
    print()
    header = (
        f"{'phase':<24}{'msgs':>6}{'replied':>9}{'errors':>8}{'wall s':>8}{'reply/s':>9}"
        f"  {'':<7}{'p50':>7}{'p95':>7}{'p99':>7}{'max':>8}  (ms)"
    )
    print(header)
    print("-" * len(header))
    for phase in phases:
        rate = phase.replied / phase.wall_s if phase.wall_s else None
        for i, (label, values) in enumerate(
            (("server", phase.server_ms), ("client", phase.client_ms))
        ):
            s = summary(values)
            left = (
                f"{phase.name:<24}{phase.messages:>6}{phase.replied:>9}{phase.errors:>8}"
                f"{phase.wall_s:>8.2f}{fmt(rate):>9}"
                if i == 0
                else " " * 64
            )
            print(
                f"{left}  {label:<7}{fmt(s['p50']):>7}{fmt(s['p95']):>7}{fmt(s['p99']):>7}"
                f"{fmt(s['max']):>8}"
            )
    print()
    for phase in phases:
        extra = []
        if phase.server_cpu_s is not None and phase.wall_s:
            extra.append(f"server CPU {phase.server_cpu_s / phase.wall_s:.2f} cores")
        if phase.wall_s:
            extra.append(f"client CPU {phase.client_cpu_s / phase.wall_s:.2f} cores")
        cited = 100 * phase.cited / phase.replied if phase.replied else 0.0
        print(
            f"  {phase.name}: {phase.conversations} conversations, {phase.handoffs} handoffs, "
            f"{cited:.0f}% of replies cite an article, {', '.join(extra)}"
        )
        if phase.missing_timing:
            print(f"    {phase.missing_timing} responses without a Server-Timing header")
    print(f"  distinct texts: {distinct} of {counted} counted messages")
    print()
    header = f"{'target (2-core machine)':<48}{'measured':>12}  result"
    print(header)
    print("-" * len(header))
    for check in checks:
        print(f"{check['name']:<48}{check['display']:>12}  {check['result']}")
    errors = sum(phase.errors for phase in phases)
    print(f"{'errors (non-200 or no response), should be 0':<48}{errors:>12}  ", end="")
    print("OK" if errors == 0 else "FAIL")
    for phase in phases:
        for sample in phase.error_samples:
            print(f"    {phase.name}: {sample}")


def make_checks(sequential: Phase, concurrent: Phase, concurrency: int) -> list[dict[str, Any]]:
    seq = summary(sequential.server_ms)
    rate = concurrent.replied / concurrent.wall_s if concurrent.wall_s else 0.0
    rows = [
        ("p50 server-side, sequential", float(seq["p50"]), " ms", "<=", TARGET_P50_MS),
        ("p99 server-side, sequential", float(seq["p99"]), " ms", "<=", TARGET_P99_MS),
        (
            f"replies/s, {concurrency} concurrent conversations",
            rate,
            "/s",
            ">=",
            TARGET_REPLIES_PER_S,
        ),
    ]
    checks = []
    for name, value, unit, op, target in rows:
        ok = value <= target if op == "<=" else value >= target
        checks.append(
            {
                "name": f"{name} {op} {target:g}{unit}",
                "measured": round(value, 3),
                "target": target,
                "display": f"{value:.1f}{unit}",
                "result": "PASS" if ok and value == value else "MISS",
            }
        )
    return checks


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Measure Frontdesk's server-side turn latency (sequential) and throughput "
            "(concurrent conversations) on the demo store over HTTP."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--messages", type=int, default=1000, help="messages in the sequential latency phase"
    )
    parser.add_argument(
        "--concurrency", type=int, default=50, help="concurrent customers in the throughput phase"
    )
    parser.add_argument(
        "--turns", type=int, default=1000, help="messages in all in the throughput phase"
    )
    parser.add_argument(
        "--warmup", type=int, default=50, help="warm-up messages first (not counted)"
    )
    parser.add_argument(
        "--per-conversation",
        type=int,
        default=4,
        help="messages per conversation before a customer opens a new one",
    )
    parser.add_argument("--port", type=int, default=None, help="server port (default: a free one)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="reuse this data dir (skips re-embedding); default: a fresh temporary one",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--seed", type=int, default=SEED, help="seed for choosing messages")
    args = parser.parse_args(argv)
    for name in ("messages", "concurrency", "turns", "per_conversation"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    return args


async def measure(
    args: argparse.Namespace, server: Server, texts: dict[str, list[str]]
) -> tuple[Phase, Phase]:
    url = server.base_url
    print(f"warm-up: {args.warmup} messages ...", file=sys.stderr, flush=True)
    warm = Phase("warm-up")
    await run_sequential(url, warm, texts["warmup"], args.per_conversation, server)
    if warm.errors:
        print(f"  warm-up errors: {warm.error_samples}", file=sys.stderr)
    print(f"latency: {args.messages} messages, one at a time ...", file=sys.stderr, flush=True)
    sequential = await run_sequential(
        url, Phase("sequential"), texts["latency"], args.per_conversation, server
    )
    print(
        f"throughput: {args.turns} messages from {args.concurrency} concurrent customers ...",
        file=sys.stderr,
        flush=True,
    )
    concurrent = await run_concurrent(
        url,
        Phase(f"concurrent ({args.concurrency})"),
        texts["throughput"],
        args.concurrency,
        args.per_conversation,
        server,
    )
    return sequential, concurrent


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    questions = load_questions(QUESTIONS)
    texts = {
        "warmup": make_texts(questions, args.warmup, rng),
        "latency": make_texts(questions, args.messages, rng),
        "throughput": make_texts(questions, args.turns, rng),
    }
    counted = texts["latency"] + texts["throughput"]

    port = args.port if args.port is not None else free_port()
    if not port_is_free(port):
        print(f"error: port {port} is already in use", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="frontdesk-bench-"))
    data_dir = scratch / "data" if args.data_dir is None else args.data_dir.resolve()
    # A data dir without a database means the server ingests (embeds) everything on start.
    fresh = not (data_dir / "frontdesk.db").exists()
    server = Server(port, data_dir, scratch / "server.log")
    keep_scratch = False
    # SIGTERM ends the benchmark like Ctrl-C, so the server is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        print(
            f"starting frontdesk demo on {server.base_url} (data dir {data_dir}) ...",
            file=sys.stderr,
            flush=True,
        )
        try:
            server.start()
        except ServerError as exc:
            keep_scratch = True
            print(f"error: {exc}; server output ({server.log_path}):", file=sys.stderr)
            print(server.log_tail(), file=sys.stderr)
            return 2
        print(f"server ready in {server.start_s:.1f} s", file=sys.stderr, flush=True)
        sequential, concurrent = asyncio.run(measure(args, server, texts))
        server_exit = server.process.poll() if server.process else None
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        server.stop()
        if not keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    info = machine()
    checks = make_checks(sequential, concurrent, args.concurrency)
    print_report(
        info, [sequential, concurrent], checks, len(set(counted)), len(counted), server, fresh
    )
    errors = sequential.errors + concurrent.errors
    if server_exit is not None:
        print(f"the server exited during the run (status {server_exit})")
    if args.json is not None:
        result = {
            "machine": info,
            "settings": {
                "messages": args.messages,
                "concurrency": args.concurrency,
                "turns": args.turns,
                "warmup": args.warmup,
                "per_conversation": args.per_conversation,
                "seed": args.seed,
                "new_data_dir": fresh,
            },
            "server_start_s": round(server.start_s, 3),
            "distinct_texts": len(set(counted)),
            "counted_messages": len(counted),
            "sequential": sequential.to_json(),
            "concurrent": concurrent.to_json(),
            "targets": checks,
            "errors": errors,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 1 if errors or server_exit is not None else 0


if __name__ == "__main__":
    sys.exit(main())
