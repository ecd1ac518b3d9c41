"""Privacy stage: find personal data in a message and replace it by stable pseudonyms.

Ten kinds of personal data, found by validated patterns (``PatternDetector``): emails, phone
numbers, payment cards (Luhn), IBANs (mod-97), US social security numbers (area, group and
serial rules), IPv4/IPv6 addresses (parsed), street addresses, dates of birth (a date next to a
cue such as "born" or "DOB"), person names (after cues such as "my name is", "I'm", a sign-off)
and passport numbers (after the word "passport"). ``frontdesk.adapters.pii`` adds a detector
that also finds names with spaCy's named-entity model, through Presidio.

Store data is never taken for personal data: order ids (``#W1234567``), item ids (bare runs of
10 digits: never a phone number), tracking numbers, zip codes, prices and order dates.

Each value becomes a token such as ``<EMAIL_1>``; the same value gets the same token for the
whole conversation. The stage only computes keyed digests (HMAC-SHA256) of the values; the
action layer maps digests to numbers in the ``pseudonyms`` table, which never holds a value.

The module-level ``detect`` returns the kinds the rest of the pipeline handles today (email,
card, phone); ``PatternDetector().detect`` returns all ten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

EMAIL = "EMAIL"
CARD = "CARD"
PHONE = "PHONE"
IBAN = "IBAN"
SSN = "SSN"
IP = "IP"
ADDRESS = "ADDRESS"
DOB = "DOB"
PERSON = "PERSON"
PASSPORT = "PASSPORT"
KINDS = (EMAIL, PHONE, CARD, IBAN, SSN, IP, ADDRESS, DOB, PERSON, PASSPORT)
# What the module-level ``detect`` returns: the kinds the pipeline maps to entities today.
LEGACY_KINDS = frozenset({EMAIL, CARD, PHONE})

TOKEN_RE = re.compile(rf"<({'|'.join(KINDS)})_(\d+)>")


@dataclass(frozen=True, slots=True)
class Span:
    kind: str
    start: int
    end: int
    value: str


class Detector(Protocol):
    """Finds personal data: spans left to right, without overlaps."""

    def detect(self, text: str) -> list[Span]: ...


def _span(kind: str, text: str, start: int, end: int) -> Span:
    return Span(kind, start, end, text[start:end])


# Sentence breaks: a cue and its value must be in the same sentence ("no." is no end).
_BREAK_RE = re.compile(r"[!?\n;]|(?<!\bno)(?<!\bnr)(?<!\bnum)\.(?:\s|$)", re.IGNORECASE)


def _same_sentence(between: str) -> bool:
    return _BREAK_RE.search(between) is None


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The last match of ``pattern`` in ``text``."""
    last = None
    for match in pattern.finditer(text):
        last = match
    return last


# --- emails -----------------------------------------------------------------------------------

_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")


def find_emails(text: str) -> Iterator[Span]:
    for match in _EMAIL_RE.finditer(text):
        yield _span(EMAIL, text, *match.span())


# --- payment cards ----------------------------------------------------------------------------

# 13 to 19 digits: in one run, in groups of four (16 to 19 digits) or as 4-6-5 / 4-6-4 (Amex,
# Diners), with one kind of separator.
_CARD_RE = re.compile(
    r"(?<![\d-])(?:"
    r"\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?"
    r"|\d{4}([ -])\d{6}\2\d{4,5}"
    r"|\d{13,19}"
    r")(?![\d-])"
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_valid(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    return (
        13 <= len(digits) <= 19 and digits[0] != "0" and len(set(digits)) > 1 and luhn_valid(digits)
    )


def find_cards(text: str) -> Iterator[Span]:
    for match in _CARD_RE.finditer(text):
        start, end = match.span()
        if _card_valid(text[start:end]):
            yield Span(CARD, start, end, text[start:end])
        elif match.group(1) and match.group().count(match.group(1)) == 4:
            # Four groups of four and a short fifth: the fifth may be an expiry or a CVV.
            end = match.start() + match.group().rindex(match.group(1))
            if _card_valid(text[start:end]):
                yield Span(CARD, start, end, text[start:end])


# --- phone numbers ----------------------------------------------------------------------------

# A phone number must show that it is one: a leading +, an area code in parentheses, or
# separators between digit groups. Bare digit runs (order and item ids in a store) are not
# taken for phone numbers, and neither are digit groups inside a longer run of groups.
_PHONE_RE = re.compile(
    r"(?<![\w+])(?<!\d[ .-])(?:"  # not the tail of a longer group of digits (an IBAN)
    r"\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}"
    r"|1[\s.-]\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}"
    r"|\(\d{2,4}\)[\s.-]?\d{3,4}[\s.-]?\d{3,4}"
    r"|\d{3}[.-]\d{3}[.-]\d{4}"
    r"|\d{3} \d{3} \d{4}"
    r"|0\d{2,4}[\s-]\d{3,4}[\s-]?\d{3,4}"
    r")(?![\w-]|[.,]\d)"
)


def find_phones(text: str) -> Iterator[Span]:
    for match in _PHONE_RE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 7 <= len(digits) <= 15:
            yield _span(PHONE, text, *match.span())


# --- IBANs ------------------------------------------------------------------------------------

_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30,
    "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_START_RE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})\d{2}(?=[ -]?[A-Za-z0-9])")


def iban_valid(compact: str) -> bool:
    """ISO 13616: the country's length and the mod-97 check of the rearranged number."""
    compact = compact.upper()
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def find_ibans(text: str) -> Iterator[Span]:
    for match in _IBAN_START_RE.finditer(text):
        length = _IBAN_LENGTHS.get(match.group(1).upper())
        if length is None:
            continue
        # Take exactly ``length`` characters, allowing one space or dash between them.
        chars: list[str] = []
        index = match.start()
        while index < len(text) and len(chars) < length:
            char = text[index]
            if char.isascii() and char.isalnum():
                chars.append(char)
            elif char in " -" and chars and index + 1 < len(text) and text[index + 1].isalnum():
                pass
            else:
                break
            index += 1
        after = text[index : index + 1]
        if len(chars) == length and not (after.isalnum()) and iban_valid("".join(chars)):
            yield _span(IBAN, text, match.start(), index)


# --- US social security numbers ---------------------------------------------------------------

_SSN_RE = re.compile(r"(?<![\w-])(\d{3})([- ]?)(\d{2})\2(\d{4})(?![\w-]|[.,]\d)")
_SSN_CUE_RE = re.compile(
    r"\b(?:ssn|ss#|ss\s?no|social(?:\s+security)?(?:\s+(?:number|no|#))?|soc\.?\s+sec|itin)\b",
    re.IGNORECASE,
)


def ssn_valid(area: str, group: str, serial: str) -> bool:
    return area not in {"000", "666"} and area[0] != "9" and group != "00" and serial != "0000"


def _cue_before(cue: re.Pattern[str], text: str, start: int, window: int) -> bool:
    before = text[max(0, start - window) : start]
    found = _last(cue, before)
    return found is not None and _same_sentence(before[found.end() :])


def find_ssns(text: str) -> Iterator[Span]:
    for match in _SSN_RE.finditer(text):
        area, separator, group, serial = match.groups()
        if not ssn_valid(area, group, serial):
            continue
        # Nine digits in one run are an SSN only after a cue ("SSN", "social security").
        if separator or _cue_before(_SSN_CUE_RE, text, match.start(), 40):
            yield _span(SSN, text, *match.span())


# --- IP addresses -----------------------------------------------------------------------------

_IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6_RE = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?"
    r"(?![\w:]|\.\d)"
)
_VERSION_CUE_RE = re.compile(r"\b(?:version|ver|v|firmware|build|release|os|ios)\W{0,3}$", re.I)


def find_ips(text: str) -> Iterator[Span]:
    for match in _IPV4_RE.finditer(text):
        try:
            ipaddress.IPv4Address(match.group())
        except ValueError:
            continue
        if not _VERSION_CUE_RE.search(text[max(0, match.start() - 12) : match.start()]):
            yield _span(IP, text, *match.span())
    for match in _IPV6_RE.finditer(text):
        value = match.group()
        if not re.search(r"[0-9A-Fa-f]", value):
            continue
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            continue
        yield _span(IP, text, *match.span())


# --- street addresses -------------------------------------------------------------------------

_SUFFIXES = (
    "street|st|avenue|ave|av|road|rd|lane|ln|boulevard|blvd|drive|dr|court|ct|way|place|pl|"
    "terrace|ter|parkway|pkwy|circle|cir|highway|hwy|square|sq|trail|trl|crescent|plaza|alley"
)
# The states of the USA (and DC, Puerto Rico) by name, with their postal codes.
STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL",
    "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA",
    "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN",
    "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR",
    "Pennsylvania": "PA", "Puerto Rico": "PR", "Rhode Island": "RI", "South Carolina": "SC",
    "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI",
    "Wyoming": "WY",
}  # fmt: skip
_STATE_CODES = "|".join(STATES.values())
_STATE_NAMES = "|".join(name.replace(" ", r"\s+") for name in STATES)
# A state by code or name (case as the pattern using it says), for the flows' address slot too.
STATE = rf"(?:{_STATE_CODES}|{_STATE_NAMES})"
# A unit after the street: Apt 4B, Suite 259, Unit 12, #5.
UNIT = (
    r"(?:(?i:apt|apartment|suite|ste|unit|fl|floor|rm|room|bldg)\.?\s*#?\s*[A-Za-z0-9-]{1,6}"
    r"|#\s?\d{1,5}[A-Za-z]?)(?![\w-])"
)


def _street(word: str) -> str:
    """The street line: number, words and suffix, or a PO box; then a unit, if any."""
    return (
        r"(?:"
        # 986 Sunset Drive / 12B W. 34th St
        rf"\d{{1,6}}[A-Za-z]?\s+(?:(?:{word}|\d{{1,4}}(?:st|nd|rd|th))\s+){{1,5}}"
        rf"(?i:{_SUFFIXES})\b\.?"
        # P.O. Box 4411
        r"|(?i:p\.?\s?o\.?\s?box|post\s+office\s+box)\s+\d{1,6}\b"
        r")"
        rf"(?:,?\s*{UNIT})?"
    )


def _address_re(case_insensitive: bool) -> re.Pattern[str]:
    word = r"[A-Za-z][A-Za-z'’.-]*" if case_insensitive else r"[A-Z][A-Za-z'’.-]*"
    city = rf"{word}(?:[ -]{word}){{0,2}}"
    state = STATE
    zip_code = r"\d{5}(?:-\d{4})?(?![\w-])"
    uk_postcode = r"[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b"
    pattern = (
        r"(?<![\w#$.,/-])"
        + _street(word)
        # , Denver, CO 80279 / , Denver CO / , London NW1 6XE / 80279
        + rf"(?:,?\s+{city},?\s+{state}\b(?:\.?,?\s+{zip_code})?"
        rf"|,?\s+{state}\s+{zip_code}"
        rf"|,\s*{city},?\s+(?:{zip_code}|{uk_postcode})"
        rf"|,?\s+{zip_code})?"
    )
    return re.compile(pattern, re.IGNORECASE if case_insensitive else 0)


_ADDRESS_RE = _address_re(case_insensitive=False)
_ADDRESS_ANYCASE_RE = _address_re(case_insensitive=True)
_ADDRESS_CUE_RE = re.compile(
    r"\b(?:address(?:es)?|addr|ship(?:ped|ping)?|send|sent|deliver(?:ed|y)?|mail(?:ed|ing)?|"
    r"live|living|moved|move|located|billing|residence|house|apartment|home|street)\b",
    re.IGNORECASE,
)
# Words before a number that make it a quantity ("I need 2 External Hard Drive").
_QUANTITY_BEFORE_RE = re.compile(
    r"\b(?:buy|bought|order|ordered|need|want|get|got|purchase[ds]?|return(?:ing)?|exchange|"
    r"qty|quantity|of|pack|the|x|add|added|have|had)\s*$",
    re.IGNORECASE,
)
_STREET_STOP_WORDS = (
    "a an the and or of to for in on at by my your our his her their it is was be this that "
    "these those too very so item items pair pairs pack order orders size sizes "
    "please thanks i me you we they he she"
)
_NOT_STREET_WORDS = frozenset(_STREET_STOP_WORDS.split())


def find_addresses(text: str) -> Iterator[Span]:
    seen: set[tuple[int, int]] = set()
    for regex, any_case in ((_ADDRESS_RE, False), (_ADDRESS_ANYCASE_RE, True)):
        for match in regex.finditer(text):
            start, end = match.span()
            while end > start and text[end - 1] in ".,":
                end -= 1
            if (start, end) in seen:
                continue
            value = text[start:end]
            before = text[max(0, start - 60) : start]
            if _QUANTITY_BEFORE_RE.search(before):
                continue
            words = re.findall(r"[A-Za-z]+", value.split(",")[0])
            if any(w.casefold() in _NOT_STREET_WORDS for w in words[:-1]):
                continue
            if any_case:
                # Typed in lower case: needs a cue ("ship to", "my address") or a state + zip.
                has_tail = re.search(r"\b[A-Za-z]{2}\s+\d{5}(?:-\d{4})?$", value) is not None
                cue = _ADDRESS_CUE_RE.search(before)
                if not (has_tail or (cue and _same_sentence(before[cue.end() :]))):
                    continue
            seen.add((start, end))
            yield Span(ADDRESS, start, end, value)


# --- dates of birth ---------------------------------------------------------------------------

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
    "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH_RE = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE_RE = re.compile(
    r"(?<![\w/.,-])(?:"
    r"(?P<a>\d{1,2})(?P<s>[/.-])(?P<b>\d{1,2})(?P=s)(?P<c>\d{4}|\d{2})"
    r"|(?P<y>\d{4})(?P<s2>[/.-])(?P<m>\d{1,2})(?P=s2)(?P<d>\d{1,2})"
    rf"|(?P<mon>{_MONTH_RE})\.?\s+(?P<md>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<my>\d{{4}}))?"
    rf"|(?P<dm>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon2>{_MONTH_RE})\.?(?:,?\s+(?P<dy>\d{{4}}))?"
    r")(?![\w/-]|\.\d)",
    re.IGNORECASE,
)
_DOB_CUE_RE = re.compile(
    r"\b(?:born|birth(?:day|date)?|b-?day|d\.?o\.?b\b\.?|date\s+of\s+birth)", re.IGNORECASE
)
# Between a cue and a date: the date belongs to an order, not to the person.
_ORDER_WORDS_RE = re.compile(
    r"\b(?:order(?:ed|s)?|placed|bought|purchased?|ship(?:ped|s)?|deliver(?:ed|y|s)?|"
    r"arriv(?:e|ed|es|al)|refund(?:ed)?|return(?:ed)?|charged|paid|gifts?|presents?|sale|"
    r"expir(?:e|es|ed|y)|valid|due)\b",
    re.IGNORECASE,
)


def _century(year: int, today: dt.date) -> int:
    return 2000 + year if 2000 + year <= today.year else 1900 + year


def parse_date(match: re.Match[str], today: dt.date | None = None) -> dt.date | None:
    """The calendar date a ``_DATE_RE`` match names, or None (invalid, in the future)."""
    today = today or dt.date.today()
    groups = match.groupdict()
    candidates: list[tuple[int, int, int]] = []
    if groups["a"]:
        first, second, year = int(groups["a"]), int(groups["b"]), int(groups["c"])
        year = _century(year, today) if len(groups["c"]) == 2 else year
        candidates = [(year, first, second), (year, second, first)]  # US order first
    elif groups["y"]:
        candidates = [(int(groups["y"]), int(groups["m"]), int(groups["d"]))]
    else:
        month = _MONTHS[(groups["mon"] or groups["mon2"])[:3].lower()]
        day = int(groups["md"] or groups["dm"])
        year_text = groups["my"] or groups["dy"]
        candidates = [(int(year_text) if year_text else 2000, month, day)]
    for year, month, day in candidates:
        try:
            date = dt.date(year, month, day)
        except ValueError:
            continue
        if year >= 1900 and date <= today:
            return date
    return None


def _dob_cue_near(text: str, start: int, end: int) -> bool:
    """A birth cue before the date with no order word between ("born on ..."), or right after
    it ("... is my birthday") when no order word comes before the date in its sentence
    ("ordered on ... for my birthday" is an order date)."""
    before = text[max(0, start - 50) : start]
    cue = _last(_DOB_CUE_RE, before)
    if cue is not None:
        between = before[cue.end() :]
        if _same_sentence(between) and not _ORDER_WORDS_RE.search(between):
            return True
    after = text[end : end + 30]
    cue = _DOB_CUE_RE.search(after)
    if cue is None:
        return False
    between = after[: cue.start()]
    if not _same_sentence(between) or _ORDER_WORDS_RE.search(between):
        return False
    sentence_end = _last(_BREAK_RE, before)
    sentence = before[sentence_end.end() :] if sentence_end else before
    return _ORDER_WORDS_RE.search(sentence) is None


def find_dobs(text: str) -> Iterator[Span]:
    if not _DOB_CUE_RE.search(text):
        return
    for match in _DATE_RE.finditer(text):
        if parse_date(match) is not None and _dob_cue_near(text, *match.span()):
            yield _span(DOB, text, *match.span())


# --- passports --------------------------------------------------------------------------------

_PASSPORT_CUE_RE = re.compile(r"\bpassport\b", re.IGNORECASE)
_PASSPORT_RE = re.compile(
    r"(?<![\w#$.,/-])(?:[A-Za-z]{1,2}\d{6,8}|\d{8,9}|(?=[A-Z0-9]*\d[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])"
    r"[A-Z0-9]{9})(?![\w/-]|[.,]\d)"
)


def find_passports(text: str) -> Iterator[Span]:
    for cue in _PASSPORT_CUE_RE.finditer(text):
        window_end = min(len(text), cue.end() + 40)
        for match in _PASSPORT_RE.finditer(text, cue.end(), window_end):
            if not _same_sentence(text[cue.end() : match.start()]):
                break
            if re.fullmatch(r"[Ww]\d{7}", match.group()):
                continue  # an order id typed without its "#"
            yield _span(PASSPORT, text, *match.span())
            break


# --- person names -----------------------------------------------------------------------------

# Words that follow "I'm", "this is", "Thanks," and similar cues without being a name.
_NOT_NAMES = """
    a an the and or but if so then than to of in on at by for with from about as into onto over
    under up down out off via per not no nor yes yeah yep nope ok okay sure please pls plz thanks
    thank thx ty hi hello hey dear all everyone everybody anyone someone somebody team guys folks
    sir madam maam ma'am mr mrs ms dr miss mx prof me my mine myself you your yours we our us they
    them their he him his she her it its i i'm im this that these those there here where what
    which who whom whose when why how just only also too very really still already again even
    ever never always now today tonight tomorrow yesterday soon later currently finally actually
    basically literally honestly seriously definitely probably maybe perhaps kind sort bit little
    lot lots much many more most less least some any every each both either neither other another
    same such own new old good great fine well bad better best worse worst nice cool happy glad sad
    sorry afraid upset angry annoyed frustrated disappointed confused worried concerned unhappy
    pleased satisfied excited interested unable able ready done sure certain aware positive
    serious back away home outside inside abroad stuck lost late early busy free available
    calling contacting reaching writing trying looking waiting wondering hoping asking checking
    following emailing messaging texting getting going coming having making ordering returning
    exchanging buying paying moving travelling traveling working living using planning needing
    wanting thinking requesting following still new customer client member user buyer owner
    shopper guest regular loyal first last next previous final original order orders item items
    product products account card number email phone address name package parcel delivery
    refund return exchange payment invoice receipt support service help question problem issue
    regards best cheers sincerely yours love bye goodbye later morning afternoon evening night
    monday tuesday wednesday thursday friday saturday sunday january february march april may
    june july august september october november december jan feb mar apr jun jul aug sep sept
    oct nov dec in-store online usa us uk eu english spanish french german gonna wanna gotta
    unacceptable ridiculous terrible awful amazing confused lucky unlucky tired sick pregnant
    allergic vegan retired disabled deaf blind calling regarding re fyi asap btw lol
    spelled spelt misspelled wrong wrongly incorrect incorrectly correct right different missing
    listed printed shown showing written displayed appearing wrong changed updated cut blank
    empty same still unchanged misprinted typo typed mistyped please hoping writing unsure
    is are was were be been being am do does did can could would will shall should might must
    have has had let lets let's get got give gave send sent ship shipped shipping tracking track
    size color colour price store gift bank reference app rate total refund refunds pickup
    cancel change update check tell show find want need like love hate wish know think see
    question quick hmm um uh oh wow yay great awesome perfect excellent broken keep seller
    yesterdays wife husband son daughter mom mum mother dad father partner friend sister
    brother colleague boss neighbor neighbour roommate landlord spouse kid kids child children
    grandma grandpa aunt uncle cousin urgent important
"""
NOT_NAMES = frozenset(_NOT_NAMES.split())
# Words of product names and other shop nouns: a "name" holding one of them is not a person
# ("Thanks, Makeup Kit"; spaCy's small model takes "Electric Kettle" or "Gaming Mouse" for
# people).
_SHOP_WORDS = """
    camera cameras purifier backpack bicycle bike speaker speakers bookshelf bookcase maker
    helmet lamp lamps set sets e-reader reader kindle kettle toothbrush machine jacket jackets
    coat mouse hose grill headphones headphone headset boots boot puzzle bulb bulbs laptop
    notebook luggage suitcase kit keyboard chair chairs desk table umbrella perfume cologne bed
    charger shoes shoe skateboard thermostat watch watches smartwatch smartphone phone sneakers
    sunglasses glasses t-shirt shirt shirts tee tablet cleaner vacuum clock bottle earbuds
    earphones wristwatch mat router monitor printer cable adapter case cover bag bags hoodie
    sweater dress jeans pants shorts socks sofa couch mattress pillow blender toaster microwave
    fridge oven heater drone console controller tv television tripod lens battery powerbank
    dumbbell dumbbells treadmill tent stove knife mug espresso coffee humidifier tracker strap
    bracelet necklace wallet purse gloves scarf sandals slippers wireless bluetooth smart
    electric digital portable mechanical gaming indoor outdoor led hiking running cycling
    jigsaw makeup fleece yoga air action office security patio tea garden visa mastercard
    maestro amex paypal venmo zelle klarna afterpay affirm pay atm euro euros ruble rubles
    pound pounds dollar dollars yen peso pesos rupee rupees franc francs transaction withdrawal
    transfer deposit cashback voucher coupon promo bitcoin bitcoins btc ethereum crypto
    cryptocurrency litecoin dogecoin tether usdc
"""
SHOP_WORDS = frozenset(_SHOP_WORDS.split())
# Lower-case joining words inside names: "Ludwig van Beethoven", "Maria de la Cruz".
_PARTICLE_WORDS = (
    "van von de der den del della da das dos du la le di bin binti ibn al el ter ten st"
)
_PARTICLES = frozenset(_PARTICLE_WORDS.split())
_NAME_WORD_RE = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_TITLE_RE = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?[ \t]+")
_STRONG_CUES = re.compile(
    r"(?<!user )(?<!user)(?<!file )(?<!product )(?<!brand )(?<!store )"
    r"\b(?:(?:my|his|her|the|full|first|last|legal|account|recipient'?s?|card\s?holder'?s?|"
    r"customer'?s?)\s+)?names?\s*(?:is|was|'s|’s|:|=|-)\s*"
    r"|\bname\s+on\s+(?:the|my)\s+\w+\s+(?:is|was|:)\s*"
    r"|\b(?:under|in)\s+the\s+name\s+(?:of\s+)?"
    r"|\bmaiden\s+name\s*(?:is|was|:|,)?\s*"
    r"|\bcall\s+me\s+",
    re.IGNORECASE,
)
_WEAK_CUES = re.compile(
    r"\b(?:I['’]?m|I\s+am|this\s+is|recipient\s*(?:is|:)?|signed\s+(?:for\s+)?by|"
    r"picked\s+up\s+by|addressed\s+to|ask\s+for|attn:?|attention:?)\s+"
    r"|\b(?:my|our)\s+(?:wife|husband|son|daughter|mom|mum|mother|dad|father|partner|friend|"
    r"sister|brother|colleague|boss|neighbou?r|roommate|flatmate|kid|child|grandson|"
    r"granddaughter|grandma|grandmother|grandpa|grandfather|girlfriend|boyfriend|fianc[ée]e?|"
    r"assistant|aunt|uncle|cousin|niece|nephew|spouse|landlord)\s*,?\s+"
    r"|(?:^|[.!?]\s+)(?:(?:hi|hello|hey)[,!]?\s+(?:there[,!]?\s+)?)?(?:it['’]s|it\s+is)\s+"
    r"|^\s*(?:dear|hi|hello|hey)\s+(?=\w+\s*,)"
    r"|\b(?:Mr|Mrs|Ms|Miss|Mx|Prof)\.?[ \t]+|(?<![A-Z][a-z] )\bDr\.?[ \t]+",
    re.IGNORECASE,
)
_HERE_RE = re.compile(
    r"(?:^|[.!?]\s+)(?:(?:hi|hello|hey)[,!]?\s+)?"
    r"([A-Z][^\W\d_]+(?:-[^\W\d_]+)?(?:\s+[A-Z][^\W\d_]+(?:['’-][^\W\d_]+)?)?)\s+here\b",
    re.IGNORECASE,
)
_SIGN_OFF_RE = re.compile(
    r"(?<![\w'’])(?:many\s+thanks|thanks\s+again|thanks\s+so\s+much|thank\s+you(?:\s+so"
    r"\s+much)?|thanks|thx|ty|best\s+regards|kind\s+regards|warm\s+regards|regards|rgds|"
    r"best\s+wishes|best|cheers|sincerely|yours\s+truly|yours|br)\s*[,!.\-–—]?\s+(?=\S)"
    r"|(?<!\S)[-–—~]\s?(?=[A-Z])",
    re.IGNORECASE,
)


def _name_at(text: str, pos: int, lower_ok: bool, max_words: int = 3) -> tuple[int, int] | None:
    """The name that starts at ``pos`` (after spaces), as (start, end), or None."""
    words: list[tuple[int, int, str]] = []  # (start, end, "name" | "particle" | "initial")
    index = pos
    while True:
        gap = index
        while gap < len(text) and text[gap] in " \t":
            gap += 1
        if words and gap == index:
            break
        if gap < len(text) and text[gap].isupper() and text[gap + 1 : gap + 2] == ".":
            words.append((gap, gap + 2, "initial"))  # the F. of John F. Kennedy
            index = gap + 2
            continue
        match = _NAME_WORD_RE.match(text, gap)
        if match is None:
            break
        word = match.group()
        end = match.end()
        if word[-2:] in ("'s", "’s") and len(word) > 3:
            word, end = word[:-2], end - 2  # "Jane's"
        folded = word.casefold()
        if words and folded in _PARTICLES and not word[0].isupper():
            words.append((gap, end, "particle"))
        elif (
            folded in NOT_NAMES
            or folded in SHOP_WORDS
            or len(word) < 2
            or not (word[0].isupper() or (lower_ok and word.islower()))
        ):
            break
        else:
            words.append((gap, end, "name"))
        index = end
        if end < len(text) and (text[end].isalnum() or text[end] in "@_"):
            return None  # "jdoe88", "jane@example.com": not a name
        if end != match.end() or sum(1 for w in words if w[2] == "name") >= max_words:
            break
    while words and words[-1][2] != "name":
        words.pop()
    if not words or words[0][2] != "name":
        return None
    return words[0][0], words[-1][1]


def _shouted(text: str, start: int, end: int) -> bool:
    """All capitals ("This is URGENT"): shouting or an acronym more often than a name."""
    return text[start:end].isupper() and end - start > 1


def find_names(text: str) -> Iterator[Span]:
    """Person names after cues: "my name is", "I'm", "this is", a sign-off, "Ms."."""
    folded = text.lower()
    # Every strong cue holds "name" or "call", and every "here" cue "here": the cheap test
    # skips the slow expression (37 µs for a short message) when it cannot match.
    strong = _STRONG_CUES.finditer(text) if "name" in folded or "call" in folded else ()
    for cue in strong:
        found = _name_at(text, cue.end(), lower_ok=True)
        if found:
            yield _span(PERSON, text, *found)
    for cue in _WEAK_CUES.finditer(text):
        found = _name_at(text, cue.end(), lower_ok=False)
        if found and not _shouted(text, *found):
            yield _span(PERSON, text, *found)
    for match in _HERE_RE.finditer(text) if "here" in folded else ():
        found = _name_at(text, match.start(1), lower_ok=False, max_words=2)
        if found and found[1] == match.end(1):
            yield _span(PERSON, text, *found)
    for cue in _SIGN_OFF_RE.finditer(text):
        found = _name_at(text, cue.end(), lower_ok=False)
        if found and re.fullmatch(r"[\s.!]*", text[found[1] :]):
            yield _span(PERSON, text, *found)


# --- the detector -----------------------------------------------------------------------------

Finder = Callable[[str], Iterator[Span]]
FINDERS: Mapping[str, Finder] = {
    EMAIL: find_emails,
    IBAN: find_ibans,
    CARD: find_cards,
    SSN: find_ssns,
    IP: find_ips,
    PHONE: find_phones,
    PASSPORT: find_passports,
    DOB: find_dobs,
    ADDRESS: find_addresses,
    PERSON: find_names,
}
# Which span wins an overlap: checksummed kinds, then strict formats, then the rest; within a
# rank the longer span.
RANK = {
    EMAIL: 0, IBAN: 0, CARD: 0, SSN: 1, IP: 1, PHONE: 1, PASSPORT: 1, DOB: 1,
    ADDRESS: 2, PERSON: 3,
}  # fmt: skip


def resolve(candidates: Collection[Span]) -> list[Span]:
    """Non-overlapping spans, left to right: higher-ranked kinds, then longer spans, win."""
    taken: list[Span] = []
    ordered = sorted(candidates, key=lambda s: (RANK.get(s.kind, 9), s.start - s.end, s.start))
    for span in ordered:
        if span.end > span.start and all(
            span.end <= other.start or span.start >= other.end for other in taken
        ):
            taken.append(span)
    taken.sort(key=lambda span: span.start)
    return taken


class PatternDetector:
    """Validated patterns for all ten kinds; no model, about 0.1 ms a message."""

    def __init__(self, kinds: Collection[str] = KINDS) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds of personal data: {sorted(unknown)}")
        self.kinds = frozenset(kinds)

    def candidates(self, text: str) -> list[Span]:
        """Every span any pattern finds, overlaps included."""
        return [span for finder in FINDERS.values() for span in finder(text)]

    def detect(self, text: str) -> list[Span]:
        # All kinds compete for the text, so that a number inside an IBAN is never a card.
        return [span for span in resolve(self.candidates(text)) if span.kind in self.kinds]


_LEGACY = PatternDetector(LEGACY_KINDS)


def detect(text: str) -> list[Span]:
    """Emails, cards and phone numbers in ``text``, left to right, without overlaps."""
    return _LEGACY.detect(text)


# --- values -----------------------------------------------------------------------------------


def normalise(kind: str, value: str) -> str:
    """The form of a value that is digested: equal values typed differently match."""
    value = value.strip()
    if kind == EMAIL:
        return value.lower()
    if kind in (CARD, PHONE, SSN):
        return re.sub(r"\D", "", value)
    if kind in (IBAN, PASSPORT):
        return re.sub(r"[\W_]", "", value).upper()
    if kind == IP:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value.lower()
    if kind == DOB:
        match = _DATE_RE.fullmatch(value)
        date = parse_date(match) if match else None
        if date is not None:
            return date.isoformat()
    return " ".join(value.casefold().split())


def digest(key: bytes, kind: str, value: str) -> str:
    """A keyed digest of the value: equal values match, the value cannot be read back."""
    message = f"{kind}:{normalise(kind, value)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Pseudonymized:
    text: str
    kinds: tuple[str, ...]


def replace(text: str, spans: Sequence[Span], tokens: Mapping[Span, str]) -> Pseudonymized:
    """``text`` with every span replaced by its token."""
    parts: list[str] = []
    cursor = 0
    for span in spans:
        parts.append(text[cursor : span.start])
        parts.append(tokens[span])
        cursor = span.end
    parts.append(text[cursor:])
    return Pseudonymized("".join(parts), tuple(span.kind for span in spans))


def token(kind: str, number: int) -> str:
    return f"<{kind}_{number}>"


def pseudonymize(text: str, detector: Detector) -> str:
    """``text`` with every value ``detector`` finds replaced by a token, numbered per kind in
    order of appearance (equal values share one): the form in which the service stores and
    reads customer messages, for text that is not stored (training on unlabelled messages)."""
    spans = detector.detect(text)
    numbers: dict[tuple[str, str], int] = {}
    tokens: dict[Span, str] = {}
    for span in spans:
        key = (span.kind, normalise(span.kind, span.value))
        if key not in numbers:
            numbers[key] = 1 + sum(1 for kind, _ in numbers if kind == span.kind)
        tokens[span] = token(span.kind, numbers[key])
    return replace(text, spans, tokens).text


# --- context: what the store's flows ask for ---------------------------------------------------

# "Yusuf Rossi 80280", "jane doe, zip 10001": a name given with a zip code to verify an account.
# No cue word precedes it, so neither the patterns nor the NER model can be counted on to see
# it; the shape (two words, then a zip code) is the cue.
# What may stand between a name and its zip code: ", and my zip code is ". The flows' identity
# slot reads names before zips with the same words.
ZIP_CUE = (
    r"[\s,;.]*(?:and\s+)?(?:(?:my\s+)?(?:zip(?:\s*code)?|postal code|zipcode)\s*(?:is|:)?\s*)?"
)
_NAME_ZIP_RE = re.compile(
    rf"(?<![\w<])([A-Za-z][A-Za-z'’-]+)\s+([A-Za-z][A-Za-z'’-]+){ZIP_CUE}\d{{5}}(?![\w-])",
    re.IGNORECASE,
)
_STATE_CODE_RE = re.compile(rf"^(?:{_STATE_CODES})$")
_NAME_CUES = frozenset(["name", "is", "im", "i'm", "am", "this", "it's", "its", "my"])
# "my new zip code, 60614" names no one.
_ZIP_WORDS = frozenset(["zip", "code", "zipcode", "postal", "postcode", "new", "old", "current"])
_STREET_RE = re.compile(_street(r"[A-Za-z][A-Za-z'’.-]*"), re.IGNORECASE)
# The city, state and zip at the end of a street address: kept readable, the street line is not.
# A state in lower case ("portland, or 97201") counts only with a zip code after it.
_ADDRESS_TAIL_RE = re.compile(
    rf",?\s+[A-Za-z][A-Za-z'’. -]*?,?\s+"
    rf"(?:(?:{_STATE_CODES}|{_STATE_NAMES})\b\.?(?:,?\s+\d{{5}}(?:-\d{{4}})?)?"
    rf"|(?i:{_STATE_CODES}|{_STATE_NAMES})\b\.?,?\s+\d{{5}}(?:-\d{{4}})?)\s*$"
)


def names_before_zip(text: str) -> list[Span]:
    """PERSON spans for a first and last name followed by a zip code."""
    found = []
    for match in _NAME_ZIP_RE.finditer(text):
        first, last = match.group(1), match.group(2)
        words = {first.casefold(), last.casefold()}
        if words & (NOT_NAMES | SHOP_WORDS | _NAME_CUES | _ZIP_WORDS) or _STATE_CODE_RE.match(last):
            continue
        found.append(
            Span(PERSON, match.start(1), match.end(2), text[match.start(1) : match.end(2)])
        )
    return found


def street_line(span: Span) -> Span:
    """An ADDRESS span without its city, state and zip: the flows read those (a city is not a
    person), the street and unit go to the vault."""
    if span.kind != ADDRESS:
        return span
    # The street's own shape ends it where no comma does ("12 Main St Denver CO 80202").
    street = _STREET_RE.match(span.value)
    if street is not None and _ADDRESS_TAIL_RE.match(span.value, street.end()) is not None:
        value = street.group().rstrip(" ,")
        return Span(ADDRESS, span.start, span.start + len(value), value)
    tail = _ADDRESS_TAIL_RE.search(span.value)
    if tail is None or tail.start() == 0:
        return span
    value = span.value[: tail.start()].rstrip(" ,")
    return Span(ADDRESS, span.start, span.start + len(value), value)


def in_context(text: str, spans: Sequence[Span]) -> list[Span]:
    """The detector's spans, adjusted for what the store's flows ask for: addresses cut to
    their street line, and names given with a zip code added where nothing else was found
    (not in the city and state of an address: "12 Main St Denver Colorado 80202")."""
    adjusted = [street_line(span) for span in spans]
    for extra in names_before_zip(text):
        if all(extra.end <= s.start or extra.start >= s.end for s in (*spans, *adjusted)):
            adjusted.append(extra)
    adjusted.sort(key=lambda span: span.start)
    return adjusted
