"""``frontdesk train``, ``frontdesk eval`` and ``frontdesk models``: intent models from the
command line; ``frontdesk export finetune``: fine-tuning data from reviewed conversations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from frontdesk.config import Settings

if TYPE_CHECKING:
    from frontdesk.learning.registry import ModelVersion

# Markup is off: the lines carry file names, labels, names and texts from the company's
# data, where rich would read "[bold]" as a style (and drop it) and "[/x]" as a closing
# tag (and raise). Coloured words are Text spans: see say().
console = Console(stderr=True, soft_wrap=True, markup=False)
out = Console(soft_wrap=True, markup=False)

train_app = typer.Typer(
    help="Train models on the company's own labelled data.", no_args_is_help=True
)
eval_app = typer.Typer(help="Evaluate models on labelled data.", no_args_is_help=True)
models_app = typer.Typer(help="List and activate model versions.", no_args_is_help=True)

DataArg = Annotated[
    Path, typer.Argument(help="CSV with columns text,label (other columns are ignored).")
]
NameOpt = Annotated[str, typer.Option("--name", help="Model name, e.g. the company's.")]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Folder of the database and models.")
]
OosOpt = Annotated[str, typer.Option("--oos-label", help="The out-of-scope label.")]


def _settings(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir is not None else Settings()


def _registry(settings: Settings) -> Any:
    from frontdesk.learning.registry import ModelRegistry

    return ModelRegistry(settings.data_dir / "models")


class ProgressBar:
    """Rich progress bars with an ETA, one per step, fed by (step, done, total) callbacks."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> ProgressBar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def __call__(self, what: str, done: int, total: int) -> None:
        if what not in self.tasks:
            self.tasks[what] = self.progress.add_task(what, total=total)
        self.progress.update(self.tasks[what], completed=done, total=total)


def say(label: str, style: str, message: object = None, *, to: Console = console) -> None:
    """``label`` in ``style``, then ``message`` exactly as it is (on stderr by default)."""
    to.print(Text.assemble((label, style), "" if message is None else f" {message}"))


def error(message: object) -> None:
    say("error:", "red", message)


def _fail(exc: Exception) -> typer.Exit:
    error(exc)
    return typer.Exit(1)


@train_app.command("intents")
def train_intents_command(
    data: DataArg,
    name: NameOpt,
    shots: Annotated[
        int | None, typer.Option("--shots", help="Use at most K examples per label.", min=1)
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for sampling and splits.")] = 0,
    oos_label: OosOpt = "oos",
    fine_tune: Annotated[
        bool,
        typer.Option(
            "--fine-tune",
            # The backslash: --help is rendered with rich markup, which would drop "[train]".
            help="Fine-tune the sentence encoder too (needs the frontdesk\\[train] extra; "
            "minutes on a CPU). Without the extra, trains the heads only and says so.",
        ),
    ] = False,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs", help="Fine-tuning passes over the data (default: by its size).", min=1
        ),
    ] = None,
    unlabelled: Annotated[
        Path | None,
        typer.Option(
            "--unlabelled",
            help="A CSV of customer messages without labels (a text column; others are "
            "ignored): labels are spread to them from DATA's examples through the encoder's "
            "nearest neighbours, and the model learns from them too. Pseudonymized first.",
            dir_okay=False,
        ),
    ] = None,
    second_opinion: Annotated[
        bool,
        typer.Option(
            "--second-opinion",
            help="Also fine-tune a larger encoder (all-mpnet-base-v2) on the same examples: "
            "it classifies the messages the model is unsure of (confidence under 0.9). "
            "Needs the frontdesk\\[train] and frontdesk\\[large] extras; 5-12 minutes "
            "more for 10 examples of 77 intents, over half an hour for 10,000 examples, and "
            "10-15 ms for a message it decides.",
        ),
    ] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Train an intent model and make it the active version of NAME."""
    from frontdesk.learning.datasets import DatasetError, load_labelled, load_unlabelled
    from frontdesk.learning.finetune_encoder import TrainExtraMissing
    from frontdesk.learning.registry import RegistryError
    from frontdesk.learning.workflow import train_intents
    from frontdesk.service import default_embedder

    settings = _settings(data_dir)
    try:
        dataset = load_labelled(data)
        messages = None if unlabelled is None else load_unlabelled(unlabelled)
    except DatasetError as exc:
        raise _fail(exc) from exc
    embedder = default_embedder(settings)
    try:
        with ProgressBar() as bar:
            trained = train_intents(
                _registry(settings),
                embedder,
                dataset,
                name,
                shots=shots,
                seed=seed,
                oos_label=oos_label,
                progress=bar,
                fine_tune=fine_tune,
                epochs=epochs,
                notice=lambda line: say("notice:", "yellow", line),
                unlabelled=messages,
                second_opinion=second_opinion,
            )
    except (DatasetError, RegistryError, TrainExtraMissing) as exc:
        raise _fail(exc) from exc
    finally:
        embedder.close()
    meta = trained.version.meta
    calibration = meta.get("calibration") or {}
    console.print(
        f"trained intents model {name!r} version {trained.version.version} (active) on "
        f"{meta['examples']} examples, {meta['classes']} labels in {trained.seconds:.1f} s; "
        f"n-gram weight {meta['weight']}, temperature {meta['temperature']:.2f}, "
        f"out-of-scope threshold {meta['threshold']:.2f}"
        + (
            f"; validation accuracy {calibration['validation_accuracy']:.3f}, calibration "
            f"error {calibration['ece_before']:.3f} -> {calibration['ece_after']:.3f}"
            if calibration
            else ""
        )
    )
    if "unlabelled" in meta:
        spread = meta["unlabelled"]
        counts = sorted(spread["spread_label_counts"].items(), key=lambda item: -item[1])
        console.print(
            f"with {spread['examples']} unlabelled messages, labels spread from the examples "
            f"({spread['neighbours']} nearest neighbours each); most given: "
            + ", ".join(f"{label} {count}" for label, count in counts[:5])
        )
    if meta.get("fine_tuned_encoder"):
        tuning = meta["fine_tune"]
        console.print(
            f"its own encoder: {meta['encoder']} ({meta['encoder_file']}, fine-tuned for "
            f"{tuning['params']['epochs']} epochs in {tuning['tune_seconds']:.0f} s, exported "
            f"in {tuning['export_seconds']:.0f} s)"
        )
    if "second_opinion" in meta:
        tuning = meta["second_opinion"]["fine_tune"]
        console.print(
            f"second opinion under confidence {meta['second_below']}: "
            f"{meta['second_opinion']['encoder_base']}, fine-tuned in "
            f"{tuning['tune_seconds']:.0f} s, exported in {tuning['export_seconds']:.0f} s "
            "(second/ in the version's folder)"
        )


def _print_report(report: dict[str, Any]) -> None:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.2f}%"

    out.print(Text.assemble((report["data"], "bold"), f": {report['examples']} examples"))
    summary = Table(show_header=False, box=None)
    for key in (
        "accuracy",
        "macro_f1",
        "in_scope_accuracy",
        "oos_precision",
        "oos_recall",
        "oos_f1",
    ):
        summary.add_row(key, pct(report[key]))
    out.print(summary)
    table = Table("intent", "precision", "recall", "f1", "support")
    for label, row in report["per_intent"].items():
        table.add_row(label, pct(row["precision"]), pct(row["recall"]), pct(row["f1"]),
                      str(row["support"]))  # fmt: skip
    out.print(table)
    if report["most_confused"]:
        confused = Table("gold", "predicted", "count", title="most confused")
        for row in report["most_confused"]:
            confused.add_row(row["gold"], row["predicted"], str(row["count"]))
        out.print(confused)


@eval_app.command("intents")
def eval_intents_command(
    data: DataArg,
    name: NameOpt,
    version: Annotated[
        int | None, typer.Option("--version", help="Version to evaluate (default: active).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    oos_label: Annotated[
        str | None, typer.Option("--oos-label", help="The out-of-scope label in DATA.")
    ] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Accuracy, macro-F1, per-intent precision and recall, confusions, out-of-scope figures."""
    from frontdesk.learning.datasets import DatasetError, load_labelled
    from frontdesk.learning.intents import IntentModel
    from frontdesk.learning.registry import RegistryError
    from frontdesk.learning.workflow import KIND, evaluate_intents
    from frontdesk.service import default_embedder

    settings = _settings(data_dir)
    try:
        chosen = _registry(settings).get(KIND, name, version)
        model = IntentModel.load(chosen.path)
        dataset = load_labelled(data, min_classes=1)
    except (DatasetError, RegistryError) as exc:
        raise _fail(exc) from exc
    embedder = default_embedder(settings)
    try:
        with ProgressBar() as bar:
            report = evaluate_intents(model, embedder, dataset, oos_label=oos_label, progress=bar)
    except DatasetError as exc:
        raise _fail(exc) from exc
    finally:
        embedder.close()
        model.close()
    report["model"] = {"name": name, "version": chosen.version, "encoder": model.encoder}
    unknown = report["unknown_labels"]
    if unknown:
        examples = sum(unknown.values())
        say(
            "notice:",
            "yellow",
            f"{len(unknown)} label(s) of {data} are not among the model's "
            f"({', '.join(unknown)}): their {examples} example(s) can only count as errors",
        )
    if as_json:
        print(json.dumps(report))
    else:
        _print_report(report)


@models_app.command("list")
def models_list(data_dir: DataDirOpt = None) -> None:
    """Every model version: when it was made, its examples, labels, encoder and data; * marks
    the active one."""
    versions = _registry(_settings(data_dir)).list()
    if not versions:
        console.print("no models yet: train one with `frontdesk train intents DATA.csv --name N`")
        return
    if out.width < 80:
        _models_narrow(versions)
        return
    # Fits 80 columns: no vertical rules, the kind only when there are several, the day the
    # version was made (meta.json has the time), short columns never cut (they had been, to
    # "2026-1…" and "/tmp/…"); the name, the examples and the data path wrap instead.
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    kinds = len({v.kind for v in versions}) > 1
    for header in ("", "kind", "name", "version", "created", "examples", "labels", "encoder"):
        if header != "kind" or kinds:
            table.add_column(
                header,
                no_wrap=header not in ("name", "examples"),
                overflow="fold",  # never "…": the name is what `models activate` takes
                min_width=10 if header == "examples" else None,
            )
    table.add_column("data", overflow="fold", ratio=1)
    notes = []
    for v in versions:
        own, unlabelled = _own_encoder(v), _unlabelled_file(v)
        if own:
            notes.append(f"{v.name} version {v.version} has its own fine-tuned encoder {own}")
        if unlabelled:
            notes.append(
                f"{v.name} version {v.version} also learned from the unlabelled messages of "
                f"{unlabelled}"
            )
        if isinstance(v.meta.get("second_opinion"), dict):
            notes.append(
                f"{v.name} version {v.version} asks a second opinion under confidence "
                f"{v.meta.get('second_below')} ({v.meta['second_opinion'].get('encoder_base')}, "
                "fine-tuned, in second/)"
            )
        table.add_row(
            "*" if v.active else "",
            *([v.kind] if kinds else []),
            v.name,
            str(v.version),
            str(v.meta.get("created_at", ""))[:10],
            _examples(v),
            str(v.meta.get("classes", "")),
            "own" if own else "shared",
            str(v.meta.get("data", "")),
        )
    out.print(table)
    for note in notes:
        out.print(note)


def _own_encoder(v: ModelVersion) -> str | None:
    """The version's own fine-tuned encoder, as "NAME (FILE in FOLDER)"; None when it uses
    the shared one."""
    if not v.meta.get("encoder_file"):
        return None
    return f"{v.meta.get('encoder')} ({v.meta['encoder_file']} in {v.path})"


def _unlabelled_file(v: ModelVersion) -> str | None:
    """The file of unlabelled messages the version also learned from, if any."""
    if not isinstance(v.meta.get("unlabelled"), dict):
        return None
    return str(v.meta.get("unlabelled_data"))


def _examples(v: ModelVersion) -> str:
    """The version's examples, "1293" or "1293 + 156 unlabelled"."""
    examples = str(v.meta.get("examples", ""))
    if isinstance(v.meta.get("unlabelled"), dict):
        examples += f" + {v.meta['unlabelled'].get('examples')} unlabelled"
    return examples


def _models_narrow(versions: list[ModelVersion]) -> None:
    """``models list`` under 80 columns, where the table's columns would be a few letters
    wide: each version as a short block, long values folded at the edge."""
    for v in versions:
        own, unlabelled = _own_encoder(v), _unlabelled_file(v)
        encoder = "its own fine-tuned encoder" if own else "shared encoder"
        head = f"{v.kind} {v.name} version {v.version}"
        out.print(head + (" (active)" if v.active else ""), soft_wrap=False, overflow="fold")
        lines = [
            f"  created {str(v.meta.get('created_at', ''))[:10]}, {_examples(v)} examples, "
            f"{v.meta.get('classes', '')} labels, {encoder}",
            f"  data: {v.meta.get('data', '')}",
        ]
        if own:
            lines.append(f"  encoder: {own}")
        if unlabelled:
            lines.append(f"  unlabelled messages: {unlabelled}")
        for line in lines:
            out.print(line, soft_wrap=False, overflow="fold")


@models_app.command("activate")
def models_activate(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to make active.")],
    kind: Annotated[str, typer.Option("--kind", help="Kind of model.")] = "intents",
    data_dir: DataDirOpt = None,
) -> None:
    """Make VERSION the one the service loads (it picks it up on its next start)."""
    from frontdesk.learning.registry import RegistryError

    try:
        _registry(_settings(data_dir)).activate(kind, name, version)
    except RegistryError as exc:
        raise _fail(exc) from exc
    console.print(f"{kind} model {name!r} version {version} is now active")
