"""What Frontdesk adds around a model call, and time to first token at the widget.

Starts ``frontdesk demo`` as a subprocess (on a fresh temporary data dir unless ``--data-dir``
is given) three or four times on the same data dir, and a model server in this process
(``tests/model_servers.ScriptedModelServer``, real HTTP on loopback), then runs:

1. selection (extractive backend): every question of ``benchmarks/questions.txt`` in a
   conversation of its own; the questions the service answers from the help centre (stored
   ``meta.action == "answer"``, no flow) are the knowledge questions used below;
2. extractive: ``--warmup`` then ``--messages`` knowledge questions (light prefixes and
   suffixes, fixed seed), one at a time, a new conversation every ``--per-conversation``
   messages; the server-side turn time (``Server-Timing: turn;dur=<ms>``);
3. model path: the same messages with ``FRONTDESK_MODEL_BACKEND=openai`` pointed at the scripted
   server, which answers at once with the first sentences of the first help-centre passage of
   the prompt, so that the guard passes them. Per turn, *overhead* = server-side turn time -
   the model's own time as Frontdesk sees it (the reply's ``meta.model.model_ms``: the time
   spent awaiting the model's stream, the HTTP request and the SDK's parsing included), read
   from the database afterwards;
4. time to first token: ``--ttft-messages`` questions over the WebSocket
   (``/api/conversations/{id}/ws``), the scripted server now waiting ``--first-delay`` s before
   its first word and ``--chunk-delay`` s between words: the first ``draft`` frame (the widget's
   first token) and the final bot ``message`` frame, from the moment the frame was sent, beside
   the model's own time to first token (``meta.model.first_token_ms``);
5. with ``--real``: the same over the WebSocket with SmolLM2-135M served by llama.cpp
   (``scripts/model_server.sh`` with ``--real-threads`` threads, 1 by default: two threads on
   two cores shared with the service crawl), ``--real-messages`` questions after one warm-up.

Each WebSocket turn has a conversation of its own. The end of the output compares the overhead
against the target: p50 <= 10 ms. The machine's load average is printed at the start and end
(other work on a 2-core machine moves every figure).

Exit status: 0 after a complete measurement whatever the PASS/MISS line says (also when
``--real`` could not start the model server: the output says so); 1 when some request failed
(non-200, no response, a WebSocket turn without its reply); 2 when the service does not start;
130 on Ctrl-C.

    .venv/bin/python benchmarks/model_overhead.py --messages 300 --real --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from turn_latency import (
    HOST,
    QUESTIONS,
    SMALL_TALK,
    RawConnection,
    Server,
    ServerError,
    fmt,
    free_port,
    load_questions,
    machine,
    make_texts,
    percentile,
    port_is_free,
    summary,
)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import model_servers  # noqa: E402  (tests/ holds the scripted OpenAI-compatible server)

SEED = 20240601
REPLY_TIMEOUT_S = 90.0
MODEL_SERVER_SCRIPT = REPO / "scripts" / "model_server.sh"

TARGET_OVERHEAD_P50_MS = 10.0

# The scripted model's answer: this many sentences (and words) of the first passage at most.
REPLY_SENTENCES = 3
REPLY_WORDS = 60
_PASSAGE = re.compile(r"^\[([^\]\n]+)\] [^\n:]*: (.*?)(?=^\[[^\]\n]+\] |\Z)", re.M | re.S)
_MARKUP = re.compile(r"[#*_`>|]+|^\s*[-+]\s+|\s+[-+]\s+(?=[A-Z])", re.M)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


# --------------------------------------------------------------------------- the model


class GroundedModelServer(model_servers.ScriptedModelServer):
    """Answers every chat request with the first sentences of the first knowledge passage
    of its prompt (markup dropped, the passage id cited), as a model that follows its
    instructions would, so the guard passes it. ``first_delay`` / ``chunk_delay`` as in
    ``ScriptedReply``; text streams word by word."""

    def __init__(self) -> None:
        super().__init__(model="scripted-model")
        self.first_delay = 0.0
        self.chunk_delay = 0.0
        self.no_passage = 0

    def next_reply(
        self, body: model_servers.Json, headers: dict[str, str]
    ) -> model_servers.ScriptedReply:
        super().next_reply(body, headers)  # records the request
        messages = body.get("messages") or []
        prompt = "\n".join(str(m.get("content") or "") for m in messages)
        text = grounded_answer(prompt)
        if text is None:
            self.no_passage += 1
            text = "I'm not sure about that one; I can connect you with a person."
        usage = (len(prompt) // 4, len(text) // 4)
        return model_servers.ScriptedReply(
            text=text, first_delay=self.first_delay, chunk_delay=self.chunk_delay, usage=usage
        )


def grounded_answer(prompt: str) -> str | None:
    """The first sentences of the prompt's first knowledge passage, with its citation."""
    _, found, block = prompt.partition("Knowledge passages (cite")
    if not found:
        return None
    block = block.split("\n", 1)[1] if "\n" in block else ""
    match = _PASSAGE.search(block.split("\n\nCustomer context:", 1)[0])
    if match is None:
        return None
    cite_id, passage = match.group(1), match.group(2)
    plain = " ".join(_MARKUP.sub(" ", passage).split())
    sentences: list[str] = []
    words = 0
    for sentence in _SENTENCE.split(plain):
        if not sentence or (sentences and words + len(sentence.split()) > REPLY_WORDS):
            break
        sentences.append(sentence)
        words += len(sentence.split())
        if len(sentences) >= REPLY_SENTENCES:
            break
    if not sentences:
        return None
    # The mark after the last full stop, as models often write it: each sentence is then
    # complete when the next word (or the mark) arrives.
    return " ".join(sentences) + f" [{cite_id}]"


class RealModelServer:
    """SmolLM2-135M on llama.cpp's server, through ``scripts/model_server.sh``."""

    def __init__(self, directory: Path, threads: int) -> None:
        self.directory = directory
        self.threads = threads
        self.url: str | None = None
        self.start_s = 0.0

    def start(self) -> None:
        t0 = time.perf_counter()
        done = subprocess.run(
            [str(MODEL_SERVER_SCRIPT), "start", str(self.directory)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env={**os.environ, "FRONTDESK_MODEL_THREADS": str(self.threads)},
        )
        if done.returncode != 0 or not done.stdout.strip().startswith("http"):
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
            raise ServerError(f"scripts/model_server.sh start failed ({done.returncode}): {tail}")
        self.url = done.stdout.strip().splitlines()[-1]
        self.start_s = time.perf_counter() - t0

    def stop(self) -> None:
        subprocess.run(
            [str(MODEL_SERVER_SCRIPT), "stop", str(self.directory)],
            cwd=REPO,
            capture_output=True,
            timeout=60,
            check=False,
        )


# --------------------------------------------------------------------------- the service


def read_meta(data_dir: Path, ids: list[str]) -> dict[str, dict[str, Any]]:
    """``messages.meta`` of the given message ids (a JSON column, not sealed)."""
    found: dict[str, dict[str, Any]] = {}
    with contextlib.closing(sqlite3.connect(data_dir / "frontdesk.db", timeout=30)) as db:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(f"SELECT id, meta FROM messages WHERE id IN ({marks})", chunk)
            for message_id, meta in rows:
                found[message_id] = json.loads(meta) if isinstance(meta, str) else (meta or {})
    return found


# --------------------------------------------------------------------------- turns


@dataclass
class Turn:
    text: str
    server_ms: float | None = None
    client_ms: float | None = None
    reply_id: str | None = None
    # over the WebSocket, from the moment the message frame was sent
    first_draft_ms: float | None = None
    first_draft_words: int = 0
    drafts: int = 0
    final_ms: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> dict[str, Any] | None:
        model = self.meta.get("model")
        return model if isinstance(model, dict) else None


@dataclass
class Run:
    name: str
    turns: list[Turn] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    server_cpu_s: float | None = None
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)

    def model_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.model is not None]

    def fallbacks(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for turn in self.model_turns():
            reason = (turn.model or {}).get("fallback")
            if reason:
                counts[str(reason)] = counts.get(str(reason), 0) + 1
        return counts


def progress(label: str, done: int, total: int) -> None:
    if done == total or done % max(1, total // 5) == 0:
        print(f"  {label}: {done}/{total}", file=sys.stderr, flush=True)


def _post_failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


async def open_conversation(client: RawConnection) -> str:
    try:
        response = await client.post("/api/conversations", {"channel": "web"})
    except (OSError, asyncio.IncompleteReadError):
        # The server closes a keep-alive connection idle for 5 s (a slow model's turn).
        response = await client.post("/api/conversations", {"channel": "web"})
    if response.status_code != 201:
        raise RuntimeError(f"POST /api/conversations -> {response.status_code}")
    return str(response.json()["id"])


async def http_turns(
    service: Server, run: Run, texts: list[str], per_conversation: int, label: str
) -> None:
    """``texts`` one at a time over HTTP; a new conversation every ``per_conversation``."""
    client = RawConnection(HOST, service.port)
    conversation: str | None = None
    sent = 0
    cpu0, t0 = service.cpu_seconds(), time.perf_counter()
    for number, text in enumerate(texts, 1):
        turn = Turn(text)
        run.turns.append(turn)
        try:
            if conversation is None or sent >= per_conversation:
                conversation, sent = await open_conversation(client), 0
            body = {"text": text, "client_message_id": str(uuid.uuid4())}
            started = time.perf_counter()
            response = await client.post(f"/api/conversations/{conversation}/messages", body)
            turn.client_ms = (time.perf_counter() - started) * 1000
        except (OSError, asyncio.IncompleteReadError, TimeoutError, RuntimeError) as exc:
            run.error(_post_failure(exc))
            conversation = None
            continue
        sent += 1
        if response.status_code != 200:
            run.error(f"POST messages -> {response.status_code}: {response.text[:200]}")
            conversation = None
            continue
        timing = response.headers.get("server-timing", "")
        with contextlib.suppress(ValueError):
            turn.server_ms = float(timing.partition("dur=")[2].split(";")[0])
        result = response.json()
        replies = result.get("replies") or []
        if replies:
            turn.reply_id = str(replies[0]["id"])
        if result.get("handoff"):
            conversation = None
        progress(label, number, len(texts))
    run.wall_s = time.perf_counter() - t0
    cpu1 = service.cpu_seconds()
    run.server_cpu_s = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    await client.close()


async def socket_turns(service: Server, run: Run, texts: list[str], label: str) -> None:
    """Each text in a conversation of its own, over the WebSocket: the first ``draft`` frame
    and the final bot ``message`` frame, timed from the moment the message frame was sent."""
    client = RawConnection(HOST, service.port)
    t0 = time.perf_counter()
    for number, text in enumerate(texts, 1):
        turn = Turn(text)
        run.turns.append(turn)
        try:
            conversation = await open_conversation(client)
            url = f"ws://{HOST}:{service.port}/api/conversations/{conversation}/ws"
            async with websockets.connect(url, max_size=None, open_timeout=30) as socket:
                first = json.loads(await asyncio.wait_for(socket.recv(), 30))
                if first.get("type") != "conversation":
                    raise RuntimeError(f"first frame {first.get('type')!r}")
                await asyncio.wait_for(one_socket_turn(socket, turn), REPLY_TIMEOUT_S)
        except (
            OSError,
            asyncio.IncompleteReadError,
            TimeoutError,
            RuntimeError,
            ValueError,
            websockets.exceptions.WebSocketException,
        ) as exc:
            run.error(_post_failure(exc))
            continue
        progress(label, number, len(texts))
    run.wall_s = time.perf_counter() - t0
    await client.close()


async def one_socket_turn(socket: Any, turn: Turn) -> None:
    client_message_id = str(uuid.uuid4())
    frame = {"type": "message", "text": turn.text, "client_message_id": client_message_id}
    await socket.send(json.dumps(frame))
    started = time.perf_counter()
    customer_id: str | None = None
    while True:
        event = json.loads(await socket.recv())
        now_ms = (time.perf_counter() - started) * 1000
        kind = event.get("type")
        if kind == "error":
            raise RuntimeError(f"error frame: {event.get('error')}")
        if kind == "draft" and customer_id is not None and event.get("reply_to") == customer_id:
            turn.drafts += 1
            if turn.first_draft_ms is None:
                turn.first_draft_ms = now_ms
                turn.first_draft_words = len(str(event.get("text", "")).split())
        elif kind == "message":
            message = event["message"]
            if message["role"] == "customer" and message["client_message_id"] == client_message_id:
                customer_id = message["id"]
            elif message["role"] == "bot" and customer_id and message["reply_to"] == customer_id:
                turn.final_ms = now_ms
                turn.reply_id = str(message["id"])
                return


# --------------------------------------------------------------------------- phases


async def select_knowledge(service: Server, questions: list[str], run: Run) -> list[str]:
    """The questions the demo store answers from its help centre (one conversation each)."""
    candidates = [q for q in dict.fromkeys(questions) if not SMALL_TALK.match(q)]
    await http_turns(service, run, candidates, 1, "selection")
    metas = read_meta(service.data_dir, [t.reply_id for t in run.turns if t.reply_id])
    chosen = []
    for turn in run.turns:
        meta = metas.get(turn.reply_id or "", {})
        turn.meta = meta
        if (
            meta.get("action") == "answer"
            and meta.get("reason") != "approved_answer"
            and "flow" not in meta
        ):
            chosen.append(turn.text)
    return chosen


def attach_meta(data_dir: Path, *runs: Run) -> None:
    ids = [t.reply_id for run in runs for t in run.turns if t.reply_id]
    metas = read_meta(data_dir, ids)
    for run in runs:
        for turn in run.turns:
            turn.meta = metas.get(turn.reply_id or "", {})


def start_service(service: Server, what: str) -> None:
    print(f"starting frontdesk demo ({what}) on {service.base_url} ...", file=sys.stderr)
    service.start()
    print(f"  ready in {service.start_s:.1f} s", file=sys.stderr, flush=True)


def loadavg() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


# --------------------------------------------------------------------------- measuring


@dataclass
class Results:
    selection: Run = field(default_factory=lambda: Run("selection"))
    extractive: Run = field(default_factory=lambda: Run("extractive"))
    written: Run = field(default_factory=lambda: Run("model path"))
    ttft: Run = field(default_factory=lambda: Run("ttft scripted"))
    real: Run = field(default_factory=lambda: Run("ttft SmolLM2"))
    chosen: list[str] = field(default_factory=list)
    starts: dict[str, float] = field(default_factory=dict)
    real_note: str = "not run (use --real)"
    no_passage: int = 0
    fresh: bool = True

    @property
    def runs(self) -> list[Run]:
        return [self.selection, self.extractive, self.written, self.ttft, self.real]


def measure(args: argparse.Namespace, port: int, data_dir: Path, scratch: Path) -> Results:
    """Every phase, in order; ServerError when a service does not start (its log is in
    ``scratch``)."""
    results = Results(fresh=not (data_dir / "frontdesk.db").exists())
    rng = random.Random(args.seed)
    log_path = scratch / "server.log"
    model = GroundedModelServer()
    real_model = RealModelServer(scratch / "model-server", args.real_threads)
    service: Server | None = None
    try:
        model.start()
        openai_env = {
            "FRONTDESK_MODEL_BACKEND": "openai",
            "FRONTDESK_OPENAI_BASE_URL": model.url,
            "FRONTDESK_OPENAI_MODEL": model.model,
        }
        service = Server(port, data_dir, log_path, {"FRONTDESK_MODEL_BACKEND": "extractive"})
        start_service(service, "extractive" + (", new data dir" if results.fresh else ""))
        results.starts["extractive"] = service.start_s
        results.selection.load_before = loadavg()
        chosen = asyncio.run(
            select_knowledge(service, load_questions(QUESTIONS), results.selection)
        )
        if not chosen:
            raise ServerError("no question was answered from the help centre")
        results.chosen = chosen
        print(
            f"  {len(chosen)} of {len(results.selection.turns)} questions are answered from the "
            "help centre",
            file=sys.stderr,
        )
        warm = make_texts(chosen, args.warmup, rng)
        texts = make_texts(chosen, args.messages, rng)
        ttft_texts = make_texts(chosen, args.ttft_messages, rng)
        real_texts = make_texts(chosen, args.real_messages, rng)
        per = args.per_conversation

        asyncio.run(http_turns(service, Run("warm-up"), warm, per, "warm-up"))
        results.extractive.load_before = loadavg()
        asyncio.run(http_turns(service, results.extractive, texts, per, "extractive"))
        service.stop()
        attach_meta(data_dir, results.extractive)

        service = Server(port, data_dir, log_path, openai_env)
        start_service(service, "openai backend, scripted model")
        results.starts["scripted model"] = service.start_s
        asyncio.run(http_turns(service, Run("warm-up"), warm, per, "warm-up"))
        results.written.load_before = loadavg()
        asyncio.run(http_turns(service, results.written, texts, per, "model path"))
        model.first_delay, model.chunk_delay = args.first_delay, args.chunk_delay
        results.ttft.load_before = loadavg()
        asyncio.run(socket_turns(service, results.ttft, ttft_texts, "ttft scripted"))
        service.stop()
        results.no_passage = model.no_passage
        attach_meta(data_dir, results.written, results.ttft)

        if args.real:
            print("starting SmolLM2 (scripts/model_server.sh) ...", file=sys.stderr)
            try:
                real_model.start()
            except (ServerError, OSError, subprocess.TimeoutExpired) as exc:
                results.real_note = f"could not start the model server: {exc}"
                print(f"  {results.real_note}", file=sys.stderr)
                return results
            assert real_model.url is not None
            results.real_note = (
                f"{args.real_threads} llama.cpp thread(s), started in {real_model.start_s:.1f} s"
            )
            real_env = {
                **openai_env,
                "FRONTDESK_OPENAI_BASE_URL": real_model.url,
                "FRONTDESK_OPENAI_MODEL": "smollm2",
            }
            service = Server(port, data_dir, log_path, real_env)
            start_service(service, "openai backend, SmolLM2")
            results.starts["SmolLM2"] = service.start_s
            # The first call of a fresh llama.cpp server is slower (not counted).
            asyncio.run(socket_turns(service, Run("warm-up"), warm[:1], "warm-up"))
            results.real.load_before = loadavg()
            asyncio.run(socket_turns(service, results.real, real_texts, "ttft SmolLM2"))
            service.stop()
            attach_meta(data_dir, results.real)
        return results
    except ServerError:
        if service is not None:
            print(f"server output ({log_path}):\n{service.log_tail()}", file=sys.stderr)
        raise
    finally:
        if service is not None:
            service.stop()
        real_model.stop()
        model.stop()


# --------------------------------------------------------------------------- the report


def _values(turns: list[Turn], attr: str) -> list[float]:
    return [v for t in turns if (v := getattr(t, attr)) is not None]


def _model_values(turns: list[Turn], key: str) -> list[float]:
    return [float(t.model[key]) for t in turns if t.model is not None and key in t.model]


def model_ms(turn: Turn) -> float | None:
    model = turn.model
    return float(model["model_ms"]) if model is not None and "model_ms" in model else None


def paired(extractive: Run, written: Run) -> list[tuple[Turn, Turn]]:
    """The messages (same text, same position, same conversation layout) the model wrote,
    timed on both backends."""
    return [
        (plain, turn)
        for plain, turn in zip(extractive.turns, written.turns, strict=False)
        if plain.text == turn.text
        and plain.server_ms is not None
        and turn.server_ms is not None
        and model_ms(turn) is not None
    ]


def overhead_columns(results: Results) -> dict[str, list[float]]:
    pairs = paired(results.extractive, results.written)
    own = [model_ms(t) or 0.0 for _, t in pairs]
    turn = [t.server_ms or 0.0 for _, t in pairs]
    plain = [p.server_ms or 0.0 for p, _ in pairs]
    over = [t - m for t, m in zip(turn, own, strict=True)]
    return {
        "extractive_turn": plain,
        "model_turn": turn,
        "model_own": own,
        "overhead": over,
        "overhead_minus_extractive": [o - p for o, p in zip(over, plain, strict=True)],
    }


def _row(label: str, values: list[float], quantiles: tuple[int, ...] = (50, 95, 99)) -> str:
    ordered = sorted(values)
    cells = "".join(f"{fmt(percentile(ordered, q)):>8}" for q in quantiles)
    top = fmt(ordered[-1]) if ordered else "-"
    return f"  {label:<58}{len(ordered):>5}{cells}{top:>9}"


def _head(quantiles: tuple[int, ...] = (50, 95, 99)) -> str:
    cells = "".join(f"{'p' + str(q):>8}" for q in quantiles)
    return f"  {'(ms)':<58}{'n':>5}{cells}{'max':>9}"


def _fallback_text(run: Run) -> str:
    counts = run.fallbacks()
    if not counts:
        return "none"
    total = sum(counts.values())
    return f"{total} (" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")"


def _cpu_per_turn(run: Run) -> str:
    counted = len(_values(run.turns, "server_ms"))
    if run.server_cpu_s is None or not counted:
        return "-"
    return f"{run.server_cpu_s * 1000 / counted:.1f} ms"


def ttft_columns(run: Run, scripted: tuple[float, float] | None) -> dict[str, list[float]]:
    drafted = [t for t in run.turns if t.first_draft_ms is not None]
    columns = {
        "model_first_token": _model_values(run.turns, "first_token_ms"),
        "widget_first_draft": [t.first_draft_ms or 0.0 for t in drafted],
        "widget_final": _values(run.turns, "final_ms"),
        "draft_minus_model_first_token": [
            (t.first_draft_ms or 0.0) - float(t.model["first_token_ms"])
            for t in drafted
            if t.model is not None and "first_token_ms" in t.model
        ],
        "model_own": _model_values(run.turns, "model_ms"),
        "final_minus_model_own": [
            (t.final_ms or 0.0) - (model_ms(t) or 0.0)
            for t in run.turns
            if t.final_ms is not None and model_ms(t) is not None
        ],
    }
    if scripted is not None:
        first_delay, chunk_delay = scripted
        # A sentence is complete when the word after it arrives (or the stream's end, one
        # chunk_delay after the last word): first_delay + words x chunk_delay.
        done = [(first_delay + t.first_draft_words * chunk_delay) * 1000 for t in drafted]
        columns["first_sentence_at_model"] = done
        columns["draft_minus_first_sentence"] = [
            (t.first_draft_ms or 0.0) - d for t, d in zip(drafted, done, strict=True)
        ]
    return columns


TTFT_ROWS = (
    ("model server: first token (meta.model.first_token_ms)", "model_first_token"),
    ("model's first sentence complete (scripted timing)", "first_sentence_at_model"),
    ("widget: first draft frame (from send)", "widget_first_draft"),
    ("widget: final reply message (from send)", "widget_final"),
    ("widget first draft - model first token (per turn)", "draft_minus_model_first_token"),
    ("widget first draft - first sentence complete", "draft_minus_first_sentence"),
    ("model's own time (meta.model.model_ms)", "model_own"),
    ("widget final reply - the model's own time (per turn)", "final_minus_model_own"),
)


def print_ttft(run: Run, scripted: tuple[float, float] | None) -> None:
    q = (50, 90)
    columns = ttft_columns(run, scripted)
    print(_head(q))
    for label, key in TTFT_ROWS:
        if key in columns:
            print(_row(label, columns[key], q))
    words = [t.first_draft_words for t in run.turns if t.first_draft_ms is not None]
    mean_words = f"; first sentence {sum(words) / len(words):.1f} words on average" if words else ""
    print(
        f"  turns with a draft frame: {len(words)} of {len(run.turns)}; model called on "
        f"{len(run.model_turns())}; fallbacks: {_fallback_text(run)}{mean_words}"
    )


def overhead_check(results: Results) -> dict[str, Any]:
    over = sorted(overhead_columns(results)["overhead"])
    p50 = percentile(over, 50)
    ok = bool(over) and p50 <= TARGET_OVERHEAD_P50_MS
    return {
        "name": f"overhead p50 <= {TARGET_OVERHEAD_P50_MS:g} ms",
        "measured": round(p50, 3) if over else None,
        "target": TARGET_OVERHEAD_P50_MS,
        "display": f"{p50:.1f} ms" if over else "-",
        "result": "PASS" if ok else "MISS",
    }


def print_report(
    args: argparse.Namespace,
    results: Results,
    info: dict[str, Any],
    loads: tuple[tuple[float, float, float], tuple[float, float, float]],
    total_s: float,
) -> None:
    start, end = loads
    print()
    print("Frontdesk model overhead (demo store, openai backend)")
    print(f"  machine : {info['nproc']} CPUs (nproc), {info['cpu_model']}")
    print(f"  python  : {info['python']}  frontdesk {info['frontdesk']}  {info['platform']}")
    print(f"  date    : {info['date']}")
    print(
        f"  load    : {start[0]:.2f} {start[1]:.2f} {start[2]:.2f} at the start, "
        f"{end[0]:.2f} {end[1]:.2f} {end[2]:.2f} at the end (1/5/15 min load average)"
    )
    started = ", ".join(f"{k} {v:.1f} s" for k, v in results.starts.items())
    print(f"  servers : {started} ({'new data dir' if results.fresh else 'reused data dir'})")
    print(
        f"  messages: {len(results.chosen)} of {len(results.selection.turns)} questions are "
        f"knowledge questions; {args.messages} messages from them, a new conversation every "
        f"{args.per_conversation}, seed {args.seed}"
    )
    print()
    written = results.written
    c = overhead_columns(results)
    print(
        f"Overhead around the model: HTTP, one message at a time, the {len(c['overhead'])} "
        f"messages of {args.messages} the model wrote, on both backends"
    )
    print(_head())
    print(_row("extractive backend: server-side turn (Server-Timing)", c["extractive_turn"]))
    print(_row("openai backend: server-side turn (Server-Timing)", c["model_turn"]))
    print(_row("  the model's own time (meta.model.model_ms)", c["model_own"]))
    print(_row("  overhead = turn - the model's own time", c["overhead"]))
    print(_row("overhead - extractive turn (same message, paired)", c["overhead_minus_extractive"]))
    print(
        f"  model called on {len(written.model_turns())} of {len(written.turns)} turns; "
        f"fallbacks: {_fallback_text(written)}; the scripted model found no passage "
        f"{results.no_passage} times"
    )
    print(
        f"  server CPU per turn: extractive {_cpu_per_turn(results.extractive)}, openai "
        f"{_cpu_per_turn(written)}; load (1 min) before: extractive "
        f"{results.extractive.load_before[0]:.2f}, openai {written.load_before[0]:.2f}"
    )
    print()
    print(
        f"Time to first token, scripted model ({args.first_delay:g} s to the first word, then "
        f"{args.chunk_delay:g} s per word; WebSocket, a conversation per turn; load "
        f"{results.ttft.load_before[0]:.2f})"
    )
    print_ttft(results.ttft, (args.first_delay, args.chunk_delay))
    print()
    print(f"Time to first token, SmolLM2-135M on llama.cpp's server: {results.real_note}")
    if results.real.turns:
        print_ttft(results.real, None)
    print()
    header = f"{'target':<48}{'measured':>12}  result"
    print(header)
    print("-" * len(header))
    check = overhead_check(results)
    print(f"{check['name']:<48}{check['display']:>12}  {check['result']}")
    errors = sum(run.errors for run in results.runs)
    print(f"{'errors (failed requests or turns), should be 0':<48}{errors:>12}  ", end="")
    print("OK" if errors == 0 else "FAIL")
    for run in results.runs:
        for sample in run.error_samples:
            print(f"    {run.name}: {sample}")
    print(f"  {total_s:.0f} s in all")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Measure the time Frontdesk adds around a model call (the turn time minus the "
            "model's own time) and the time to first token at the widget, on the demo store."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--messages", type=int, default=300, help="knowledge questions timed on each backend"
    )
    parser.add_argument(
        "--warmup", type=int, default=30, help="warm-up messages on each server (not counted)"
    )
    parser.add_argument(
        "--per-conversation",
        type=int,
        default=4,
        help="messages per conversation in the overhead phases",
    )
    parser.add_argument(
        "--ttft-messages", type=int, default=30, help="WebSocket turns with the scripted model"
    )
    parser.add_argument(
        "--first-delay", type=float, default=0.3, help="scripted model: seconds to first word"
    )
    parser.add_argument(
        "--chunk-delay", type=float, default=0.02, help="scripted model: seconds between words"
    )
    parser.add_argument(
        "--real",
        action="store_true",
        help="also time SmolLM2-135M on llama.cpp's server (scripts/model_server.sh)",
    )
    parser.add_argument(
        "--real-messages", type=int, default=10, help="WebSocket turns with the real model"
    )
    parser.add_argument(
        "--real-threads",
        type=int,
        default=1,
        help="llama.cpp threads for the real model: on 2 cores shared with the service, 2 "
        "threads that wait on each other can be much slower than 1",
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
    for name in ("messages", "per_conversation", "ttft_messages", "real_messages", "real_threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or args.first_delay < 0 or args.chunk_delay < 0:
        parser.error("--warmup, --first-delay and --chunk-delay must not be negative")
    return args


def _stats(values: list[float]) -> dict[str, float | int]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in summary(values).items()}


def _turn_json(turn: Turn) -> dict[str, Any]:
    data: dict[str, Any] = {"text": turn.text}
    for key in ("server_ms", "client_ms", "first_draft_ms", "final_ms"):
        value = getattr(turn, key)
        if value is not None:
            data[key] = round(value, 3)
    if turn.drafts:
        data["drafts"] = turn.drafts
    for key in ("action", "reason", "flow"):
        if key in turn.meta:
            data[key] = turn.meta[key]
    if turn.model is not None:
        data["model"] = turn.model
    return data


def _run_json(run: Run) -> dict[str, Any]:
    return {
        "turns": len(run.turns),
        "errors": run.errors,
        "error_samples": run.error_samples,
        "wall_s": round(run.wall_s, 3),
        "server_cpu_s": None if run.server_cpu_s is None else round(run.server_cpu_s, 3),
        "load_before": [round(x, 2) for x in run.load_before],
        "model_turns": len(run.model_turns()),
        "fallbacks": run.fallbacks(),
        "per_turn": [_turn_json(t) for t in run.turns],
    }


def result_json(
    args: argparse.Namespace,
    results: Results,
    info: dict[str, Any],
    loads: tuple[tuple[float, float, float], tuple[float, float, float]],
) -> dict[str, Any]:
    scripted = (args.first_delay, args.chunk_delay)
    return {
        "machine": info,
        "load_start": [round(x, 2) for x in loads[0]],
        "load_end": [round(x, 2) for x in loads[1]],
        "settings": {
            "messages": args.messages,
            "warmup": args.warmup,
            "per_conversation": args.per_conversation,
            "ttft_messages": args.ttft_messages,
            "first_delay": args.first_delay,
            "chunk_delay": args.chunk_delay,
            "real": args.real,
            "real_messages": args.real_messages,
            "real_threads": args.real_threads,
            "seed": args.seed,
            "new_data_dir": results.fresh,
        },
        "server_start_s": {k: round(v, 3) for k, v in results.starts.items()},
        "knowledge_questions": results.chosen,
        "overhead_ms": {k: _stats(v) for k, v in overhead_columns(results).items()},
        "ttft_scripted_ms": {k: _stats(v) for k, v in ttft_columns(results.ttft, scripted).items()},
        "ttft_real_ms": {k: _stats(v) for k, v in ttft_columns(results.real, None).items()},
        "real_model": results.real_note,
        "runs": {run.name: _run_json(run) for run in results.runs},
        "targets": [overhead_check(results)],
        "errors": sum(run.errors for run in results.runs),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    load_start = loadavg()
    port = args.port if args.port is not None else free_port()
    if not port_is_free(port):
        print(f"error: port {port} is already in use", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="frontdesk-bench-model-"))
    data_dir = scratch / "data" if args.data_dir is None else args.data_dir.resolve()
    keep_scratch = False
    # SIGTERM ends the benchmark like Ctrl-C, so the servers are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        results = measure(args, port, data_dir, scratch)
    except ServerError as exc:
        keep_scratch = True
        print(f"error: {exc} (logs kept in {scratch})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if not keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    loads = (load_start, loadavg())
    info = machine()
    print_report(args, results, info, loads, time.perf_counter() - began)
    if args.json is not None:
        data = result_json(args, results, info, loads)
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 1 if any(run.errors for run in results.runs) else 0


if __name__ == "__main__":
    sys.exit(main())
