"""The running service: settings, database, models, knowledge index and bus, built together.

Nothing here is built at import time: ``Frontdesk(settings)`` then ``await start()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from frontdesk.adapters import crypto
from frontdesk.adapters.local_bus import LocalBus
from frontdesk.adapters.pii import shared_detector
from frontdesk.adapters.store import shop as shop_repo
from frontdesk.adapters.store.database import Database
from frontdesk.adapters.store.tables import ArticleRow
from frontdesk.company.catalog import Catalog
from frontdesk.company.guidelines import Guidelines, load_guidelines
from frontdesk.config import Settings
from frontdesk.core.chat import ChatModel
from frontdesk.core.ports import Bus, Embedder, Vector
from frontdesk.flows.definition import Flows, load_flows
from frontdesk.knowledge.ingest import IngestReport, Progress, ingest_folder
from frontdesk.knowledge.retrieval import Retriever
from frontdesk.learning.intents import IntentModel
from frontdesk.learning.registry import ModelRegistry, RegistryError
from frontdesk.pipeline.privacy import Detector, PatternDetector
from frontdesk.pipeline.spelling import Speller, strip_preamble
from frontdesk.shop.records import ProductRecord

log = logging.getLogger("frontdesk")

# How close a question must be to a reviewed one for its approved answer to be used.
APPROVED_SIMILARITY = 0.9


@dataclass(frozen=True, slots=True)
class Profile:
    """What a conversation's turns run with: the live setup, or an A/B variant's."""

    guidelines: Guidelines
    flows: Flows
    intents: IntentModel | None


@dataclass(frozen=True, slots=True)
class RunningExperiment:
    name: str
    spec: Any  # company.experiments.ExperimentSpec
    profiles: dict[str, Profile]


@dataclass(frozen=True, slots=True)
class Approved:
    id: int
    question: str
    answer: str
    version: int


def keyring_for(settings: Settings, secret: bytes) -> crypto.Keyring:
    """The encryption keys: FRONTDESK_ENCRYPTION_KEYS, or the key file (made on first use),
    with the key derived from the secret key read-only until retired."""
    listed = settings.encryption_keys
    keys = listed.get_secret_value() if isinstance(listed, SecretStr) else listed
    return crypto.load_keyring(secret, settings.resolved_key_file, keys)


def default_embedder(settings: Settings) -> Embedder:
    from frontdesk.adapters.models.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(threads=settings.embedding_threads)


def _knowledge_version(session: Session) -> tuple[int, str, int]:
    from frontdesk.adapters.store.tables import ApprovedAnswerRow

    count, newest = session.execute(
        select(func.count(ArticleRow.id), func.max(ArticleRow.updated_at))
    ).one()
    approved = session.execute(select(func.max(ApprovedAnswerRow.id))).scalar_one_or_none()
    return int(count), str(newest), int(approved or 0)


# What the understanding reads in place of a token: a value of the same kind. "<PERSON_1>"
# read as written is the word "person", which means "a human agent" to the intent model.
_STAND_INS = re.compile(r"<(PERSON|ADDRESS)_\d+>")
_STAND_IN_VALUES = {"PERSON": "Alex Morgan", "ADDRESS": "12 Main St"}


def _stand_in(match: re.Match[str]) -> str:
    return _STAND_IN_VALUES[match.group(1)]


class Frontdesk:
    """Everything a request needs. Tests build one per test from fresh settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        bus: Bus | None = None,
        chat_model: ChatModel | None = None,
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._owns_embedder = embedder is None
        self.bus: Bus = bus or LocalBus()
        self._db: Database | None = None
        self._retriever: Retriever | None = None
        self._knowledge_signature: tuple[int, str, int] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._analytics: asyncio.Task[None] | None = None
        self.guidelines: Guidelines = Guidelines()
        self.intents: IntentModel | None = None
        self._opened_intents: list[IntentModel] = []  # with their own encoders: close() closes them
        self.catalog: Catalog | None = None
        self.products: tuple[ProductRecord, ...] = ()
        self.flows: Flows = Flows()
        self.experiment: RunningExperiment | None = None
        # Agents with the console open in this worker: user id -> open sockets.
        self.presence: dict[str, int] = {}
        self.speller = Speller.from_texts(())
        self._approved: list[Approved] = []
        self._approved_vectors: Vector | None = None
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.secret = settings.resolved_secret_key()
        # The encryption keys (never the secret key itself: it keys the digests).
        self.sealer: crypto.Keyring = keyring_for(settings, self.secret)
        # Finds personal data in what people type; the configured one is built in start().
        self.detector: Detector = PatternDetector()
        # The generative model (None: the built-in extractive responder), built in start().
        self.chat_model: ChatModel | None = chat_model
        self._owns_chat_model = chat_model is None

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("Frontdesk.start() has not run")
        return self._db

    @property
    def started(self) -> bool:
        return self._db is not None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = default_embedder(self.settings)
        return self._embedder

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            raise RuntimeError("Frontdesk.start() has not run")
        return self._retriever

    async def start(self, *, load_knowledge: bool = True) -> None:
        """Open the database, apply migrations, read the guidelines and load the index."""
        self.guidelines = load_guidelines(self.settings.company_dir)
        self.flows = load_flows(self.settings.company_dir)
        self._db = Database(self.settings.resolved_database_url, keyring=self.sealer)
        await self._db.migrate()
        await self._check_keys()
        await self.load_store()
        products = tuple(p.name for p in self.products)
        self.detector = await asyncio.to_thread(
            shared_detector, self.settings.pii_detector, products
        )
        if self.settings.intent_model:
            self.intents = await asyncio.to_thread(self._load_intents, self.settings.intent_model)
        if self.chat_model is None and self.settings.model_backend != "extractive":
            from frontdesk.adapters.models.chat import build_chat_model

            self.chat_model = build_chat_model(self.settings)
        await self.load_experiment()
        if load_knowledge:
            await self.reload_knowledge()
            if self.settings.knowledge_refresh_seconds > 0:
                self._refresher = asyncio.create_task(self._refresh_knowledge())
        if self.settings.analytics_rollup_seconds > 0:
            self._analytics = asyncio.create_task(self._analytics_job())

    async def close(self) -> None:
        for task in (self._refresher, self._analytics):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._refresher = self._analytics = None
        if self.chat_model is not None and self._owns_chat_model:
            await self.chat_model.aclose()
            self.chat_model = None
        if self._embedder is not None and self._owns_embedder:
            self._embedder.close()
            self._embedder = None
        for model in self._opened_intents:
            model.close()
        self._opened_intents.clear()
        if self._db is not None:
            await self._db.dispose()
            self._db = None

    async def _check_keys(self) -> None:
        """Seal what was written in clear before its column was sealed, then refuse to start
        when the database holds values sealed under a key this service does not hold."""
        from frontdesk.actions.keys import seal_plaintext
        from frontdesk.adapters.store.sealed import sampled_key_ids

        if any((await seal_plaintext(self.db, self.sealer)).values()):
            await self.db.compact()  # the values in clear linger in free pages until then
        found = await self.db.run(sampled_key_ids)
        missing = {k: v for k, v in found.items() if not self.sealer.holds(k)}
        if missing:
            where = "; ".join(f"{k} ({', '.join(v)})" for k, v in sorted(missing.items()))
            source = (
                crypto.ENV_NAME
                if self.sealer.from_environment
                else f"the key file {self.settings.resolved_key_file}"
            )
            raise crypto.KeyringError(
                f"the database holds values sealed under keys this service does not hold: "
                f"{where}. It holds {', '.join(self.sealer.ids)}, from {source}. Restore the "
                "key file (or the key list) that goes with this database from its backup"
            )

    async def load_store(self, *, replace: bool = False) -> dict[str, int] | None:
        """Import the company's ``data/db.json`` into the store tables when they are empty
        (or ``replace``), then read the products and build the catalog from them."""
        company = self.settings.company_dir
        path = company / "data" / "db.json" if company is not None else None
        counts = None
        if path is not None and path.exists():
            loaded = await self.db.run(shop_repo.store_loaded)
            if loaded and not replace:
                keys = await self.db.run(shop_repo.sealed_key_ids)
                same = await self.db.run(
                    lambda s: shop_repo.secret_matches(s, self.sealer, self.secret)
                )
                if keys - set(self.sealer.ids) or not same:
                    raise shop_repo.StoreDataError(
                        "the store's data in the database was keyed with another secret key "
                        f"or sealed under a key this service does not hold ({', '.join(keys)}"
                        f"; it holds {', '.join(self.sealer.ids)}): the secret key changed. "
                        "Restore FRONTDESK_SECRET_KEY (or data_dir/secret.key) and the key "
                        "file, or run `frontdesk store import` to import data/db.json again "
                        "(changes made in conversations since the import are lost)"
                    )
            if replace or not loaded:
                data = await asyncio.to_thread(shop_repo.read_store_file, path)
                counts = await self.db.run(
                    lambda s: shop_repo.import_store(s, data, self.secret, self.sealer)
                )
                log.info("store data imported from %s: %s", path, counts)
        self.products = tuple(await self.db.run(shop_repo.products))
        if self.products:
            products = await self.db.run(shop_repo.products_json)
            self.catalog = Catalog.from_db_products(products)
        return counts

    async def load_approved_answers(self) -> None:
        """The active approved answers (from reviews) and their question vectors."""
        from frontdesk.adapters.store import people

        rows = await self.db.run(lambda s: people.approved_answers(s, active_only=True))
        embedder = self.embedder
        stale = [r for r in rows if r.embedder != embedder.name]
        if stale:
            # Embedded by another encoder (an upgrade changed it): embedded again and stored,
            # so that a question is never compared with a vector of another encoder.
            vectors = await asyncio.to_thread(embedder.embed, [r.question for r in stale])
            fresh = {
                r.id: np.asarray(v, dtype=np.float32).tobytes()
                for r, v in zip(stale, vectors, strict=True)
            }
            await self.db.run(lambda s: people.set_approved_embeddings(s, embedder.name, fresh))
            for row in stale:
                row.embedder, row.embedding = embedder.name, fresh[row.id]
            log.info("%d approved answers embedded again with %s", len(stale), embedder.name)
        self._approved = [Approved(r.id, r.question, r.answer, r.version) for r in rows]
        self._approved_vectors = (
            np.vstack([np.frombuffer(r.embedding, dtype=np.float32) for r in rows])
            if rows
            else None
        )

    def approved_hints(self, vector: Vector, floor: float = 0.75, limit: int = 2) -> list[Approved]:
        """Approved answers to questions close to this one, closest first: a model is shown
        them (they take precedence over the passages)."""
        if self._approved_vectors is None:
            return []
        scores = self._approved_vectors @ np.asarray(vector, dtype=np.float32)
        order = np.argsort(-scores)[:limit]
        return [self._approved[int(i)] for i in order if scores[int(i)] >= floor]

    def approved_answer(self, vector: Vector) -> Approved | None:
        """The approved answer to the same question, if a reviewer wrote one."""
        if self._approved_vectors is None:
            return None
        scores = self._approved_vectors @ np.asarray(vector, dtype=np.float32)
        best = int(np.argmax(scores))
        return self._approved[best] if scores[best] >= APPROVED_SIMILARITY else None

    @property
    def profile(self) -> Profile:
        return Profile(self.guidelines, self.flows, self.intents)

    def profile_for(self, state: dict[str, Any]) -> Profile:
        """The setup of a conversation: its A/B variant's while its experiment runs."""
        assigned = state.get("experiment")
        running = self.experiment
        if (
            running is not None
            and isinstance(assigned, dict)
            and assigned.get("name") == running.name
        ):
            found = running.profiles.get(str(assigned.get("variant")))
            if found is not None:
                return found
        return self.profile

    async def load_experiment(self) -> None:
        """Load the running A/B experiment (at most one), building each variant's setup."""
        from frontdesk.adapters.store.tables import ExperimentRow
        from frontdesk.company.experiments import ExperimentSpec, build_variant

        row = await self.db.run(
            lambda s: s.execute(
                select(ExperimentRow.name, ExperimentRow.definition).where(
                    ExperimentRow.status == "running"
                )
            ).first()
        )
        if row is None:
            self.experiment = None
            return
        if self.experiment is not None and self.experiment.name == row[0]:
            return
        spec = ExperimentSpec.model_validate(row[1])
        profiles: dict[str, Profile] = {}
        try:
            for name in spec.variants:
                setup = build_variant(self.settings.company_dir, spec, name)
                intents = self.intents
                if setup.intent_model_version is not None and self.settings.intent_model:
                    version = setup.intent_model_version
                    intents = await asyncio.to_thread(
                        self._load_intents, self.settings.intent_model, version
                    )
                profiles[name] = Profile(setup.guidelines, setup.flows, intents)
        except Exception:  # a variant's files changed under it: serve everyone the live setup
            log.exception("A/B experiment %s cannot run; serving the live setup", spec.name)
            self.experiment = None
            return
        profiles[spec.control] = self.profile
        self.experiment = RunningExperiment(spec.name, spec, profiles)
        log.info("A/B experiment %s running: %s", spec.name, ", ".join(spec.variants))

    def _build_speller(self) -> Speller:
        """The spelling vocabulary: the help centre, the catalog and the flows' texts."""
        texts = self.retriever.texts() if self._retriever is not None else []
        for product in self.products:
            texts.append(product.name)
            texts += [" ".join(v.options.values()) for v in product.variants]
        for flow in self.flows:
            texts += [s.prompt or s.say or s.confirm or s.end or "" for s in flow.steps]
        # The words of the handoff rules, so that "laywer" is read as "lawyer".
        escalation = self.guidelines.escalation
        rules = [*escalation.human_request_patterns]
        rules += [p for patterns in escalation.sensitive_topics.values() for p in patterns]
        texts += [" ".join(re.findall(r"[a-z]{4,}", rule.replace("s?", ""))) for rule in rules]
        return Speller.from_texts(texts)

    def understood(self, text: str) -> str:
        """The text the understanding works on: without a greeting or self-introduction in
        front ("Hi, I'm Emily."), typos corrected. The stored text is as typed."""
        return self.speller.correct(strip_preamble(_STAND_INS.sub(_stand_in, text)))

    def online_agents(self) -> tuple[str, ...]:
        """Agents (and admins) with the console open, for assignment at handoff."""
        return tuple(sorted(u for u, n in self.presence.items() if n > 0))

    @property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.settings.data_dir / "models")

    def _load_intents(self, name: str, number: int | None = None) -> IntentModel:
        version = self.registry.get("intents", name, number)
        # A model with a fine-tuned encoder of its own opens it here: its intent vectors come
        # from it (one more encoder pass per message), retrieval keeps the shared encoder.
        model = IntentModel.load(version.path, threads=self.settings.embedding_threads)
        if model.own_encoder is not None:
            self._opened_intents.append(model)
        if model.encoder_file is None and model.encoder != self.embedder.name:
            raise RegistryError(
                f"intents model {name!r} version {version.version} was trained on encoder "
                f"{model.encoder!r}, the service runs {self.embedder.name!r}: retrain it"
            )
        log.info("intents model %s version %d loaded", name, version.version)
        return model

    def conversation_lock(self, conversation_id: str) -> asyncio.Lock:
        """One turn at a time per conversation inside this worker (keeps a burst in order)."""
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[conversation_id] = lock
        return lock

    async def reload_knowledge(self) -> None:
        embedder = await asyncio.to_thread(lambda: self.embedder)
        signature = await self.db.run(_knowledge_version)
        self._retriever = await Retriever.load(self.db, embedder)
        self.speller = await asyncio.to_thread(self._build_speller)
        await self.load_approved_answers()
        self._knowledge_signature = signature
        log.info("knowledge index loaded: %d chunks", self._retriever.size)
        for problem in self.intent_article_problems():
            log.warning("guidelines intents.articles names %s", problem)

    def intent_article_problems(self) -> list[str]:
        """What ``intents.articles`` in the guidelines names that the help centre or the
        intent model lacks (such a name is never used)."""
        mapping = self.guidelines.intents.articles
        problems = []
        if self.intents is not None:
            unknown = sorted(set(mapping) - set(self.intents.labels))
            if unknown:
                problems.append(f"intents the model lacks: {', '.join(unknown)}")
        if self._retriever is not None and self._retriever.size:
            known = self._retriever.articles()
            missing = sorted({a for names in mapping.values() for a in names} - known)
            if missing:
                problems.append(f"articles the help centre lacks: {', '.join(missing)}")
        return problems

    async def _refresh_knowledge(self) -> None:
        """Reload the index when another process (``frontdesk ingest``) changed the knowledge."""
        while True:
            await asyncio.sleep(self.settings.knowledge_refresh_seconds)
            try:
                if await self.db.run(_knowledge_version) != self._knowledge_signature:
                    await self.reload_knowledge()
            except Exception:  # keep serving with the index it has
                log.exception("knowledge refresh failed")

    async def analytics_tick(self) -> None:
        """Resolve idle conversations, roll new events up, check the KPI targets; hourly,
        purge what is past its retention period."""
        from frontdesk.actions.retention import purge_when_due
        from frontdesk.actions.satisfaction import resolve_idle
        from frontdesk.analytics.alerts import check_alerts
        from frontdesk.analytics.rollup import run_rollup

        await self.load_experiment()  # started or stopped from the command line
        await resolve_idle(self)
        await run_rollup(self)
        await check_alerts(self)
        await self._insights_when_due()
        await purge_when_due(self)

    async def _insights_when_due(self) -> None:
        """Recompute the insights once every ``insights_refresh_hours`` (the first run embeds
        every customer question of the window; later ones only the new ones)."""
        from frontdesk.adapters.store.tables import InsightSnapshotRow
        from frontdesk.analytics.insights import refresh_insights
        from frontdesk.core.types import utcnow

        hours = self.settings.insights_refresh_hours
        if hours <= 0:
            return
        newest = await self.db.run(
            lambda s: s.execute(select(func.max(InsightSnapshotRow.created_at))).scalar()
        )
        if newest is None or (utcnow() - newest).total_seconds() >= hours * 3600:
            await refresh_insights(self)

    async def _analytics_job(self) -> None:
        while True:
            await asyncio.sleep(self.settings.analytics_rollup_seconds)
            try:
                await self.analytics_tick()
            except Exception:  # the next tick tries again; serving goes on
                log.exception("the analytics job failed")

    async def ingest(self, folder: Path, progress: Progress | None = None) -> IngestReport:
        """Bring the knowledge base in line with ``folder`` and reload the index."""
        embedder = await asyncio.to_thread(lambda: self.embedder)
        report = await ingest_folder(self.db, folder, embedder, progress)
        await self.reload_knowledge()
        return report
