"""Intent models: labelled files, training, evaluation, the registry and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import DEMO, SharedEmbedder
from typer.testing import CliRunner

from frontdesk.adapters.models.onnx_embedder import OnnxEmbedder
from frontdesk.cli import app
from frontdesk.learning.datasets import DatasetError, load_labelled
from frontdesk.learning.intents import WEIGHTS, IntentModel, _choose_weight
from frontdesk.learning.registry import ModelRegistry, RegistryError
from frontdesk.learning.workflow import evaluate_intents, train_intents

runner = CliRunner()

TOY = """text,label,source
where is my parcel,order_status,a
has my order shipped yet,order_status,a
when will my package arrive,order_status,a
track my order please,order_status,a
what's the status of my delivery,order_status,b
is my order on its way,order_status,b
i want to return these shoes,return_item,a
how do i send something back,return_item,a
can i return a jacket,return_item,a
start a return for me,return_item,b
i'd like to return my order,return_item,b
return this item please,return_item,b
what's the weather like today,oos,a
tell me a joke,oos,a
who won the football game,oos,b
how do i bake bread,oos,b
what is the capital of peru,oos,b
recommend a good movie,oos,a
"""


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("words,label\nhi,greeting\nbye,goodbye\n", r"x.csv:1: missing column\(s\) text"),
        ("text,label\nhi,greeting\n,goodbye\n", r"x.csv:3: the text is empty"),
        ("text,label\nhi,greeting\nbye,\n", r"x.csv:3: the label is empty"),
        ("text,label\nhi,greeting\nhello,greeting\n", r"only 1 label\(s\) \(greeting\)"),
        ("text,label\n", r"x.csv: no examples"),
        (b"text,label\nhi,greet\n\xff\xfe caf\xe9,x\n", r"x.csv: not UTF-8 text"),
    ],
)
def test_that_a_bad_labelled_file_is_refused_naming_the_file_and_line(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    with pytest.raises(DatasetError, match=message):
        load_labelled(_write(tmp_path, "x.csv", content))


def test_that_extra_columns_are_ignored_and_shots_sample_per_label(tmp_path: Path) -> None:
    data = load_labelled(_write(tmp_path, "toy.csv", TOY))
    assert len(data) == 18 and data.classes == ["oos", "order_status", "return_item"]
    sampled = data.sample(2, seed=1, keep=frozenset({"oos"}))
    assert sampled.counts() == {"order_status": 2, "return_item": 2, "oos": 6}
    assert sampled.texts == data.sample(2, seed=1, keep=frozenset({"oos"})).texts


def test_that_a_model_trains_evaluates_and_is_versioned_with_its_data(
    tmp_path: Path, shared_embedder: SharedEmbedder
) -> None:
    data = load_labelled(_write(tmp_path, "toy.csv", TOY))
    registry = ModelRegistry(tmp_path / "models")
    first = train_intents(registry, shared_embedder, data, "toy")
    second = train_intents(registry, shared_embedder, data, "toy", shots=4, seed=3)
    assert (first.version.version, second.version.version) == (1, 2)
    assert registry.active_version("intents", "toy") == 2
    meta = second.version.meta
    assert meta["data_sha256"] != first.version.meta["data_sha256"]
    assert meta["shots"] == 4 and meta["label_counts"]["oos"] == 6
    assert "created_at" in meta and meta["encoder"] == shared_embedder.name
    model = IntentModel.load(first.version.path)
    report = evaluate_intents(model, shared_embedder, data)
    assert report["accuracy"] > 0.8
    assert {"macro_f1", "in_scope_accuracy", "oos_precision", "oos_recall"} <= set(report)
    vector = shared_embedder.embed(["where is my parcel right now"])
    prediction = model.predict_one("where is my parcel right now", vector)
    assert prediction.label == "order_status" and not prediction.out_of_scope
    assert 0 < prediction.confidence <= 1


def test_that_a_failed_training_leaves_nothing_in_the_registry(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")

    def broken(folder: Path) -> None:
        (folder / "model.npz").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        registry.add("intents", "toy", broken, {})
    assert registry.versions("intents", "toy") == []
    assert list((tmp_path / "models" / "intents" / "toy").iterdir()) == []
    with pytest.raises(RegistryError, match="no intents model 'toy' is active"):
        registry.get("intents", "toy")


def test_that_the_cli_trains_evaluates_lists_and_activates(tmp_path: Path) -> None:
    data = _write(tmp_path, "toy.csv", TOY)
    home = ["--data-dir", str(tmp_path / "d")]
    trained = runner.invoke(app, ["train", "intents", str(data), "--name", "toy", *home])
    assert trained.exit_code == 0, trained.output
    assert "version 1 (active)" in trained.output and "notice" not in trained.output
    runner.invoke(app, ["train", "intents", str(data), "--name", "toy", "--shots", "3", *home])
    evaluated = runner.invoke(
        app, ["eval", "intents", str(data), "--name", "toy", "--json", "--version", "1", *home]
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout.strip().splitlines()[-1])
    for key in ("accuracy", "macro_f1", "in_scope_accuracy", "oos_precision", "oos_recall"):
        assert isinstance(report[key], float), key
    assert report["model"] == {"name": "toy", "version": 1, "encoder": OnnxEmbedder.name}
    table = runner.invoke(app, ["eval", "intents", str(data), "--name", "toy", *home])
    assert "most confused" in table.stdout or "accuracy" in table.stdout
    listed = runner.invoke(app, ["models", "list", *home])
    assert listed.exit_code == 0 and "toy" in listed.stdout
    activated = runner.invoke(app, ["models", "activate", "toy", "1", *home])
    assert activated.exit_code == 0
    assert ModelRegistry(tmp_path / "d" / "models").active_version("intents", "toy") == 1
    missing = runner.invoke(app, ["models", "activate", "toy", "9", *home])
    assert missing.exit_code == 1 and "has no version 9" in missing.output


def _long_named_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, width: int
) -> tuple[Path, list[str], str]:
    """A model with a long name, trained from a file under a long path with spaces, listed
    on a terminal ``width`` columns wide: (the file, the --data-dir arguments, the name)."""
    from frontdesk import cli_learning

    monkeypatch.setattr(cli_learning.out, "width", width)
    folder = tmp_path / "a rather long folder name" / "for the company data"
    folder.mkdir(parents=True)
    data = _write(folder, "intents-train.csv", TOY)
    home = ["--data-dir", str(tmp_path / "d")]
    name = "northwind-outfitters-support"
    trained = runner.invoke(app, ["train", "intents", str(data), "--name", name, *home])
    assert trained.exit_code == 0, trained.output
    return data, home, name


def test_that_models_list_fits_80_columns_and_cuts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, home, name = _long_named_model(tmp_path, monkeypatch, width=80)
    listed = runner.invoke(app, ["models", "list", *home])
    assert listed.exit_code == 0, listed.output
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80
    assert "…" not in listed.stdout
    # The name and the path wrap within their columns: read each column top to bottom.
    header, _, *rows = listed.stdout.splitlines()
    name_at, version_at, data_at = (header.index(h) for h in ("name", "version", "data"))
    names = "".join(row[name_at:version_at].strip() for row in rows)
    paths = "".join(row[data_at:].strip() for row in rows)
    assert names == name
    assert paths.replace(" ", "") == str(data).replace(" ", "")
    created = ModelRegistry(tmp_path / "d" / "models").get("intents", name).meta["created_at"]
    assert str(created)[:10] in rows[0]


def test_that_models_list_under_80_columns_lists_each_version_as_a_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The table's columns were a few letters wide there ("demo-" / "store", the path six
    # letters a line).
    data, home, name = _long_named_model(tmp_path, monkeypatch, width=60)
    listed = runner.invoke(app, ["models", "list", *home])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert max(len(line) for line in lines) <= 60 and "…" not in listed.stdout
    assert lines[0] == f"intents {name} version 1 (active)"
    assert "examples" in lines[1] and "shared encoder" in lines[1]
    folded = "".join(line.strip() for line in lines[2:])  # folded at spaces or anywhere
    assert folded.replace(" ", "") == f"data:{data}".replace(" ", "")


def test_that_the_cli_refuses_a_bad_file_without_registering_anything(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.csv", "text,label\nhi,greeting\n")
    home = ["--data-dir", str(tmp_path / "d")]
    result = runner.invoke(app, ["train", "intents", str(bad), "--name", "toy", *home])
    assert result.exit_code == 1 and "only 1 label" in result.output
    assert ModelRegistry(tmp_path / "d" / "models").versions("intents", "toy") == []
    unknown = runner.invoke(app, ["eval", "intents", str(bad), "--name", "nope", *home])
    assert unknown.exit_code == 1 and "frontdesk train intents" in unknown.output


def test_that_brackets_in_labels_and_paths_are_printed_as_they_are(tmp_path: Path) -> None:
    """rich reads "[bold]" as a style and "[/b]" as a closing tag: printed through its
    markup, the first vanished from the messages and the second ended the command with a
    MarkupError traceback instead of the error."""
    folder = tmp_path / "[bold]data"
    folder.mkdir()
    home = ["--data-dir", str(tmp_path / "d")]
    for label in ("[/b]", "[bold]"):
        one = _write(folder, "one.csv", f"text,label\nhi,{label}\nhello,{label}\n")
        refused = runner.invoke(app, ["train", "intents", str(one), "--name", "toy", *home])
        assert isinstance(refused.exception, SystemExit), refused.exception
        assert refused.exit_code == 1
        assert f"{one}: only 1 label(s) ({label})" in refused.output
    data = _write(
        folder, "toy.csv", TOY.replace("order_status", "[bold]order").replace("oos,", "[/b]x,")
    )
    trained = runner.invoke(app, ["train", "intents", str(data), "--name", "toy", *home])
    assert trained.exit_code == 0, trained.output
    shown = runner.invoke(app, ["eval", "intents", str(data), "--name", "toy", *home])
    assert shown.exit_code == 0, shown.output
    assert str(data) in shown.stdout
    assert "[bold]order" in shown.stdout and "[/b]x" in shown.stdout


def test_that_eval_names_the_labels_the_model_never_learned(tmp_path: Path) -> None:
    home = ["--data-dir", str(tmp_path / "d")]
    data = _write(tmp_path, "toy.csv", TOY)
    assert (
        runner.invoke(app, ["train", "intents", str(data), "--name", "toy", *home]).exit_code == 0
    )
    newer = _write(
        tmp_path,
        "newer.csv",
        "text,label\nwhere is my parcel,order_status\nmy money back please,refund\n"
        "refund me,refund\ncan i pay with paypal,payment\nwhat's the weather,oos\n",
    )
    evaluated = runner.invoke(
        app, ["eval", "intents", str(newer), "--name", "toy", "--json", *home]
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["unknown_labels"] == {"payment": 1, "refund": 2}
    assert "2 label(s) of" in evaluated.stderr and "(payment, refund)" in evaluated.stderr
    assert "their 3 example(s) can only count as errors" in evaluated.stderr
    same = runner.invoke(app, ["eval", "intents", str(data), "--name", "toy", "--json", *home])
    assert json.loads(same.stdout)["unknown_labels"] == {} and "notice" not in same.stderr


def test_that_the_demo_store_intent_data_has_20_examples_per_intent() -> None:
    train = load_labelled(DEMO / "intents" / "train.csv")
    test = load_labelled(DEMO / "intents" / "test.csv")
    assert min(train.counts().values()) >= 20
    assert set(train.classes) == set(test.classes)
    assert not {t.lower() for t in train.texts} & {t.lower() for t in test.texts}


def test_that_the_fast_n_gram_features_match_the_vectorizer(tmp_path: Path) -> None:
    import numpy as np

    from frontdesk.learning.intents import _lexical, _vectorizer

    data = load_labelled(_write(tmp_path, "toy.csv", TOY))
    head, _ = _lexical(list(data.texts), list(data.labels))
    texts = ["where is my parcel??", "RETURN these Shoes", "", "zzz qqq"]
    reference = _vectorizer(head.vocabulary)
    reference.idf_ = head.idf
    logits = np.asarray(reference.transform(texts) @ head.coef.T) + head.intercept
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    assert np.allclose(head.probabilities(texts), expected, atol=1e-5)


UNLABELLED = """text,channel
"hi it's jane.doe@example.com, has my parcel shipped?",web
where is my package at the moment,web
my order still hasn't come,email
can i get a return label for these boots,web
i need to send back a coat that doesn't fit,email
how do i return something i bought,web
"""


def test_that_labels_spread_along_the_neighbour_graph_and_beat_a_wrong_prior() -> None:
    import numpy as np

    from frontdesk.learning.spreading import neighbour_graph, spread

    def unit(angle: float) -> list[float]:
        return [float(np.cos(angle)), float(np.sin(angle))]

    # Two chains of points, one near angle 0 and one near angle pi/2, a labelled point at
    # the start of each: a label reaches the far end of its chain only through the chain.
    left = [unit(0.02 * i) for i in range(6)]
    right = [unit(np.pi / 2 - 0.02 * i) for i in range(6)]
    labelled = np.array([left[0], right[0]], dtype=np.float32)
    unlabelled = np.array(left[1:] + right[1:], dtype=np.float32)
    prior = np.full((10, 2), 0.5)
    prior[1] = [0.3, 0.7]  # the prior is wrong about the left chain's third point
    index, share = spread(labelled, np.array([0, 1]), unlabelled, prior, neighbours=2)
    assert index.tolist() == [0] * 5 + [1] * 5
    assert (share > 0.5).all() and (share <= 1.0).all()
    graph = neighbour_graph(unlabelled, neighbours=2)
    assert abs(graph - graph.T).max() < 1e-12  # symmetric
    assert graph[0, 6] == 0  # no edge between the chains


def test_that_pseudonymize_numbers_each_kind_and_reuses_tokens_for_equal_values() -> None:
    from frontdesk.pipeline.privacy import PatternDetector, pseudonymize

    text = "mail a@b.com or A@B.com, not c@d.org; call 415-555-0134"
    assert pseudonymize(text, PatternDetector()) == (
        "mail <EMAIL_1> or <EMAIL_1>, not <EMAIL_2>; call <PHONE_1>"
    )


def test_that_unlabelled_messages_are_pseudonymized_and_learned_from(
    tmp_path: Path, shared_embedder: SharedEmbedder
) -> None:
    from frontdesk.learning.datasets import load_unlabelled

    data = load_labelled(_write(tmp_path, "toy.csv", TOY))
    messages = load_unlabelled(_write(tmp_path, "u.csv", UNLABELLED))
    registry = ModelRegistry(tmp_path / "models")
    seen: list[str] = []
    real_embed = shared_embedder.embed

    def embed(texts: list[str]) -> object:
        seen.extend(texts)
        return real_embed(texts)

    shared_embedder.embed = embed  # type: ignore[method-assign]
    try:
        trained = train_intents(registry, shared_embedder, data, "toy", unlabelled=messages)
    finally:
        del shared_embedder.embed
    meta = trained.version.meta
    assert meta["examples"] == 18  # the labelled ones
    assert meta["unlabelled"]["examples"] == 6
    spread = meta["unlabelled"]["spread_label_counts"]
    assert sum(spread.values()) == 6 and set(spread) <= {"order_status", "return_item", "oos"}
    assert meta["unlabelled_data_sha256"] == messages.digest()
    assert "hi it's <EMAIL_1>, has my parcel shipped?" in seen
    assert not any("jane" in text for text in seen)
    folder = trained.version.path
    stored = " ".join(p.read_text() for p in folder.iterdir() if p.suffix == ".json")
    assert "jane" not in stored and "example.com" not in stored
    model = IntentModel.load(folder)
    vector = shared_embedder.embed(["can i return these boots"])
    assert model.predict_one("can i return these boots", vector).label == "return_item"


def _train_noting(
    tmp_path: Path, embedder: SharedEmbedder, content: str, **options: Any
) -> tuple[Any, list[str]]:
    """``train_intents`` on ``content`` (written to toy.csv) and the notices it gave."""
    notices: list[str] = []
    trained = train_intents(
        ModelRegistry(tmp_path / "models"),
        embedder,
        load_labelled(_write(tmp_path, "toy.csv", content)),
        "toy",
        notice=notices.append,
        **options,
    )
    return trained, notices


def test_that_a_large_unlabelled_file_and_no_out_of_scope_examples_are_said(
    tmp_path: Path, shared_embedder: SharedEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from frontdesk.learning import spreading
    from frontdesk.learning.datasets import load_unlabelled

    monkeypatch.setattr(spreading, "MAX_UNLABELLED", 4)
    in_scope = "\n".join(line for line in TOY.splitlines() if ",oos," not in line) + "\n"
    trained, notices = _train_noting(
        tmp_path,
        shared_embedder,
        in_scope,
        unlabelled=load_unlabelled(_write(tmp_path, "u.csv", UNLABELLED)),
    )
    assert notices == [
        f"{tmp_path / 'u.csv'} has 6 messages; using 4 of them, chosen at random (seed 0)",
        "the examples have no out-of-scope label 'oos': every unlabelled message will be "
        "learned as one of the intents; add out-of-scope examples if the messages include "
        "questions of no intent",
    ]
    assert trained.version.meta["unlabelled"]["examples"] == 4


def test_that_a_text_given_two_labels_is_said(
    tmp_path: Path, shared_embedder: SharedEmbedder
) -> None:
    clashing = TOY + "Where is my  PARCEL,return_item,c\nstart a return for me,oos,c\n"
    trained, notices = _train_noting(tmp_path, shared_embedder, clashing)
    assert notices == [
        f"2 text(s) of {tmp_path / 'toy.csv'} have more than one label, such as 'where is my "
        "parcel' (order_status, return_item): the model can learn only one of them"
    ]
    assert trained.version.meta["conflicting_texts"] == 2
    assert _train_noting(tmp_path, shared_embedder, TOY)[1] == []


def test_that_the_cli_trains_with_unlabelled_messages_and_refuses_a_bad_file(
    tmp_path: Path,
) -> None:
    data = _write(tmp_path, "toy.csv", TOY)
    home = ["--data-dir", str(tmp_path / "d")]
    registry = ModelRegistry(tmp_path / "d" / "models")
    for content, message in (
        ("words\nhello\n", "u.csv:1: missing column(s) text"),
        ('text\nhello\n""\n', "u.csv:3: the text is empty"),
        (b"text\n\xff\xfe\n", "u.csv: not UTF-8 text"),
    ):
        bad = _write(tmp_path, "u.csv", content)
        result = runner.invoke(
            app, ["train", "intents", str(data), "--name", "toy", "--unlabelled", str(bad), *home]
        )
        assert result.exit_code == 1 and message in " ".join(result.output.split()), result.output
        assert registry.versions("intents", "toy") == []
    good = _write(tmp_path, "u.csv", UNLABELLED)
    result = runner.invoke(
        app, ["train", "intents", str(data), "--name", "toy", "--unlabelled", str(good), *home]
    )
    assert result.exit_code == 0, result.output
    assert "with 6 unlabelled messages, labels spread from the examples" in result.output
    assert "most given: order_status 3, return_item 3" in " ".join(result.output.split())
    assert registry.get("intents", "toy").meta["unlabelled"]["examples"] == 6
    listed = runner.invoke(app, ["models", "list", *home])
    assert "toy version 1 also learned from the unlabelled messages of" in " ".join(
        listed.stdout.split()
    )


def test_that_the_n_gram_weight_is_the_most_accurate_and_ties_keep_both_heads() -> None:
    gold = np.array([0, 1, 0, 1])
    right = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    # Both heads right everywhere: every weight ties, and the largest is taken (it was 0.0,
    # which dropped the n-gram head on any tie).
    assert _choose_weight(right, right, gold) == (WEIGHTS[-1], 1.0)
    # The n-gram head wrong everywhere and sure of it: mixing in much of it costs examples.
    wrong = 1.0 - right
    weight, accuracy = _choose_weight(right, wrong, gold)
    assert accuracy == 1.0 and weight < WEIGHTS[-1]
    mixed = (1 - weight) * right + weight * wrong
    assert (mixed.argmax(1) == gold).all()
    # Only a little of the n-gram head is right: it fixes the dense head's mistake (second row)
    # at 0.2 and makes its own (third row) from 0.35 on.
    dense = np.array([[0.9, 0.1], [0.55, 0.45], [0.7, 0.3], [0.1, 0.9]])
    lexical = np.array([[0.9, 0.1], [0.0, 1.0], [0.0, 1.0], [0.1, 0.9]])
    assert _choose_weight(dense, lexical, gold) == (0.2, 1.0)


def test_that_the_ngram_head_worked_out_apart_gives_the_same_prediction(
    demo_intents: Path, shared_embedder: SharedEmbedder
) -> None:
    """A turn runs the n-gram head while its question is embedded, then the dense head."""
    from frontdesk.demo import DEMO_INTENTS

    model = IntentModel.load(ModelRegistry(demo_intents).get("intents", DEMO_INTENTS).path)
    texts = ["where is my order?", "tell me a joke", "can I pay with paypal"]
    vectors = shared_embedder.embed(texts)
    ngrams = model.ngram_probabilities(texts)
    assert ngrams is not None and model.weight > 0
    assert model.predict(texts, vectors, ngrams) == model.predict(texts, vectors)
