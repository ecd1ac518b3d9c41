"""Write ``corpus.jsonl``: customer-service chat messages for an online store, with PII labelled.

    .venv/bin/python benchmarks/data/pii/make_corpus.py

Every message comes from a hand-written template filled with fake values; the offsets of the
labelled spans are computed here, never counted by hand. All values are fake but valid: card
numbers pass the Luhn check, IBANs carry correct mod-97 check digits for their country, SSNs
follow the area/group/serial rules, IPs parse. US phone numbers use the 555-01xx range, UK ones
Ofcom's drama ranges.

Labelling conventions (what a detector must return for an exact match):

* PERSON: the name only ("Ms. Okafor" -> "Okafor"; "Thanks, Jane" -> "Jane").
* ADDRESS: the street line with its unit and, when written, city, state and zip (or a UK town
  and postcode), without a sentence's final period.
* DOB: the date only, not the cue ("born on", "DOB:").
* the others: the value as typed, separators included.

Templates alternate between the ``dev`` split (for tuning) and the ``test`` split (reported),
and so do the people's names, so that the test split has wordings and names tuning never saw.
Messages without any PII (order ids, item ids, tracking numbers, zip codes, prices, order
dates, product names, cities) measure false positives.

The 50 product names are those of the tau2-bench retail store (MIT licence, see
``/work/shared/datasets/retail/LICENSE``).
"""

from __future__ import annotations

import json
import random
import re
import string
import unicodedata
from pathlib import Path

OUT = Path(__file__).with_name("corpus.jsonl")
SEED = 20261129
COPIES = 3  # messages per template

# The 50 products of the demo store (examples/demo-store/data, from tau2-bench, MIT), in name
# order: the same list, in the same order, as when corpus.jsonl was generated.
PRODUCTS = sorted(
    product["name"]
    for product in json.loads(
        (Path(__file__).parents[3] / "examples/demo-store/data/db.json").read_text()
    )["products"].values()
)

# (first, last): many origins; alternate entries go to dev and test.
NAMES = [
    ("Priya", "Raman"), ("Oluwaseun", "Adeyemi"), ("Wei", "Zhang"), ("Aisha", "Khan"),
    ("José", "García"), ("Sean", "O'Brien"), ("Mary-Jane", "Watkins"), ("Kenji", "Tanaka"),
    ("Fatima", "Al-Sayed"), ("Dmitri", "Volkov"), ("Anna", "Kowalska"), ("Björn", "Andersson"),
    ("Chloé", "Dubois"), ("Giulia", "Rossi"), ("Kwame", "Mensah"), ("Amara", "Okafor"),
    ("Tom", "Becker"), ("Emily", "Johnson"), ("Jamal", "Washington"), ("Lakshmi", "Narayanan"),
    ("Hyun-woo", "Kim"), ("Thanh", "Pham"), ("Mateo", "Silva"), ("Sofía", "Hernández"),
    ("Ingrid", "Larsen"), ("Olga", "Petrova"), ("Tariq", "Mahmood"), ("Zanele", "Dlamini"),
    ("Rhys", "Evans"), ("Siobhan", "Murphy"), ("Noah", "Cohen"), ("Leila", "Haddad"),
    ("Arjun", "Mehta"), ("Mei", "Lin"), ("Pedro", "Alves"), ("Isabela", "Costa"),
    ("Hannah", "Schmidt"), ("Lucas", "Martin"), ("Ewa", "Nowak"), ("Kofi", "Boateng"),
    ("Yuki", "Sato"), ("Ahmed", "Hassan"), ("Grace", "Mwangi"), ("Diego", "Ramírez"),
    ("Nadia", "Rahman"), ("Liam", "Walsh"), ("Camille", "Laurent"), ("Mohammed", "Qureshi"),
    ("Rosa", "Delgado"), ("Ivan", "Horvat"), ("Freya", "Lindqvist"), ("Samuel", "Osei"),
    ("Ji-woo", "Park"), ("Marco", "Bianchi"), ("Ayesha", "Siddiqui"), ("Daniel", "Fischer"),
    ("Elena", "Popescu"), ("Joseph", "Nguyen"), ("Chiara", "Esposito"), ("Rafael", "Moreno"),
    ("Sophie", "Wagner"), ("Vikram", "Iyer"), ("Maya", "Goldberg"), ("Omar", "Farouk"),
    ("Lucía", "Torres"), ("Patrick", "Kelly"), ("Keisha", "Robinson"), ("Hamza", "Yilmaz"),
    ("Astrid", "Nielsen"), ("Carlos", "Mendoza"), ("Ngozi", "Eze"), ("Ethan", "Clarke"),
    ("Linh", "Tran"), ("Benjamin", "Levy"), ("Zara", "Ahmed"), ("Mikhail", "Sokolov"),
    ("Aaliyah", "Jackson"), ("Tomás", "Novák"), ("Ines", "Ferreira"), ("Ravi", "Shankar"),
]  # fmt: skip

STREETS = [
    "Elm", "Oak", "Maple", "Sunset", "River", "Lakeview", "Hillcrest", "Cedar", "Main", "Pine",
    "Washington", "Park", "Highland", "Willow", "Chestnut", "Magnolia", "Franklin", "Lincoln",
    "Jefferson", "Cherry Blossom", "Spring Valley", "Martin Luther King Jr", "Broad", "Mill",
    "Walnut", "Laurel", "Madison", "Harbor", "Prospect", "Fairview", "Old Mill", "Greenwood",
]  # fmt: skip
SUFFIXES = [
    "Street", "St", "Avenue", "Ave", "Road", "Rd", "Lane", "Ln", "Boulevard", "Blvd", "Drive",
    "Dr", "Court", "Ct", "Way", "Place", "Terrace", "Parkway",
]  # fmt: skip
UNITS = ["Apt 4B", "Apt 12", "Suite 259", "Unit 7", "#5", "Apt. 3C", "Suite 1400", "Unit 22A"]
CITIES = [
    ("Denver", "CO", "802"), ("Springfield", "IL", "627"), ("Austin", "TX", "787"),
    ("Seattle", "WA", "981"), ("Portland", "OR", "972"), ("New York", "NY", "100"),
    ("San Jose", "CA", "951"), ("Columbus", "OH", "432"), ("Phoenix", "AZ", "850"),
    ("Charlotte", "NC", "282"), ("Boston", "MA", "021"), ("Atlanta", "GA", "303"),
    ("Madison", "WI", "537"), ("Richmond", "VA", "232"), ("Salt Lake City", "UT", "841"),
    ("Minneapolis", "MN", "554"), ("Nashville", "TN", "372"), ("Albuquerque", "NM", "871"),
]  # fmt: skip
UK_ADDRESSES = [
    "22 Baker Street, London NW1 6XE", "14 Queen's Road, Brighton BN1 3XE",
    "7 Castle Lane, Edinburgh EH1 2NG", "48 Station Road, Leeds LS1 4DY",
]  # fmt: skip
US_AREAS = ["415", "212", "303", "617", "312", "206", "512", "404", "702", "919"]


def luhn_digit(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def iban_check(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    number = int("".join(str(int(char, 36)) for char in rearranged))
    return f"{98 - number % 97:02d}"


class Values:
    """Fake values, drawn from one seeded generator."""

    def __init__(self, rng: random.Random, names: list[tuple[str, str]]) -> None:
        self.rng = rng
        self.names = names

    def digits(self, count: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(count))

    def letters(self, count: int) -> str:
        return "".join(self.rng.choice(string.ascii_uppercase) for _ in range(count))

    def alnum(self, count: int) -> str:
        return "".join(
            self.rng.choice(string.ascii_uppercase + string.digits) for _ in range(count)
        )

    # -- PII ---------------------------------------------------------------------------------

    def name(self) -> tuple[str, str]:
        return self.rng.choice(self.names)

    def person(self) -> str:
        first, last = self.name()
        return f"{first} {last}"

    def first(self) -> str:
        return self.name()[0]

    def last(self) -> str:
        return self.name()[1]

    def person_lower(self) -> str:
        return self.person().lower()

    def email(self) -> str:
        first, last = self.name()

        def ascii_of(word: str) -> str:
            plain = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode()
            return re.sub(r"[^a-z]", "", plain.lower())

        first, last = ascii_of(first), ascii_of(last)
        local = self.rng.choice(
            [
                f"{first}.{last}",
                f"{first[0]}{last}",
                f"{first}{last}{self.digits(2)}",
                f"{first}_{last}",
                f"{first}.{last}+orders",
                f"{last}.{first}{self.digits(4)}",
            ]
        )
        domain = self.rng.choice(
            [
                "gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me",
                "hotmail.co.uk", "web.de", "example.org", "mail.example.com", "fastmail.fm",
            ]
        )  # fmt: skip
        return f"{local}@{domain}"

    def phone(self) -> str:
        area, line = self.rng.choice(US_AREAS), f"01{self.digits(2)}"
        return self.rng.choice(
            [
                f"({area}) 555-{line}",
                f"{area}-555-{line}",
                f"{area}.555.{line}",
                f"+1 {area} 555 {line}",
                f"+1-{area}-555-{line}",
                f"1-{area}-555-{line}",
                f"{area} 555 {line}",
                f"+44 7700 900{self.digits(3)}",
                f"+44 20 7946 0{self.digits(3)}",
                f"07700 900{self.digits(3)}",
                f"+49 30 {self.digits(4)} {self.digits(4)}",
                f"+33 6 {self.digits(2)} {self.digits(2)} {self.digits(2)} {self.digits(2)}",
                f"+91 98{self.digits(3)} {self.digits(5)}",
                f"+61 4{self.digits(2)} {self.digits(3)} {self.digits(3)}",
            ]
        )

    def card(self) -> str:
        kind = self.rng.choice(["visa", "visa", "mastercard", "amex", "discover"])
        if kind == "amex":
            body = self.rng.choice(["34", "37"]) + self.digits(12)
            number = body + luhn_digit(body)
            return self.rng.choice(
                [
                    f"{number[:4]} {number[4:10]} {number[10:]}",
                    number,
                    f"{number[:4]}-{number[4:10]}-{number[10:]}",
                ]
            )
        prefix = {
            "visa": "4",
            "mastercard": self.rng.choice(["51", "52", "53", "54", "55"]),
            "discover": "6011",
        }[kind]
        body = prefix + self.digits(15 - len(prefix))
        number = body + luhn_digit(body)
        groups = [number[i : i + 4] for i in range(0, 16, 4)]
        return self.rng.choice([" ".join(groups), "-".join(groups), number, " ".join(groups)])

    def iban(self) -> str:
        country, bban = self.rng.choice(
            [
                ("DE", self.digits(18)),
                ("GB", self.letters(4) + self.digits(14)),
                ("FR", self.digits(10) + self.alnum(11) + self.digits(2)),
                ("ES", self.digits(20)),
                ("NL", self.letters(4) + self.digits(10)),
                ("IT", self.letters(1) + self.digits(10) + self.alnum(12)),
                ("BE", self.digits(12)),
                ("CH", self.digits(5) + self.alnum(12)),
                ("AT", self.digits(16)),
                ("PL", self.digits(24)),
                ("IE", self.letters(4) + self.digits(14)),
                ("PT", self.digits(21)),
            ]
        )
        compact = country + iban_check(country, bban) + bban
        if self.rng.random() < 0.6:
            return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
        return compact

    def ssn(self) -> str:
        area = self.rng.randint(1, 899)
        while area == 666:
            area = self.rng.randint(1, 899)
        group, serial = self.rng.randint(1, 99), self.rng.randint(1, 9999)
        separator = self.rng.choice(["-", "-", "-", " "])
        return f"{area:03d}{separator}{group:02d}{separator}{serial:04d}"

    def ssn_compact(self) -> str:
        return re.sub(r"\D", "", self.ssn())

    def ip(self) -> str:
        return self.rng.choice(
            [
                f"203.0.113.{self.rng.randint(1, 254)}",
                f"198.51.100.{self.rng.randint(1, 254)}",
                f"192.168.{self.rng.randint(0, 9)}.{self.rng.randint(2, 254)}",
                f"10.{self.octet()}.{self.octet()}.{self.host()}",
                f"{self.rng.randint(24, 99)}.{self.octet()}.{self.octet()}.{self.host()}",
            ]
        )

    def octet(self) -> int:
        return self.rng.randint(0, 255)

    def host(self) -> int:
        return self.rng.randint(1, 254)

    def ip6(self) -> str:
        def group() -> str:
            return f"{self.rng.randint(1, 0xFFFF):x}"

        return self.rng.choice(
            [
                f"2001:db8:{group()}:{group()}::{group()}",
                f"2001:0db8:85a3:0000:0000:8a2e:0370:{self.rng.randint(0x1000, 0xFFFF):04x}",
                f"fe80::{group()}:{group()}:{group()}:{group()}",
                f"2a02:{group()}:{group()}:{group()}:{group()}:{group()}:{group()}:{group()}",
            ]
        )

    def street(self) -> str:
        number = self.rng.choice([str(self.rng.randint(1, 99)), str(self.rng.randint(100, 9999))])
        street = self.rng.choice(STREETS)
        if street in ("Martin Luther King Jr", "Broad", "Main") and self.rng.random() < 0.5:
            street = self.rng.choice(["N", "S", "E", "W", "West", "North"]) + " " + street
        return f"{number} {street} {self.rng.choice(SUFFIXES)}"

    def street_unit(self) -> str:
        return f"{self.street()}, {self.rng.choice(UNITS)}"

    def city_state_zip(self) -> str:
        city, state, zip3 = self.rng.choice(CITIES)
        return f"{city}, {state} {zip3}{self.digits(2)}"

    def address(self) -> str:
        roll = self.rng.random()
        if roll < 0.1:
            return self.rng.choice(UK_ADDRESSES)
        line = self.street_unit() if roll < 0.45 else self.street()
        return f"{line}, {self.city_state_zip()}"

    def street_lower(self) -> str:
        return self.street().lower()

    def dob(self) -> str:
        year, month, day = (
            self.rng.randint(1942, 2006),
            self.rng.randint(1, 12),
            self.rng.randint(1, 28),
        )
        long_month = [
            "January", "February", "March", "April", "May", "June", "July", "August",
            "September", "October", "November", "December",
        ][month - 1]  # fmt: skip
        return self.rng.choice(
            [
                f"{month:02d}/{day:02d}/{year}",
                f"{month}/{day}/{year}",
                f"{year}-{month:02d}-{day:02d}",
                f"{long_month} {day}, {year}",
                f"{day} {long_month} {year}",
                f"{long_month[:3]} {day}th {year}"
                if day > 3 and day < 21
                else f"{long_month} {day} {year}",
                f"{day:02d}.{month:02d}.{year}",
                f"{long_month.lower()} {day} {year}",
            ]
        )

    def passport(self) -> str:
        return self.rng.choice(
            [
                "5" + self.digits(8),
                self.rng.choice("ACEGH") + self.digits(8),
                self.digits(9),
                self.german_passport(),
                self.rng.choice("JKLMNPRSTZ") + self.digits(7),
                self.letters(2) + self.digits(6),
            ]
        )

    def german_passport(self) -> str:
        """C, F, G, H, J or K and eight of the letters and digits German passports use, with
        at least two digits (no extra draws, so the rest of the corpus stays the same)."""
        chars = [self.rng.choice("CFGHJK")]
        chars += [self.rng.choice("CFGHJKLMNPRTVWXYZ0123456789") for _ in range(8)]
        if sum(char.isdigit() for char in chars) < 2:
            chars[3], chars[6] = str(ord(chars[3]) % 10), str(ord(chars[6]) % 10)
        return "".join(chars)

    # -- store data (not PII) ----------------------------------------------------------------

    def order(self) -> str:
        return f"#W{self.digits(7)}"

    def item(self) -> str:
        return str(self.rng.randint(1_000_000_000, 9_999_999_999))

    def tracking(self) -> str:
        return str(self.rng.randint(100_000_000_000, 999_999_999_999))

    def product(self) -> str:
        return self.rng.choice(PRODUCTS)

    def price(self) -> str:
        return self.rng.choice(
            [
                f"${self.rng.randint(5, 499)}.{self.rng.randint(0, 99):02d}",
                f"${self.rng.randint(1, 9)},{self.rng.randint(0, 999):03d}"
                f".{self.rng.randint(0, 99):02d}",
                f"${self.rng.randint(2, 60)}k",
                f"{self.rng.randint(10, 900)} dollars",
                f"USD {self.rng.randint(10, 900)}",
                f"${self.rng.randint(10, 300)}",
            ]
        )

    def zip_code(self) -> str:
        return self.rng.choice(CITIES)[2] + self.digits(2)

    def order_date(self) -> str:
        year, month, day = (
            self.rng.choice([2024, 2025, 2026]),
            self.rng.randint(1, 12),
            self.rng.randint(1, 28),
        )
        long_month = [
            "January", "February", "March", "April", "May", "June", "July", "August",
            "September", "October", "November", "December",
        ][month - 1]  # fmt: skip
        return self.rng.choice(
            [
                f"{month:02d}/{day:02d}/{year}",
                f"{year}-{month:02d}-{day:02d}",
                f"{long_month} {day}, {year}",
                f"{long_month} {day}",
                f"{day} {long_month}",
            ]
        )

    def city(self) -> str:
        return self.rng.choice(CITIES)[0]

    def last4(self) -> str:
        return self.digits(4)

    def quantity(self) -> str:
        return str(self.rng.randint(2, 12))


# Placeholder -> (kind or None for store data, generator method).
SLOTS = {
    "PERSON": ("PERSON", "person"),
    "FIRST": ("PERSON", "first"),
    "LAST": ("PERSON", "last"),
    "person": ("PERSON", "person_lower"),
    "EMAIL": ("EMAIL", "email"),
    "PHONE": ("PHONE", "phone"),
    "CARD": ("CARD", "card"),
    "IBAN": ("IBAN", "iban"),
    "SSN": ("SSN", "ssn"),
    "SSNRUN": ("SSN", "ssn_compact"),
    "IP": ("IP", "ip"),
    "IPV": ("IP", "ip6"),
    "ADDRESS": ("ADDRESS", "address"),
    "STREET": ("ADDRESS", "street"),
    "STREET_UNIT": ("ADDRESS", "street_unit"),
    "street": ("ADDRESS", "street_lower"),
    "DOB": ("DOB", "dob"),
    "PASSPORT": ("PASSPORT", "passport"),
    "ORDER": (None, "order"),
    "ITEM": (None, "item"),
    "TRACKING": (None, "tracking"),
    "PRODUCT": (None, "product"),
    "PRICE": (None, "price"),
    "ZIP": (None, "zip_code"),
    "ODATE": (None, "order_date"),
    "CITY": (None, "city"),
    "CARDEND": (None, "last4"),
    "QTY": (None, "quantity"),
}

# Hand-written messages. A trailing digit on a placeholder ({PRODUCT2}) draws a second value.
TEMPLATES = [
    # -- orders and delivery -----------------------------------------------------------------
    "Hi, my name is {PERSON} and I haven't received order {ORDER} yet.",
    "This is {PERSON}. My order {ORDER} says delivered but nothing arrived at {ADDRESS}.",
    "can you update the shipping address on {ORDER} to {ADDRESS}? thanks",
    "I moved last week. New address: {ADDRESS}",
    "Please send the replacement {PRODUCT} to {STREET} instead of my old place.",
    "The package was signed for by {PERSON} but I don't know who that is.",
    "my email is {EMAIL}, can you check where my {PRODUCT} is?",
    "You can reach me on {PHONE} any time after 5pm.",
    "hey it's {FIRST}, the tracking number {TRACKING} hasn't updated in a week",
    "I ordered the {PRODUCT} on {ODATE} and it still hasn't shipped. Email me at {EMAIL}",
    "Could the courier call {PHONE} before delivering to {ADDRESS}?",
    "Order {ORDER} should go to my work address, {ADDRESS}, not home.",
    "Hello, {PERSON} here. I placed order {ORDER} for {PRICE} and was charged twice.",
    "my name is {person} and i need to change the delivery address to {street}",
    "Deliver to {PERSON}, {ADDRESS}. Phone {PHONE}.",
    "my wife {FIRST} placed order {ORDER} using {EMAIL}",
    "Can my neighbour {PERSON} pick up the parcel for me?",
    "Where is my refund for {ORDER}? It's been two weeks.\n\nRegards,\n{PERSON}",
    "Hi! I'm {FIRST}. The {PRODUCT} in order {ORDER} came with a cracked screen.",
    "I live at {STREET_UNIT} and the driver keeps leaving parcels at the wrong door",
    "Please ship order {ORDER} to my parents: {PERSON}, {ADDRESS}",
    "The delivery guy said nobody was home but I was. Call me at {PHONE} next time",
    "is it possible to get {ORDER} delivered to {ADDRESS} by friday?",
    "Hello, I'm {PERSON} and my {PRODUCT} arrived without the charger.",
    "My son {FIRST} ordered a {PRODUCT} from my account, can I cancel it?",
    "Contact number for the delivery: {PHONE}. Address is {ADDRESS}.",
    "I'm {PERSON}, order {ORDER}, the box was empty!!",
    "ship to {street} please, thats my new place",
    "The parcel went to {STREET} but I live at {STREET2}, can you fix it?",
    "Recipient: {PERSON}\nAddress: {ADDRESS}\nPhone: {PHONE}",
    "my number changed to {PHONE}, please update it on order {ORDER}",
    "Good morning, this is {PERSON} calling about order {ORDER}.",
    "I need the {PRODUCT} sent to my office at {ADDRESS} - ask for {PERSON} at reception",
    "Mr. {LAST} from the front desk will sign for the {PRODUCT}.",
    "thanks for the quick reply!\n- {FIRST}",
    "The gift is for my sister {FIRST}, can you include a note?",
    "we moved to {ADDRESS} in march, is order {ORDER} going to the old address?",
    "Tracking {TRACKING} says it was delivered to {STREET}. That's not my street.",
    "Please leave it with the concierge, name is {PERSON}.",
    "Hi there, it's {PERSON} again, still no update on {ORDER}",
    # -- payments ---------------------------------------------------------------------------
    "My card {CARD} was declined for order {ORDER}, but the bank says it's fine.",
    "I paid with {CARD} and got charged {PRICE} twice",
    "Can you refund the {PRICE} to my bank account instead? IBAN: {IBAN}",
    "my IBAN is {IBAN} and the account holder is {PERSON}",
    "Wire the refund to {IBAN} please",
    "the charge on {CARD} from {ODATE} is not mine, please investigate",
    "I'm trying to pay with my Amex {CARD} but checkout keeps failing at {PRICE}",
    "card number {CARD}, name on the card is {PERSON}",
    "Use IBAN {IBAN} for the refund (account in the name of {PERSON})",
    "Can you charge the difference to {CARD} instead of my PayPal?",
    "I don't have a card, can I pay by bank transfer from {IBAN}?",
    "Your system charged {CARD} for {PRICE} but the order {ORDER} was cancelled",
    "The refund for {ORDER} should go back to card {CARD}, not store credit.",
    "here's my card: {CARD} exp 09/28. Please retry the payment",
    "Bank details for the refund: {PERSON}, {IBAN}",
    "please stop charging my old card {CARD}, I removed it from my account",
    "My husband {FIRST} paid with his card {CARD}, can the refund go to mine?",
    "I sent {PRICE} by transfer from {IBAN} on {ODATE}, please confirm",
    "Pay the seller refund into {IBAN} - thanks, {FIRST}",
    # -- account -----------------------------------------------------------------------------
    "I can't log in, my account email is {EMAIL} and my phone is {PHONE}",
    "Please delete my account. Name: {PERSON}, email: {EMAIL}",
    "for verification my date of birth is {DOB}",
    "DOB {DOB}, zip {ZIP}",
    "I was born on {DOB} if you need it to verify the account",
    "my birthday is {DOB} and I never got the birthday discount",
    "someone logged in to my account from {IP} and it wasn't me",
    "my IP address is {IP}, your site keeps blocking me",
    "Login attempts from {IPV}, please lock my account",
    "The account was opened under my maiden name, {PERSON}.",
    "change my email from {EMAIL} to {EMAIL2} please",
    "I'm {PERSON}, date of birth {DOB}, and I'm locked out of my account",
    "Your security check says my IP {IP} is suspicious. I'm just at home.",
    "my name is {person}, email {EMAIL}",
    "Date of birth: {DOB}\nName: {PERSON}",
    "the account is under the name {PERSON}, not my wife's",
    "I keep getting the 2FA code on {PHONE} but I changed my number",
    "I think someone at {IP} hacked my account and changed the address to {ADDRESS}",
    "can you resend the verification email to {EMAIL}? nothing arrived",
    "My account shows {PERSON} but my name is {PERSON2}.",
    "The VPN gives me {IPV} and your checkout refuses it",
    "Please merge my two accounts: {EMAIL} and {EMAIL2}.",
    "born {DOB}, member since 2019, and I still don't get the loyalty points",
    "I was locked out after trying from my work network ({IP}).",
    # -- financing, customs, ID --------------------------------------------------------------
    "For the store card application: SSN {SSN}, DOB {DOB}",
    "Your financing form wants my social security number, it's {SSN}",
    "I typed my SSN {SSN} in the chat by mistake, please delete it",
    "my ssn is {SSNRUN} for the credit check",
    "passport number {PASSPORT} for the customs form",
    "The courier needs ID for the international delivery, my passport is {PASSPORT}",
    "Customs asked for my passport no. {PASSPORT}, should I send it here?",
    "Is it safe to give my SSN ({SSN}) over chat for the payment plan?",
    "I am {PERSON}, passport {PASSPORT}, picking up order {ORDER} in person",
    "The import form asks for a passport number: {PASSPORT}. Date of birth {DOB}.",
    "For the layaway plan I gave SSN {SSN} and my phone {PHONE}",
    "Social security number {SSNRUN}. Why is the credit check still pending?",
    # -- returns and exchanges ---------------------------------------------------------------
    "I want to return the {PRODUCT} (item {ITEM}). Pickup from {ADDRESS} works",
    "return label should be sent to {EMAIL}, not my old email",
    "My daughter {FIRST} got the wrong size {PRODUCT}, can we exchange it?",
    "Hi, I'm {FIRST}, I'd like to exchange my {PRODUCT} for a different color",
    "The courier can collect the return from {STREET} on Monday. My cell is {PHONE}.",
    "My name is {PERSON}, order {ORDER}. I want to return item {ITEM}.",
    "Send the return label to {EMAIL} and the refund to {CARD}",
    "the {PRODUCT} is faulty. i'm {FIRST} by the way, order {ORDER}",
    "Cheers,\n{PERSON}",
    "I'd like a refund for the {PRODUCT}. Thank you, {PERSON}",
    "Please schedule the pickup at {ADDRESS}, anytime after 2pm",
    "Can {PERSON} return it for me? She has the receipt.",
    "My colleague {PERSON} ordered it for our team, please email her at {EMAIL}",
    "Hi, this is {FIRST} from accounting, we need an invoice for {ORDER}",
    "Best regards,\n{PERSON}\n{PHONE}",
    "Kind regards, {FIRST}",
    # -- mixed, messy ------------------------------------------------------------------------
    "ok so order {ORDER}, my phone {PHONE}, email {EMAIL}, address {ADDRESS}. just fix it",
    "{PERSON} {PHONE} {EMAIL}",
    "Hey! {FIRST} here, quick one: can I change the card on {ORDER} to {CARD}?",
    "name: {person}\nemail: {EMAIL}\nphone: {PHONE}",
    "my email is {EMAIL} or try {EMAIL2} if that bounces",
    "I am writing for my mother, {PERSON}, who placed order {ORDER}.",
    "Dear support team, my name is {PERSON} and I'm very disappointed with order {ORDER}.",
    "{PERSON} - order {ORDER} - item {ITEM} arrived damaged",
    "please call my assistant {PERSON} on {PHONE} to arrange delivery",
    "The invoice for {ORDER} should show {PERSON}, {ADDRESS}",
    "Ms. {LAST} asked me to check on order {ORDER}",
    "I'm {FIRST}. Your site charged {CARD} and my bank IBAN {IBAN} both!",
    "Hello, my name's {PERSON}. I was born {DOB} and need to prove I'm over 18 for the {PRODUCT}.",
    "Please text {PHONE} when the {PRODUCT} is back in stock",
    "If you need anything else email {EMAIL}. Thanks, {FIRST}",
    "{PERSON} here, I live at {ADDRESS}",
    "write to me at {EMAIL} please, I can't take calls at work",
    "I gave {PHONE} at checkout but it should be {PHONE2}",
    "hey this is {person}, where is my stuff",
    "Refund account: {IBAN} (Sparkasse)",
    "please send the money back to IBAN {IBAN}, I don't use that card anymore",
    "iban {IBAN} bic COBADEFFXXX",
    "my bank account for the refund is {IBAN}",
    "The refund went to the wrong account, mine is {IBAN} not the one on file",
    "IBAN: {IBAN}\nAccount holder: {PERSON}",
    "For the duty-free order I need to give my passport number, it's {PASSPORT}",
    "Passport {PASSPORT}, expires 2031, is that enough for customs?",
    "the customs broker wants ID: passport # {PASSPORT}",
    "my passport no is {PASSPORT} and my order is {ORDER}",
    "Can I use passport number {PASSPORT} instead of a driver's license for pickup?",
    "The form rejected my passport {PASSPORT}, is the format wrong?",
    "why does the financing page need my SSN? I entered {SSN} anyway",
    "ssn: {SSN}",
    "My social is {SSNRUN}, please don't store it",
    "the credit application has a typo, my SSN should be {SSN}",
    "The error page said my IP was {IP}",
    "checkout fails from {IP} but works on my phone",
    "I'm on {IPV}, getting error 403 on your site",
    "blocked IP {IP}, please whitelist it, order {ORDER} is waiting",
    "my date of birth is wrong on the account, it should be {DOB}",
    "d.o.b. {DOB}",
    "I was born {DOB}, so I'm old enough to buy the {PRODUCT}",
    "birthday: {DOB}, please add it for the birthday reward",
    "{DOB} is my date of birth, not {DOB2}",
    "The account says I was born on {DOB}. That's wrong.",
]

NEGATIVE_TEMPLATES = [
    "Where is order {ORDER}? It was supposed to arrive on {ODATE}.",
    "Is item {ITEM} still available in size M?",
    "Do you ship to {ZIP}?",
    "The {PRODUCT} is listed at {PRICE} but I was charged {PRICE2}",
    "Can I get a refund of {PRICE} for order {ORDER}?",
    "My budget is $28k for the office, do you do bulk orders of the {PRODUCT}?",
    "Tracking number {TRACKING} shows no movement since {ODATE}",
    "I ordered {QTY} {PRODUCT} on {ODATE}, order {ORDER}, total {PRICE}",
    "Is the {PRODUCT} compatible with the {PRODUCT2}?",
    "Do you deliver to {CITY}? I'm in {CITY2} for the summer",
    "The {PRODUCT} arrived broken, item {ITEM}, order {ORDER}.",
    "My {PRODUCT} stopped working after two weeks.",
    "Thanks, that helps!",
    "I'm looking for a {PRODUCT} under {PRICE}",
    "I'm Happy with the {PRODUCT} but the {PRODUCT2} is too small",
    "Order placed on {ODATE}, delivered {ODATE2}, returned {ODATE3}",
    "The birthday present I ordered on {ODATE} hasn't arrived",
    "is the 2-for-$30 deal on the {PRODUCT} still on?",
    "app version 4.2.1 keeps crashing when I open order {ORDER}",
    "Gift card GC-7H2K-91QX isn't working at checkout",
    "card ending in {CARDEND} was charged {PRICE}",
    "We need {QTY} {PRODUCT} for the office, zip code {ZIP}",
    "What are your store hours on {ODATE}? I want to come by at 10:30.",
    "Orders {ORDER} and {ORDER2} should ship together",
    "Did my return for {ORDER} get processed? The label number was {TRACKING}.",
    "I tried 3 times between 10:15 and 10:45 and the page froze",
    "{PRODUCT} (item {ITEM}) or {PRODUCT2} (item {ITEM2}), which has better battery?",
    "size 10.5 {PRODUCT} please, item {ITEM}",
    "The {PRODUCT} was {PRICE} on Black Friday, can you price match?",
    "Hi team, quick question about order {ORDER}",
    "Dear Support, my order {ORDER} arrived late.",
    "Please call me back when the {PRODUCT} ships",
    "I'm in {CITY} until {ODATE}, can it wait?",
    "Does the {PRODUCT} come with a warranty? Mine is order {ORDER}",
    "I'm sorry but the {PRODUCT} is not what I expected",
    "Is there a birthday discount? My order {ORDER} was {PRICE}",
    "The {PRODUCT} box says 1200 W and 230 V, will it work in the US?",
    "My {PRODUCT} and {PRODUCT2} came in one box, order {ORDER}, but item {ITEM} is missing",
    "Can I use two promo codes on {ORDER}? Total was {PRICE}",
    "why was I charged {PRICE} for shipping to {ZIP}??",
    "Thanks, bye",
    "I'm Not happy with the {PRODUCT}. Order {ORDER}.",
    "The {PRODUCT} I bought on {ODATE} for {PRICE} is already on sale for {PRICE2}",
    "This is ridiculous, order {ORDER} has been stuck for {QTY} days",
    "We ordered {QTY} units at {PRICE} each, PO number 4500123876",
    "Rate 10/10, the {PRODUCT} is great",
    "How long does shipping to {CITY} take? Ordering a {PRODUCT} today",
    "My {PRODUCT} serial number is SN-88213-XK, it won't turn on",
    "Can I change the color of item {ITEM} in order {ORDER}? Price was {PRICE}",
    "Do you have the {PRODUCT} in stock at the {CITY} store on Main Street?",
    "the {PRODUCT} from {ODATE} never came, zip {ZIP}, order {ORDER}",
    "Just received the {PRODUCT}, works great. Thanks!",
    "The birthday card I ordered for {ODATE} never came",
    "Is there a discount on my birthday? I joined on {ODATE}",
    "Bank reference 482913377 for the transfer of {PRICE}",
    "Do you ship passport holders to Canada? Item {ITEM}",
    "Is the passport wallet (item {ITEM}) RFID-blocking? Order {ORDER}",
    "We need the birthday gifts by {ODATE}, can you ship express?",
]


def fill(template: str, values: Values) -> tuple[str, list[dict[str, object]]]:
    text, spans, cursor = "", [], 0
    for match in re.finditer(r"\{([A-Za-z_]+?)(\d?)\}", template):
        kind, method = SLOTS[match.group(1)]
        text += template[cursor : match.start()]
        value = getattr(values, method)()
        if kind is not None:
            spans.append({"start": len(text), "end": len(text) + len(value), "kind": kind})
        text += value
        cursor = match.end()
    text += template[cursor:]
    return text, spans


def main() -> None:
    rng = random.Random(SEED)
    pools = {"dev": NAMES[0::2], "test": NAMES[1::2]}
    lines: list[dict[str, object]] = []
    kinds: dict[str, int] = {}
    for group, templates in (("pii", TEMPLATES), ("none", NEGATIVE_TEMPLATES)):
        for index, template in enumerate(templates):
            split = "dev" if index % 2 == 0 else "test"
            values = Values(rng, pools[split])
            seen: set[str] = set()
            for _ in range(COPIES):
                text, spans = fill(template, values)
                if text in seen:
                    continue
                seen.add(text)
                lines.append({"text": text, "spans": spans, "split": split, "group": group})
                for span in spans:
                    kinds[str(span["kind"])] = kinds.get(str(span["kind"]), 0) + 1
    OUT.write_text(
        "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8"
    )
    total = sum(kinds.values())
    print(f"{len(lines)} messages, {total} spans: {dict(sorted(kinds.items()))} -> {OUT}")


if __name__ == "__main__":
    main()
