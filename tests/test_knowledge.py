"""Reading, chunking, ingesting (only changes re-embed) and hybrid retrieval."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.conftest import DEMO, SharedEmbedder

from frontdesk.adapters.store.tables import ChunkRow
from frontdesk.config import Settings
from frontdesk.core.ports import Embedder, Vector
from frontdesk.knowledge.documents import KnowledgeError, load_folder, parse_markdown
from frontdesk.service import Frontdesk


def _write(folder: Path, name: str, content: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")


def test_that_an_article_takes_its_title_from_the_first_heading_and_splits_by_section() -> None:
    body = "# Returns\n\nIntro text.\n\n## How\n\nStep one.\n\n## When\n\nAny time."
    title, chunks = parse_markdown(body, "fallback")
    assert title == "Returns"
    assert [(c.heading, c.text) for c in chunks] == [
        ("Returns", "Intro text."),
        ("How", "Step one."),
        ("When", "Any time."),
    ]


def test_that_long_sections_are_split_into_pieces_of_bounded_size() -> None:
    paragraph = " ".join(f"Sentence number {i} is here." for i in range(120))
    _, chunks = parse_markdown(f"# Long\n\n{paragraph}", "x")
    assert len(chunks) > 1
    assert all(len(c.text.split()) <= 200 for c in chunks)
    assert " ".join(c.text for c in chunks) == paragraph


def test_that_the_demo_help_centre_loads_with_at_least_30_articles() -> None:
    documents = load_folder(DEMO / "knowledge")
    articles = [d for d in documents if not d.id.startswith("faq--")]
    assert len(articles) >= 30
    assert {"refunds", "returns", "exchanges", "warranty", "talking-to-a-human-agent"} <= {
        d.id for d in articles
    }
    faq = [d for d in documents if d.id.startswith("faq--")]
    assert faq and all(d.cites for d in faq)


def test_that_bm25_tokens_are_the_ones_bm25s_would_give() -> None:
    """Retrieval tokenizes without bm25s.tokenize (whose set-up per call cost 30 times the
    work); the tokens, and so the BM25 scores, must stay the same."""
    import bm25s
    import Stemmer

    from frontdesk.knowledge.retrieval import _tokenize

    texts = [path.read_text(encoding="utf-8") for path in sorted((DEMO / "knowledge").rglob("*.*"))]
    texts += ["", "?!", "the and of", "Where's my ORDER #W2611340? It's 10 days!", "Ünïcode ça"]
    stemmer = Stemmer.Stemmer("english")
    expected = bm25s.tokenize(
        texts, stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False
    )
    assert len(texts) > 30
    assert _tokenize(texts) == [list(tokens) for tokens in expected]


def test_that_a_faq_without_the_right_columns_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "faq.csv", "q,a\nhello,world\n")
    with pytest.raises(KnowledgeError, match="question,answer"):
        load_folder(tmp_path)


def test_that_a_faq_row_citing_a_missing_article_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "faq.csv", "question,answer,article\nWhy?,Because.,nowhere\n")
    with pytest.raises(KnowledgeError, match="nowhere"):
        load_folder(tmp_path)


def test_that_an_empty_faq_answer_is_refused_with_its_line(tmp_path: Path) -> None:
    _write(tmp_path, "faq.csv", "question,answer\nWhy?,Because.\nHow?,\n")
    with pytest.raises(KnowledgeError, match=r"faq.csv:3"):
        load_folder(tmp_path)


def test_that_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeError, match="not a folder"):
        load_folder(tmp_path / "nope")


async def test_that_reingesting_embeds_only_what_changed_and_prunes_removed_articles(
    tmp_path: Path, shared_embedder: SharedEmbedder
) -> None:
    folder = tmp_path / "kb"
    _write(folder, "alpha.md", "# Alpha\n\nThe alpha article about tents and poles.")
    _write(folder, "beta.md", "# Beta\n\nThe beta article about stoves and fuel.")
    _write(folder, "faq.csv", "question,answer,article\nDo tents leak?,Not ours.,alpha\n")
    settings = Settings(data_dir=tmp_path / "data", secret_key="s")
    fd = Frontdesk(settings, embedder=shared_embedder)
    await fd.start()
    try:
        first = await fd.ingest(folder)
        assert (first.articles, first.chunks, first.unchanged_articles) == (3, 3, 0)
        again = await fd.ingest(folder)
        assert (again.embedded, again.unchanged_articles) == (0, 3)

        _write(folder, "beta.md", "# Beta\n\nThe beta article about stoves, fuel and pots.")
        (folder / "alpha.md").unlink()
        _write(folder, "faq.csv", "question,answer\nDo tents leak?,Not ours.\n")
        before = shared_embedder.embedded_texts
        changed = await fd.ingest(folder)
        assert changed.removed_articles == 1
        assert changed.unchanged_articles == 0  # the FAQ now cites itself
        assert changed.embedded == 1  # only beta's new text; the FAQ text is unchanged
        assert shared_embedder.embedded_texts - before <= 1
        passages = await fd.retriever.search("cooking pots")
        assert passages[0].article_id == "beta"
        assert {p.article_id for p in passages} == {"beta", "faq--do-tents-leak"}
        faq = await fd.retriever.search("do your tents leak")
        assert (faq[0].cite_id, faq[0].cite_title) == ("faq--do-tents-leak", "Do tents leak?")
    finally:
        await fd.close()


class _Renamed(Embedder):
    """The tests' encoder under another name: vectors of "another encoder"."""

    def __init__(self, inner: SharedEmbedder, name: str) -> None:
        self.inner, self.name, self.dimension = inner, name, inner.dimension

    def embed(self, texts: Sequence[str]) -> Vector:
        return self.inner.embed(texts)

    async def embed_one(self, text: str) -> Vector:
        return await self.inner.embed_one(text)


async def test_that_articles_embedded_by_another_encoder_are_embedded_again(
    tmp_path: Path, shared_embedder: SharedEmbedder
) -> None:
    """An upgrade that changes the encoder: the same help centre, unchanged, is embedded again
    on the next ingest, and the index holds every chunk (it loads only the encoder's own)."""
    folder = tmp_path / "kb"
    _write(folder, "alpha.md", "# Alpha\n\nThe alpha article about tents and poles.")
    _write(folder, "beta.md", "# Beta\n\nThe beta article about stoves and fuel.")
    settings = Settings(data_dir=tmp_path / "data", secret_key="s")
    earlier = Frontdesk(settings, embedder=_Renamed(shared_embedder, "an-earlier-encoder"))
    await earlier.start()
    try:
        assert (await earlier.ingest(folder)).embedded == 2
    finally:
        await earlier.close()
    fd = Frontdesk(settings, embedder=shared_embedder)
    await fd.start()
    try:
        report = await fd.ingest(folder)
        assert (report.embedded, report.unchanged_articles) == (2, 0)
        names = await fd.db.run(lambda s: set(s.execute(select(ChunkRow.embedder)).scalars()))
        assert names == {shared_embedder.name}
        assert len(fd.retriever._chunks) == 2
        assert (await fd.retriever.search("camping stoves"))[0].article_id == "beta"
        assert (await fd.ingest(folder)).embedded == 0  # and only once
    finally:
        await fd.close()


@pytest.mark.parametrize(
    ("question", "article"),
    [
        ("How long do refunds take?", "refunds"),
        ("when do I get my money back", "refunds"),
        ("can I swap an item I received for a different color", "exchanges"),
        ("Do you ship to Canada?", "international-orders-and-customs"),
        ("how can I cancel my order", "cancelling-an-order"),
        ("what warranty do electronics have", "warranty"),
        ("how do I wash my fleece jacket", "product-care-clothing"),
    ],
)
async def test_that_hybrid_retrieval_finds_the_right_article_first(
    frontdesk: Frontdesk, question: str, article: str
) -> None:
    passages = await frontdesk.retriever.search(question)
    assert passages[0].cite_id == article, [(p.cite_id, p.similarity) for p in passages]
    # A turn works out the BM25 part while the question is embedded: the same ranking.
    retriever, vector = frontdesk.retriever, await frontdesk.embedder.embed_one(question)
    early = retriever.search_vector(question, vector, 5, retriever.lexical(question))
    assert early == retriever.search_vector(question, vector, 5) == passages


async def test_that_the_best_passage_of_named_articles_is_found_with_the_same_score(
    frontdesk: Frontdesk,
) -> None:
    question = "do you price match"
    retriever, vector = frontdesk.retriever, await frontdesk.embedder.embed_one(question)
    ranked = retriever.search_vector(question, vector, retriever.size)
    for articles in (["price-adjustments"], ["refunds", "warranty"]):
        best = retriever.best_within(question, vector, articles)
        assert best == next(p for p in ranked if p.cite_id in articles)
    # FAQ entries cite the article they summarise; summaries=False keeps the article's own.
    with_faq = [p for p in ranked if p.cite_id == "refunds"]
    assert any(p.article_id != "refunds" for p in with_faq)
    own = retriever.best_within(question, vector, ["refunds"], summaries=False)
    assert own == next(p for p in with_faq if p.article_id == "refunds")
    assert retriever.best_within(question, vector, ["no-such-article"]) is None
    assert {"refunds", "price-adjustments"} <= retriever.articles()
    assert not any(a.startswith("faq--") for a in retriever.articles())


async def test_that_a_running_service_picks_up_an_ingest_made_by_another_process(
    tmp_path: Path, shared_embedder: SharedEmbedder
) -> None:
    import asyncio

    folder = tmp_path / "kb"
    _write(folder, "tents.md", "# Tents\n\nOur tents sleep two people.")
    settings = Settings(data_dir=tmp_path / "data", secret_key="s", knowledge_refresh_seconds=0.05)
    serving = Frontdesk(settings, embedder=shared_embedder)
    await serving.start()
    other = Frontdesk(settings, embedder=shared_embedder)
    await other.start(load_knowledge=False)
    try:
        assert serving.retriever.size == 0
        await other.ingest(folder)
        for _ in range(100):
            if serving.retriever.size == 1:
                break
            await asyncio.sleep(0.05)
        assert serving.retriever.size == 1
    finally:
        await other.close()
        await serving.close()
