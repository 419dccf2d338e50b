"""The memory_quality dataset: multi-session chats with questions whose evidence is known.

`generate(seed)` builds, with one seeded `random.Random`, people who talk to an assistant
over months: each entity has 10 to 25 sessions (each with a date), each session 6 to 30
messages alternating user and assistant. Most of it is everyday chat (bench/memory_filler.py:
cooking, travel, code, health, work, money...). Into it, facts about the person are planted,
mostly in user messages, in varied phrasings: where they live (and a later move), their job
(and a later change), a pet, a sibling, a manager and the project they handed over, work
projects in given months, an allergy, a new hobby, purchases, a trip abroad with its dates,
a dated event, children, a partner, diet and exercise changes, a car, and what the
assistant itself recommended or worked out. Each entity also gets near misses: a friend's pet
of the same kind, the city the parents live in, a former job, the partner's diet, a trip
someone else took, an item almost bought.

Every question carries its evidence: the (session index, message index) pairs of the messages
that hold what is needed to answer it, and a category:
- single_fact: one message says it;
- multi_hop: two messages are needed, linked by a name or a reference ("my sister" in one,
  her name and job in the other; "my manager" in one, what that person asked in another);
- temporal: the answer depends on dates: when something happened (from the session's date or
  a date in the text), what happened in a given month, what came before what;
- knowledge_update: a fact changed, and the latest (or, when asked, the earlier) statement is
  the evidence; the other one is the distractor.

Questions are worded apart from their evidence ("What's my dog called?" against "We picked up
a beagle from the shelter and named him Biscuit"), so that neither word matching nor meaning
alone finds everything. The wording comes from several templates per fact; nothing is tuned
to one retrieval method.

    python -m bench.memory_data [--seed N] [--entities N] [--show ENTITY_INDEX]

prints the statistics (and one entity's sessions and questions).
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bench import memory_filler as filler

CATEGORIES = ("single_fact", "multi_hop", "temporal", "knowledge_update")
DEFAULT_SEED = 20250601
DEFAULT_ENTITIES = 15
DEFAULT_SESSIONS = (10, 25)


@dataclass(frozen=True)
class Message:
    role: str  # "user" or "assistant"
    content: str


@dataclass(frozen=True)
class Session:
    date: datetime
    messages: tuple[Message, ...]


@dataclass(frozen=True)
class Entity:
    entity_id: str
    name: str
    sessions: tuple[Session, ...]


@dataclass(frozen=True)
class Question:
    entity_id: str
    text: str
    category: str
    # (session index, message index) of each message needed to answer, in the entity's lists.
    evidence: tuple[tuple[int, int], ...]
    answer: str


@dataclass(frozen=True)
class Dataset:
    seed: int
    entities: tuple[Entity, ...]
    questions: tuple[Question, ...]

    @property
    def session_count(self) -> int:
        return sum(len(entity.sessions) for entity in self.entities)

    @property
    def message_count(self) -> int:
        return sum(len(s.messages) for entity in self.entities for s in entity.sessions)

    def category_counts(self) -> dict[str, int]:
        counts = Counter(question.category for question in self.questions)
        return {category: counts[category] for category in CATEGORIES}

    def describe(self) -> str:
        counts = ", ".join(f"{n} {c}" for c, n in self.category_counts().items())
        return (
            f"{len(self.entities)} entities, {self.session_count} sessions, "
            f"{self.message_count} messages; {len(self.questions)} questions ({counts})"
        )


# ---------------------------------------------------------------------------------------------
# People, places and things


FEMALE = (
    "Amara", "Sofia", "Ines", "Hannah", "Mei", "Priya", "Chloe", "Nadia", "Freya", "Lucia",
    "Yasmin", "Grace", "Elena", "Zoe", "Maeve", "Ruth", "Camille", "Leah", "Anya", "Tess",
    "Noor", "Ingrid", "Rosa", "Kemi",
)  # fmt: skip
MALE = (
    "Tomasz", "Daniel", "Kwame", "Luca", "Owen", "Rafael", "Hiro", "Samir", "Jonah", "Felix",
    "Marcus", "Ethan", "Arjun", "Callum", "Mateo", "Ben", "Nikhil", "Oscar", "Elliot", "Theo",
    "Idris", "Stefan", "Ravi", "Pablo",
)  # fmt: skip
PRONOUNS = {
    "f": {"sub": "she", "obj": "her", "poss": "her", "Sub": "She", "Poss": "Her"},
    "m": {"sub": "he", "obj": "him", "poss": "his", "Sub": "He", "Poss": "His"},
}
CITIES = (
    "Lyon", "Porto", "Valencia", "Glasgow", "Leeds", "Denver", "Austin", "Portland", "Toronto",
    "Montreal", "Melbourne", "Rotterdam", "Ghent", "Krakow", "Bologna", "Seville", "Edinburgh",
    "Bristol", "Minneapolis", "Pittsburgh", "Vancouver", "Dublin", "Hamburg", "Gothenburg",
    "Wellington", "Nantes", "Turin", "Utrecht", "Cardiff", "Halifax",
)  # fmt: skip
CURRENCIES = ("£", "€", "$")


@dataclass(frozen=True)
class Job:
    role: str
    company: str
    activity: str
    detail: str


JOBS = (
    Job("secondary school chemistry teacher", "Riverside Academy", "marking lab reports",
        "exam season means a mountain of marking"),
    Job("nurse on a cardiology ward", "St Bride's Hospital", "twelve-hour shifts",
        "we're short-staffed on nights again"),
    Job("backend developer", "a payments startup called Tillwise", "staring at logs",
        "we ship every Friday and something always breaks"),
    Job("data analyst", "Corvid Logistics", "building dashboards",
        "everyone wants their report yesterday"),
    Job("architect", "a small practice called Fold Studio", "drawing in Revit",
        "the planning office keeps sending drawings back"),
    Job("graphic designer", "Brightline Agency", "tweaking logos",
        "clients keep asking to make the logo bigger"),
    Job("accountant", "Hartley & Moss", "reconciling spreadsheets",
        "year-end is around the corner"),
    Job("physiotherapist", "a sports clinic called MoveWell", "seeing patients back to back",
        "I had eleven appointments yesterday"),
    Job("site project manager", "Kestrel Construction", "chasing subcontractors",
        "the steel delivery is three weeks late"),
    Job("paralegal", "Whitcombe Legal", "reviewing contracts",
        "we have a big case going to trial"),
    Job("civil engineer", "Arden Infrastructure", "running load calculations",
        "the bridge inspection report is due"),
    Job("pharmacist", "a community pharmacy in town", "checking prescriptions",
        "flu season has started"),
    Job("UX researcher", "Loop Health", "running user interviews",
        "I have eight interviews to write up"),
    Job("sous chef", "a bistro called Marigold", "prepping for service",
        "we're fully booked every night"),
    Job("reporter", "the Evening Courier", "chasing sources",
        "my editor wants two stories a day"),
    Job("lab technician", "the university genetics lab", "running PCR plates",
        "the sequencer broke again"),
)  # fmt: skip
NEW_ROLES = (
    ("product manager", "Northwind"),
    ("head of science", "Oakfield School"),
    ("engineering lead", "Brightwave"),
    ("senior analyst", "Meridian Bank"),
    ("lecturer", "the local college"),
    ("clinical educator", "the city hospital"),
    ("design lead", "Pebble Games"),
    ("finance manager", "Greenleaf Foods"),
    ("operations manager", "Harbour Freight"),
    ("research coordinator", "the Lindqvist Institute"),
    ("studio manager", "Tallis & Reed Architects"),
    ("quality lead", "Vantage Labs"),
)
OLD_JOBS = (
    "worked in a call centre",
    "waited tables at a pizza place",
    "stacked shelves at a supermarket on nights",
    "did a year as a hotel receptionist",
    "drove a delivery van",
    "worked at a cinema box office",
)
PROJECTS = (
    ("the warehouse scheduling rewrite", "moving the old shift planner onto the new system"),
    ("the spring open day", "coordinating forty volunteers and the catering"),
    ("the supplier audit", "going through every contract we signed in the last three years"),
    ("the customer churn dashboard", "working out why people cancel in their second month"),
    ("the office move", "packing up three floors and deciding who sits where"),
    ("the mobile app relaunch", "redoing the sign-up flow and the notifications"),
    ("the annual report", "pulling numbers out of six departments"),
    ("the grant application", "a forty-page bid due at the end of the month"),
    ("the onboarding programme for new starters", "writing the first-week schedule"),
    ("the data retention policy", "working out what we may keep and for how long"),
    ("the website migration", "moving about two thousand pages to the new platform"),
    ("the quarterly budget review", "chasing every team lead for their forecasts"),
    ("the staff wellbeing survey", "writing the questions and booking focus groups"),
    ("the new booking system", "testing it with the front desk before it goes live"),
)
BOSS_WORDS = ("manager", "boss", "team lead", "line manager")


@dataclass(frozen=True)
class Species:
    word: str  # as questions say it
    breeds: tuple[str, ...]
    problems: tuple[tuple[str, str], ...]  # (what the owner saw, what the vet found)
    settling: str  # reply to a new owner


DOG = Species(
    "dog",
    ("beagle puppy", "rescue greyhound", "border collie", "miniature dachshund",
     "cockapoo puppy", "black labrador", "whippet", "springer spaniel"),
    (
        ("has been limping on a back leg", "a sprained ligament, so two weeks of lead-only walks"),
        ("keeps scratching at one ear", "an ear infection that needs drops twice a day"),
        ("went off food for two days", "a cracked tooth that has to come out"),
        ("was sick twice in one night", "an upset stomach from something eaten in the park"),
    ),
    "Congratulations on {pet}! For the first nights, put {poss} bed somewhere quiet but near "
    "you, keep feeding and toilet breaks on a fixed routine, and give {obj} something that "
    "smells of you. Keep walks short and calm at first, reward the behaviour you want, and "
    "let {obj} meet new people gradually over the first couple of weeks.",
)  # fmt: skip
CAT = Species(
    "cat",
    ("ginger tabby kitten", "Maine Coon", "grey rescue cat", "Siamese kitten",
     "black and white kitten", "Norwegian forest cat"),
    (
        ("keeps sneezing", "a mild case of cat flu"),
        ("stopped using the litter tray", "a urinary infection"),
        ("has been scratching at the neck", "fleas, despite living indoors"),
        ("was drinking loads of water", "early kidney trouble, so a special diet from now on"),
    ),
    "How exciting, welcome {pet}! Start {obj} off in one quiet room with food, water, a litter "
    "tray and somewhere to hide, and let {obj} come to you rather than picking {obj} up. "
    "After a few days, open up the rest of the home bit by bit. Play sessions with a wand toy "
    "in the evening help a lot with night-time zoomies.",
)  # fmt: skip
PET_NAMES = (
    "Biscuit", "Pepper", "Mochi", "Juniper", "Waffles", "Olive", "Pickle", "Ziggy", "Bramble",
    "Nala", "Miso", "Clementine", "Rolo", "Banjo", "Hazel", "Pretzel", "Otis", "Moose", "Fig",
    "Toffee", "Luna", "Dumpling",
)  # fmt: skip
SIBLING_JOBS = (
    "a firefighter", "a sommelier at a wine bar", "an air traffic controller",
    "a primary school headteacher", "a marine biologist", "a tattoo artist", "a dentist",
    "a carpenter", "a flight attendant", "a police officer", "a midwife", "a train driver",
)  # fmt: skip
INTERESTS = (
    "rock climbing", "vintage vinyl records", "baking sourdough", "board games",
    "trail running", "photography", "growing chillies", "woodworking",
)  # fmt: skip
ALLERGIES = (
    ("shellfish", "my throat swells up"),
    ("peanuts", "I need my adrenaline pen"),
    ("sesame", "I come out in hives all over"),
    ("kiwi fruit", "my mouth goes itchy and swollen"),
    ("tree nuts", "I end up in A&E"),
    ("eggs", "I get awful stomach cramps"),
)
PARTNER_DIETS = (
    "has gone dairy-free because of eczema",
    "is gluten intolerant",
    "doesn't eat pork",
    "is trying to cut out sugar",
)


@dataclass(frozen=True)
class Hobby:
    started: str  # "I ..." in the past tense
    kind: str  # what questions call it
    doing: str  # "-ing" form as questions say it
    answer: str


HOBBIES = (
    Hobby("signed up for a beginners' wheel-throwing course at the community studio",
          "creative hobby", "making pottery", "pottery (wheel-throwing course)"),
    Hobby("joined the bouldering gym near work", "sport", "climbing", "bouldering"),
    Hobby("started cello lessons on Tuesday evenings", "musical instrument",
          "learning an instrument", "the cello"),
    Hobby("joined a Saturday morning parkrun group", "exercise routine",
          "running with other people", "parkrun"),
    Hobby("bought a secondhand sewing machine and started making my own clothes", "craft",
          "dressmaking", "sewing clothes"),
    Hobby("started salsa classes on Wednesday nights", "weekly activity", "dancing", "salsa"),
    Hobby("enrolled in an evening course in Italian at the adult college", "language",
          "studying a language", "Italian"),
    Hobby("joined a community choir that rehearses in a church hall", "group activity",
          "singing", "a community choir"),
    Hobby("got an allotment plot and started growing vegetables", "outdoor hobby",
          "gardening", "an allotment"),
    Hobby("started learning to surf with a local club", "water sport", "surfing", "surfing"),
)  # fmt: skip


@dataclass(frozen=True)
class Item:
    thing: str  # as the owner says it
    noun: str  # what questions call it
    price: int
    care: str  # the owner's question about it
    answer: str  # the reply


ITEMS = (
    Item("a refurbished espresso machine", "coffee maker", 180,
         "How often should I descale it?",
         "Every one to three months, depending on how hard your water is. Use a proper "
         "descaler rather than vinegar, which can damage the seals, and run two tanks of clean "
         "water through afterwards."),
    Item("a secondhand road bike", "bicycle", 420,
         "What should I check before riding it in traffic?",
         "Check the brakes bite firmly, the tyres are pumped to the pressure on the sidewall, "
         "the chain is clean and oiled, and the quick-release levers are tight. Lights front "
         "and back are worth having even in daytime."),
    Item("a pair of noise-cancelling headphones", "headset", 250,
         "Is it bad to wear them for hours at a time?",
         "Not really, as long as the volume stays moderate. Take them off every hour or so to "
         "rest your ears, and keep the ear cushions clean so they don't irritate your skin."),
    Item("an air fryer", "kitchen gadget", 90,
         "Can I put baking paper in it?",
         "Yes, but only perforated paper made for air fryers, and only with food on top of it "
         "so it can't blow up into the heating element. Never preheat it with the paper in."),
    Item("a Kindle Paperwhite", "e-reader", 140,
         "Can I borrow library books on it?",
         "In many countries, yes: library apps such as Libby send loans straight to it. If "
         "yours doesn't, you can still sideload ebooks without copy protection by USB."),
    Item("a pair of waterproof hiking boots", "walking shoes", 160,
         "How do I break them in without getting blisters?",
         "Wear them around the house first, then on short walks, building up over two or "
         "three weeks. Good socks help, and tape any hot spots before they turn into blisters."),
    Item("a mechanical keyboard", "computer accessory", 130,
         "How do I clean under the keys?",
         "Unplug it, pull the keycaps off with the puller that came with it, blow out the dust "
         "with compressed air and wipe the caps in warm soapy water, letting them dry fully."),
    Item("a robot vacuum", "cleaning gadget", 300,
         "Will it cope with a rug with tassels?",
         "Tassels are its nemesis: most models get them tangled in the brush. Tuck them under "
         "the rug or set a no-go zone in the app around it."),
    Item("a cast-iron skillet", "frying pan", 45,
         "How do I season it properly?",
         "Wash and dry it, rub a very thin layer of oil all over, then bake it upside down at "
         "a high heat for an hour. Repeat a few times, and cook something fatty in it early on."),
    Item("a two-person tent", "camping gear", 210,
         "Should I waterproof the seams before the first trip?",
         "Pitch it in the garden first and check the seams; many come taped already. If they "
         "aren't, a seam sealer takes an evening and saves a wet night."),
    Item("a standing desk", "office furniture", 350,
         "How long should I stand each day at first?",
         "Start with twenty to thirty minutes at a time, a couple of times a day, and build "
         "up. Alternating is the point: standing all day isn't better than sitting all day."),
    Item("a dehumidifier", "appliance for the damp", 150,
         "Where in the flat should I put it?",
         "In the dampest room, usually the bedroom or wherever you dry laundry, with the door "
         "closed and a bit of space around it. Empty the tank daily at first."),
)  # fmt: skip
ALMOST_BOUGHT = (
    "an expensive stand mixer",
    "a smartwatch",
    "a second-hand kayak",
    "a fancy office chair",
    "a projector for the living room",
)


@dataclass(frozen=True)
class Trip:
    country: str
    region: str
    highlight: str


TRIPS = (
    Trip("Japan", "Kyoto and Osaka", "the early-morning walk up through the red gates at "
         "Fushimi Inari"),
    Trip("Iceland", "Reykjavik and the south coast", "standing behind the Seljalandsfoss "
         "waterfall"),
    Trip("Morocco", "Marrakesh and the Atlas mountains", "the night food stalls in Jemaa "
         "el-Fnaa"),
    Trip("Peru", "Cusco and the Sacred Valley", "watching the sunrise over Machu Picchu"),
    Trip("Vietnam", "Hanoi and Ha Long Bay", "the night on the boat among the limestone islands"),
    Trip("Norway", "Bergen and the fjords", "kayaking on the Naeroyfjord"),
    Trip("Greece", "Crete", "the hike down the Samaria Gorge"),
    Trip("Mexico", "Oaxaca", "the mole cooking class with a local family"),
    Trip("New Zealand", "Queenstown and Milford Sound", "the boat trip through Milford Sound "
         "in the rain"),
    Trip("Canada", "Banff and Jasper", "seeing a bear from the Icefields Parkway"),
    Trip("Croatia", "Split and Hvar", "swimming off the rocks at sunset"),
    Trip("Thailand", "Chiang Mai", "the cooking school out in the rice fields"),
    Trip("Argentina", "Buenos Aires and Mendoza", "the wine tour by bike in Mendoza"),
    Trip("Jordan", "Petra and Wadi Rum", "sleeping in the desert camp under the stars"),
)  # fmt: skip
OTHER_COUNTRIES = ("Sri Lanka", "Portugal", "Kenya", "Chile", "South Korea", "Slovenia")


# ---------------------------------------------------------------------------------------------
# Building one entity


@dataclass
class _Plant:
    key: str
    session: int
    user: str
    reply: str
    evidence: str = "user"  # which message of the pair the questions point at


@dataclass
class _Ask:
    category: str
    text: str
    keys: tuple[str, ...]
    answer: str


@dataclass
class _Builder:
    rng: random.Random
    dates: list[datetime]
    plants: list[_Plant] = field(default_factory=list)
    asks: list[_Ask] = field(default_factory=list)
    load: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.load = [0] * len(self.dates)

    @property
    def n(self) -> int:
        return len(self.dates)

    def pick(
        self,
        lo: float,
        hi: float,
        *,
        after: int = -1,
        before: int | None = None,
        avoid: Callable[[int], bool] = lambda _s: False,
    ) -> int | None:
        """A session in the fraction range [lo, hi] of the timeline, strictly between
        `after` and `before`, among the least loaded; None when there is none."""
        last = self.n - 1 if before is None else before - 1
        first = after + 1
        window = [
            s
            for s in range(
                max(first, round(lo * (self.n - 1))), min(last, round(hi * (self.n - 1))) + 1
            )
            if not avoid(s)
        ]
        if not window:
            window = [s for s in range(first, last + 1) if not avoid(s)]
        if not window:
            return None
        least = min(self.load[s] for s in window)
        return self.rng.choice([s for s in window if self.load[s] <= least + 1])

    def plant(
        self,
        key: str,
        session: int,
        user: str | tuple[str, ...],
        reply: str | tuple[str, ...],
        evidence: str = "user",
    ) -> None:
        """Plant a fact: a user message and the reply to it, in `session`. Given variants of
        both, the same variant of each is taken (replies answer their own message)."""
        if isinstance(user, tuple) and isinstance(reply, tuple):
            assert len(user) == len(reply), key
            user, reply = self.rng.choice(list(zip(user, reply, strict=True)))
        if isinstance(user, tuple):
            user = self.rng.choice(user)
        if isinstance(reply, tuple):
            reply = self.rng.choice(reply)
        self.load[session] += 1
        self.plants.append(_Plant(key, session, user, reply, evidence))

    def ask(self, category: str, text: str, keys: Sequence[str], answer: str) -> None:
        assert category in CATEGORIES
        self.asks.append(_Ask(category, text, tuple(keys), answer))

    def has(self, key: str) -> bool:
        return any(plant.key == key for plant in self.plants)

    def session_of(self, key: str) -> int:
        return next(plant.session for plant in self.plants if plant.key == key)


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _day_text(rng: random.Random, day: datetime) -> str:
    if rng.random() < 0.5:
        return f"the {_ordinal(day.day)} of {day:%B}"
    return f"{day:%B} {_ordinal(day.day)}"


def _month(day: datetime) -> str:
    return f"{day:%B %Y}"


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiouAEIOU' else 'a'} {noun}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass
class _Person:
    """What one entity's facts are drawn from (distinct values within the entity)."""

    rng: random.Random
    name: str
    currency: str
    taken: set[str] = field(default_factory=set)

    def distinct(self, values: Sequence[str]) -> str:
        choices = [v for v in values if v not in self.taken]
        value = self.rng.choice(choices)
        self.taken.add(value)
        return value

    def person(self) -> tuple[str, str]:
        """A name and its pronoun key ("f" or "m")."""
        gender = self.rng.choice("fm")
        return self.distinct(FEMALE if gender == "f" else MALE), gender


def _home(b: _Builder, p: _Person, facts: dict[str, str]) -> None:
    rng = b.rng
    city0, city1, parents = (p.distinct(CITIES) for _ in range(3))
    facts["city1"] = city1
    s0 = b.pick(0.0, 0.3)
    assert s0 is not None
    b.plant(
        "city0",
        s0,
        (
            f"My landlord here in {city0} wants to put the rent up by eight percent. Is "
            "that normal, and can I push back?",
            f"Our flat in {city0} has paper-thin walls and the neighbours are loud. Any "
            "cheap ways to soundproof a bedroom?",
            f"I've lived in {city0} for four years and still haven't found a dentist I "
            "like. How do I choose one?",
        ),
        (
            f"Rent rules differ a lot, so check the local rules in {city0} first: many "
            "places limit how often and by how much rent can rise and require written "
            "notice. You can always reply asking for the reasoning and propose a smaller "
            "increase, pointing to comparable flats nearby and your record as a tenant.",
            "Start with the cheap wins: a thick rug, a bookcase full of books against the "
            "shared wall, heavy curtains and draught strips around the door. Foam panels "
            "do less than people hope for noise coming through walls. A polite word with "
            "the neighbours about the worst hours can help more than any material.",
            "Ask friends and colleagues nearby for recommendations, check reviews for how "
            "they treat nervous patients, and book a check-up first to see how you get on. "
            "A good dentist explains options and costs before doing anything.",
        ),
    )
    s1 = b.pick(0.6, 1.0, after=s0 + 2)
    if s1 is None:
        return
    b.plant(
        "city1",
        s1,
        (
            f"Big week: the removal van finally got us to {city1}! Boxes everywhere. What "
            "should I update now that my address has changed?",
            f"First week living in the new flat in {city1}. The kitchen is tiny. How do I "
            "organise a small kitchen so it's actually usable?",
            f"I'm still getting lost in {city1} since we moved here. Any tips for meeting "
            "people when you've just arrived somewhere?",
        ),
        (
            "Congratulations on the move! The usual list: your bank, employer, doctor and "
            "dentist, electoral register, insurance, phone contract and any subscriptions. "
            "Setting up mail redirection for a few months catches whatever you forget.",
            "Small kitchens reward ruthlessness: keep only what you use weekly within "
            "reach, go vertical with wall rails and shelf risers, and use the inside of "
            "cupboard doors for lids and wraps. A magnetic knife strip frees up a drawer.",
            "Say yes to everything for the first few months: a class, a club, a volunteer "
            "shift or a regular quiz night. Seeing the same faces every week is what turns "
            "strangers into friends, so pick one thing and stick with it.",
        ),
    )
    b.ask(
        "knowledge_update",
        rng.choice(
            ("Which city am I living in now?", "Where's home for me these days?",
             "What city do I currently live in?")
        ),
        ["city1"],
        city1,
    )  # fmt: skip
    b.ask(
        "knowledge_update",
        rng.choice(
            ("Where did I live before I moved?", "Which town did I leave when I relocated?")
        ),
        ["city0", "city1"],
        city0,
    )
    b.ask(
        "temporal",
        rng.choice(
            ("When did I move house?", f"Roughly when did I relocate to {city1}?",
             "In which month did I change cities?")
        ),
        ["city1"],
        _month(b.dates[s1]),
    )  # fmt: skip
    sd = b.pick(0.0, 1.0, avoid=lambda s: s in (s0, s1))
    if sd is not None:
        b.plant(
            "parents",
            sd,
            f"My parents still live in {parents} and I'm visiting them at the weekend. What's "
            "a nice gift to bring that isn't flowers?",
            "Something consumable is usually welcome: a good bottle of wine or olive oil, "
            "chocolates from a local maker, a plant for the garden, or a framed photo of a "
            "shared memory. Offering to cook one of the meals while you're there is a lovely "
            "gift in itself.",
        )


def _work(b: _Builder, p: _Person, facts: dict[str, str]) -> None:
    rng = b.rng
    job = rng.choice(JOBS)
    role1, company1 = rng.choice(NEW_ROLES)
    s0 = b.pick(0.0, 0.35)
    assert s0 is not None
    b.plant(
        "job0",
        s0,
        (
            f"Work is brutal at the moment. I'm {_a(job.role)} and {job.detail}. How do I "
            "stop bringing the stress home?",
            f"Can you help me improve my LinkedIn headline? Right now it just says "
            f"'{_cap(job.role)} at {job.company}'.",
            f"I'm {_a(job.role)}, and after a whole day of {job.activity} my eyes are "
            "wrecked. Any tips for screen fatigue or tired eyes?",
        ),
        (
            "A clear end-of-day ritual helps: write tomorrow's top three tasks, close "
            "everything down, and do something physical on the way home. Keep work apps off "
            "your phone's home screen in the evening, and if the pressure is constant, "
            "raise the workload itself with your manager rather than just coping.",
            f"A headline works best when it says what you do and for whom. For a "
            f"{job.role}, lead with the speciality and one concrete result, then the "
            "employer, for example a short phrase about the kind of problems you solve "
            "rather than only a title.",
            "Try the 20-20-20 rule: every twenty minutes, look at something twenty feet "
            "away for twenty seconds. Keep the screen an arm's length away and slightly "
            "below eye level, and remember to blink; lubricating drops help if your eyes "
            "feel dry. An eye test is worth it if it persists.",
        ),
    )
    sd = b.pick(0.0, 1.0, avoid=lambda s: s == s0)
    if sd is not None:
        old = rng.choice(OLD_JOBS)
        b.plant(
            "old_job",
            sd,
            f"Back when I {old} during uni, I learned to deal with rude people. How do I use "
            "that in an interview answer about handling conflict?",
            "That experience is gold for a conflict question. Use a short structure: the "
            "situation, what you did, and the result, ideally with one specific example of a "
            "difficult customer you calmed down. Finish by saying what you still apply from "
            "it today, which links the old job to the role you want.",
        )
    if rng.random() < 0.75:
        s1 = b.pick(0.55, 1.0, after=s0 + 2)
        if s1 is not None:
            b.plant(
                "job1",
                s1,
                (
                    f"I accepted the offer! From next month I'll be {role1} at {company1}. "
                    "How do I make a good impression in the first ninety days?",
                    f"First day in the new job as {role1} at {company1} went well, I think. "
                    "So many names to remember. Any tricks?",
                    f"Signed the contract with {company1} today, so I'm officially their "
                    f"{role1}. Should I negotiate the start date?",
                ),
                (
                    "Congratulations! Spend the first month listening: meet everyone you "
                    "will work with, ask what they wish the role would do, and learn how "
                    "decisions really get made. Pick one small, visible improvement for "
                    "the second month, and agree with your manager what success looks "
                    "like at ninety days.",
                    "Write names down after each meeting with a detail about the person, "
                    "use the name once in conversation, and look at the team page or org "
                    "chart before meetings. Nobody expects you to know everyone in week "
                    "one, and asking again is fine.",
                    "It's completely normal to ask. Explain your notice period and any "
                    "commitments, suggest a specific date, and keep it friendly. Most "
                    "employers would rather wait a week or two than start the relationship "
                    "badly.",
                ),
            )
            b.ask(
                "knowledge_update",
                rng.choice(("What's my current job?", "Who do I work for now, and in what role?",
                            "What do I do for work these days?")),
                ["job1"],
                f"{role1} at {company1}",
            )  # fmt: skip
            b.ask(
                "temporal",
                rng.choice(("When did I change employers?", "Around when did I land the new job?")),
                ["job1"],
                _month(b.dates[s1]),
            )  # fmt: skip
            b.ask(
                "knowledge_update",
                rng.choice(("What was my occupation before I switched jobs?",
                            "Which role did I leave behind for the new one?")),
                ["job0", "job1"],
                job.role,
            )  # fmt: skip
        else:
            b.ask(
                "single_fact",
                rng.choice(("What do I do for a living?", "What's my profession?")),
                ["job0"],
                job.role,
            )
    else:
        b.ask(
            "single_fact",
            rng.choice(("What do I do for a living?", "What's my profession?")),
            ["job0"],
            job.role,
        )
    _projects(b, p, facts)


def _projects(b: _Builder, p: _Person, facts: dict[str, str]) -> None:
    rng = b.rng
    projects = rng.sample(PROJECTS, 4)
    months: set[str] = set()
    boss_word = rng.choice(BOSS_WORDS)
    # The manager and what they handed over: a multi-hop by the manager's name.
    if rng.random() < 0.7:
        boss, _ = p.person()
        name, detail = projects.pop()
        s0 = b.pick(0.0, 0.6)
        assert s0 is not None
        s1 = b.pick(0.1, 0.9, after=s0)
        if s1 is not None:
            b.plant(
                "boss",
                s0,
                (
                    f"My {boss_word} {boss} has started weekly one-to-ones. What should I "
                    "bring to them so they're actually useful?",
                    f"I get on well with {boss}, my {boss_word}, but the emails arrive at "
                    "midnight. Do I have to reply straight away?",
                ),
                (
                    "Bring a short list: what you finished, what's blocked and where you "
                    "need a decision, and one thing about your own development. Send it a "
                    "day ahead so the meeting is for discussion, not status updates, and "
                    "note any agreed actions at the end.",
                    "Usually not. Late emails often just reflect when someone finds time to "
                    "write. If you're unsure, ask once what response time is expected for "
                    "messages sent out of hours; most people are happy to say tomorrow is "
                    "fine.",
                ),
            )
            b.plant(
                "boss_project",
                s1,
                (
                    f"{boss} has asked me to lead {name}, which means {detail}. I've never "
                    "run anything this size. Where do I even start?",
                    f"Guess who's now in charge of {name}? Me. {boss} said I was the "
                    "obvious choice. How do I run a good kickoff meeting?",
                ),
                (
                    "Start by writing one page: the goal, what's in and out of scope, the "
                    "deadline and who needs to be involved. Then break the work into "
                    "milestones of a couple of weeks, agree a regular check-in with the "
                    "people doing the work, and keep a simple list of risks you review "
                    "every week.",
                    "Keep the kickoff to an hour: why the work matters, what done looks "
                    "like, who owns which part, the first milestones and how the team will "
                    "communicate. End with clear actions and send a short summary the same "
                    "day.",
                ),
            )
            asked = rng.choice([w for w in ("manager", "boss", "supervisor") if w not in boss_word])
            b.ask(
                "multi_hop",
                rng.choice(
                    (f"What did my {asked} put me in charge of?",
                     f"Which piece of work did my {asked} hand over to me?")
                ),
                ["boss", "boss_project"],
                name,
            )  # fmt: skip
            months.add(_month(b.dates[s1]))
    # Work in given months: what was I working on in March?
    wanted = rng.randint(2, 3)
    for number, (name, detail) in enumerate(projects[:wanted]):
        s = b.pick(0.0, 1.0, avoid=lambda s: _month(b.dates[s]) in months)
        if s is None:
            break
        months.add(_month(b.dates[s]))
        key = f"project{number}"
        b.plant(
            key,
            s,
            (
                f"This week is all about {name}: {detail}. Could you help me write a "
                "three-line status update for the team?",
                f"I'm completely buried in {name} at the moment, {detail}. How do I stay "
                "motivated when a piece of work drags on?",
                f"Work update: I've taken on {name}, which means {detail}. What's a good "
                "way to break a big piece of work into chunks?",
            ),
            (
                f"Here's a draft: 'This week on {name} we finished the groundwork, the "
                "next milestone is on track, and we need two decisions by Friday.' Swap "
                "in your specifics and keep each line to one idea so it's easy to skim on "
                "a phone.",
                "Long pieces of work feel endless when progress is invisible. Keep a "
                "done list as well as a to-do list, set small weekly targets you can "
                "actually hit, and celebrate the milestones, even with something small. "
                "Batch the dullest tasks into one focused morning.",
                "Work backwards from the deadline: list the big deliverables, then split "
                "each into tasks that take a day or less. Put them in order, flag what "
                "depends on other people, and start those first so waiting doesn't hold "
                "you up later.",
            ),
        )
        month = f"{b.dates[s]:%B}"
        b.ask(
            "temporal",
            rng.choice(
                (f"What was I working on in {month}?",
                 f"What was keeping me busy at work back in {month}?",
                 f"Which project took up my time in {month}?")
            ),
            [key],
            name,
        )  # fmt: skip


def _pet(b: _Builder, p: _Person, facts: dict[str, str]) -> None:
    rng = b.rng
    species = rng.choice((DOG, DOG, CAT))
    breed = rng.choice(species.breeds)
    pet = p.distinct(PET_NAMES)
    gender = rng.choice("fm")
    pro = PRONOUNS[gender]
    slots = {"pet": pet, **pro}
    s0 = b.pick(0.05, 0.6)
    assert s0 is not None
    b.plant(
        "pet",
        s0,
        (
            f"We picked up a {breed} from the shelter on Saturday and named {pro['obj']} "
            f"{pet}. Any tips for the first few nights so {pro['sub']} settles in?",
            f"Meet {pet}! {pro['Sub']} is a {breed} and came home with us last week. "
            f"What should I have in the cupboard for {pro['obj']}?",
            f"Well, it finally happened: we have a {species.word} now, a {breed} called "
            f"{pet}. How do I make the first week less stressful for everyone?",
        ),
        species.settling.format(**slots),
    )
    word = species.word
    b.ask(
        "single_fact",
        rng.choice((f"What's my {word} called?", f"What name did I give my {word}?")),
        ["pet"],
        pet,
    )
    b.ask(
        "single_fact",
        rng.choice((f"What kind of {word} do I have?", f"What breed is my {word}?")),
        ["pet"],
        breed,
    )
    b.ask(
        "temporal",
        rng.choice((f"When did I get my {word}?", f"In which month did the {word} join us?")),
        ["pet"],
        _month(b.dates[s0]),
    )
    s1 = b.pick(0.2, 1.0, after=s0)
    if s1 is not None:
        symptom, found = rng.choice(species.problems)
        b.plant(
            "pet_vet",
            s1,
            f"Took {pet} to the vet because {pro['sub']} {symptom}. Turns out it's {found}. How "
            "do I get medicine into a very reluctant patient?",
            f"Poor {pet}, but it sounds manageable. Hide tablets in a small piece of strong-"
            "smelling food, give a plain treat first and another straight after, and stay calm "
            "and quick. Pill pockets from the pet shop work well, and the vet nurse can show "
            "you how to give it directly if hiding it fails.",
        )
        b.ask(
            "multi_hop",
            rng.choice(
                (f"What health problem did my {word} have?",
                 f"What was wrong with my {word} when I got {pro['obj']} checked?")
            ),
            ["pet", "pet_vet"],
            found,
        )  # fmt: skip
    if "city1" in facts and b.has("city1"):
        b.ask(
            "temporal",
            f"Did my {word} join the household before or after I moved to {facts['city1']}?",
            ["pet", "city1"],
            "before" if s0 < b.session_of("city1") else "after",
        )
    sd = b.pick(0.0, 1.0, avoid=lambda s: s == s0)
    if sd is not None:
        friend, fg = p.person()
        other = rng.choice([x for x in species.breeds if x != breed])
        other_name = p.distinct(PET_NAMES)
        b.plant(
            "friend_pet",
            sd,
            f"My friend {friend}'s {other}, {other_name}, is staying with us while "
            f"{PRONOUNS[fg]['sub']} is away, and {other_name} keeps stealing socks. Is that "
            "normal?",
            "Very normal, especially in a new place: socks smell strongly of people, which is "
            "comforting, and stealing them is a reliable way to get attention. Keep laundry out "
            "of reach, offer a chew toy as a swap, and avoid chasing, which turns it into a "
            "game. It usually fades once the routine settles.",
        )


def _sibling(b: _Builder, p: _Person, facts: dict[str, str]) -> None:
    rng = b.rng
    name, gender = p.person()
    rel = "sister" if gender == "f" else "brother"
    pro = PRONOUNS[gender]
    city = p.distinct(CITIES)
    job = rng.choice(SIBLING_JOBS)
    s0 = b.pick(0.0, 0.5)
    assert s0 is not None
    b.plant(
        "sibling",
        s0,
        (
            f"My {rel} {name} is coming down from {city} for the weekend. What can two "
            "adults do if it pours with rain?",
            f"I'm visiting my {rel} {name} in {city} next month and {pro['sub']} has a tiny "
            "spare room. What's a good thank-you gift for a host?",
            f"Had a long video call with my {rel} {name} last night. {pro['Sub']}'s lived "
            f"in {city} for years and keeps asking me to visit. Is it silly to feel "
            "homesick for a person?",
        ),
        (
            "Rainy weekends can be great: a long brunch, a museum or gallery you've never "
            "been to, a cinema double bill, an escape room, or a cooking project you make "
            "together. Having one plan for each day and leaving the rest loose keeps it "
            "relaxed.",
            "Something for the home or the table is safest: good coffee, a plant, a nice "
            "candle or a local treat from where you live. Leaving the spare room tidier "
            "than you found it and cooking one dinner go a long way too.",
            f"Not silly at all. Missing someone you're close to is a kind of homesickness, "
            f"and it says a lot about your bond with {name}. Regular calls help, and "
            "having the next visit in the calendar gives you something to look forward to.",
        ),
    )
    s1 = b.pick(0.2, 1.0, after=s0)
    if s1 is None:
        return
    b.plant(
        "sibling_job",
        s1,
        (
            f"{name} just started a new role as {job} and I want to send {pro['obj']} "
            "something to celebrate. Ideas?",
            f"{name} had a rough week. Being {job} is no joke. How can I support "
            f"{pro['obj']} from a distance?",
        ),
        (
            f"How lovely! A card saying specifically why you're proud of {name} means the "
            "most, paired with something practical for the new routine: a good flask, a "
            "nice notebook, a meal delivery voucher for the first tiring weeks, or flowers "
            "sent to the door.",
            f"Regular small check-ins beat one big gesture: a voice note, a funny photo, "
            f"a takeaway sent to the door on a hard evening. Ask {name} whether they want "
            "advice or just to vent, and plan a visit or a call to look forward to.",
        ),
    )
    b.ask(
        "multi_hop",
        f"Which city does my {rel} live in, and what does {pro['sub']} do for work?",
        ["sibling", "sibling_job"],
        f"{city}; {job}",
    )
    b.ask(
        "multi_hop",
        rng.choice((f"What's my {rel}'s job?", f"What does my {rel} do for a living?")),
        ["sibling", "sibling_job"],
        job,
    )
    b.ask("single_fact", f"What is my {rel} called?", ["sibling"], name)
    if rng.random() < 0.5:
        s2 = b.pick(0.2, 0.9, after=s0)
        if s2 is not None:
            day = b.dates[s2] + timedelta(days=rng.randint(20, 60))
            b.plant(
                "sibling_wedding",
                s2,
                f"{name}'s wedding is on {_day_text(rng, day)} and I'm doing a reading. Can you "
                "suggest something that isn't too cheesy?",
                "A few options that work well: a short poem about everyday love rather than "
                "grand romance, a passage from a favourite novel of the couple, or a few lines "
                "you write yourself about what you've seen of them together. Keep it under two "
                "minutes and practise it out loud.",
            )
            b.ask(
                "temporal",
                f"When is my {rel} getting married?",
                ["sibling", "sibling_wedding"],
                f"{day:%d %B %Y}",
            )


def _partner(b: _Builder, p: _Person, facts: dict[str, str]) -> None:
    rng = b.rng
    name, gender = p.person()
    word = rng.choice(("wife", "partner") if gender == "f" else ("husband", "partner"))
    facts["partner"] = f"my {word}"
    facts["partner_interest"] = interest = rng.choice(INTERESTS)
    pro = PRONOUNS[gender]
    s0 = b.pick(0.0, 1.0)
    assert s0 is not None
    b.plant(
        "partner",
        s0,
        f"It's {name}'s birthday next week. We've been together six years and I'm out of ideas. "
        f"{pro['Sub']}'s really into {interest}. Any gift ideas?",
        f"Six years in, experiences often beat objects: a day out or a class connected to "
        f"{interest}, or something small but high quality for it that {name} wouldn't buy "
        "for themselves. Pair it with a handwritten note about a favourite memory of the year.",
    )
    b.ask(
        "single_fact",
        rng.choice((f"What is my {word} passionate about?", f"What's my {word}'s big hobby?")),
        ["partner"],
        interest,
    )
    sd = b.pick(0.0, 1.0, avoid=lambda s: s == s0)
    if sd is not None:
        b.plant(
            "partner_diet",
            sd,
            f"{name} {rng.choice(PARTNER_DIETS)}, so I'm cooking around that. What's an easy "
            "weeknight dinner we can both eat?",
            "A tray bake is the easiest route: roast chicken thighs or chickpeas with potatoes, "
            "peppers, red onion and lemon, seasoned with smoked paprika and garlic. Everything "
            "is naturally free of the usual problem ingredients, and it's easy to adapt one "
            "half of the tray.",
        )


def _allergy(b: _Builder, p: _Person, facts: dict[str, str]) -> None:
    rng = b.rng
    allergen, reaction = rng.choice(ALLERGIES)
    facts["allergen"] = allergen
    s = b.pick(0.0, 1.0)
    assert s is not None
    b.plant(
        "allergy",
        s,
        (
            f"I'm hosting six people on Saturday. Heads up, I can't go anywhere near "
            f"{allergen}, {reaction}, so nothing with that in it. What's an impressive main "
            "course?",
            f"Ordering takeaway is a minefield for me because of {allergen}: if I get it "
            f"wrong, {reaction}. Which cuisines are usually easier to order safely from?",
            f"I'm allergic to {allergen} ({reaction}) and we're eating out for a friend's "
            "birthday. How do I raise it with the restaurant without making a fuss?",
        ),
        (
            f"Safety first, then: cook from whole ingredients so you control everything, and "
            f"check stock cubes, sauces and spice mixes, which can hide {allergen}. A slow-"
            "roasted shoulder of lamb or a big vegetable lasagne looks impressive and needs "
            "little last-minute work, so you can enjoy your guests.",
            "Cuisines that rely less on the ingredient are a safer start, but nothing beats "
            "asking: when you order, state it as an allergy rather than a preference, ask about "
            "shared oil and cross-contamination, and skip places that can't answer clearly. Keep "
            "your medication with you even for a night in.",
            "It's not a fuss at all; restaurants handle allergies every day. Mention it when you "
            "book, remind the server when you order, and ask what they'd recommend as safe. If "
            "the answers sound vague, choose something simple, and keep your medication with you.",
        ),
    )
    b.ask(
        "single_fact",
        rng.choice(
            ("Is there a food I have to avoid for medical reasons?",
             "Which ingredient do I react badly to?", "What can't I eat safely?",
             "What am I allergic to?")
        ),
        ["allergy"],
        allergen,
    )  # fmt: skip


DIETS = (
    (
        "I've been vegetarian for about five years",
        "my doctor said my iron was low, so I've started eating fish again",
        "Am I still vegetarian?",
        "No: eating fish again (pescatarian)",
    ),
    (
        "I've been fully vegan since last spring",
        "I've relaxed things and eat eggs and cheese again now",
        "Am I still vegan?",
        "No: eats eggs and cheese again (vegetarian)",
    ),
    (
        "I don't drink alcohol at all",
        "I've started having the odd glass of wine again at the weekend",
        "Do I drink these days?",
        "Yes: the odd glass of wine at the weekend",
    ),
    (
        "I'm doing keto at the moment, so basically no carbs",
        "I gave up on the low-carb thing and bread is back in my life",
        "Am I still avoiding carbohydrates?",
        "No: gave up low-carb",
    ),
)


def _diet(b: _Builder, p: _Person, facts: dict[str, str]) -> None:
    rng = b.rng
    before, after, question, answer = rng.choice(
        [diet for diet in DIETS if facts["allergen"] not in diet[1]]
    )
    s0 = b.pick(0.0, 0.4)
    assert s0 is not None
    s1 = b.pick(0.6, 1.0, after=s0 + 1)
    if s1 is None:
        return
    b.plant(
        "diet0",
        s0,
        f"Can you suggest a quick lunch I can take to work? {before}, so keep that in mind.",
        "Here are a few that travel well: a big jar salad with grains, beans and a sharp "
        "dressing at the bottom; a thick soup in a flask; or roasted vegetables with hummus "
        "and flatbread. Make two at the weekend and alternate them through the week so you "
        "don't get bored.",
    )
    b.plant(
        "diet1",
        s1,
        f"Small life update: {after}. What are some easy dinners to get started with?",
        "Easy wins: a traybake with whatever's new on the menu, a quick pasta with a good "
        "sauce, or a frittata-style dish that uses up leftovers. Start with two or three "
        "dinners you know you'll enjoy and build from there rather than overhauling "
        "everything at once.",
    )
    b.ask("knowledge_update", question, ["diet1"], answer)


def _hobby(b: _Builder, p: _Person, facts: dict[str, str]) -> None:
    rng = b.rng
    hobby = rng.choice(HOBBIES)
    s = b.pick(0.1, 0.9)
    assert s is not None
    b.plant(
        "hobby",
        s,
        (
            f"Guess what, I finally {hobby.started}! First session was fun but humbling. "
            "How do I avoid getting discouraged as a complete beginner?",
            f"New thing for me: I {hobby.started}. Any tips for not embarrassing myself in "
            "the first month?",
            f"New hobby alert: I {hobby.started}. How do I fit it into a busy week without "
            "giving up after a month?",
        ),
        "Good for you! Everyone in that room was a beginner once, and most people are "
        "delighted to see someone new. Go every week for the first two months even when you "
        "don't feel like it, compare yourself only with where you started, and ask the "
        "instructor for one thing to focus on each time.",
    )
    b.ask(
        "single_fact",
        rng.choice((f"What {hobby.kind} did I take up?", f"Which {hobby.kind} did I start?")),
        ["hobby"],
        hobby.answer,
    )
    b.ask("temporal", f"When did I start {hobby.doing}?", ["hobby"], _month(b.dates[s]))


def _purchase(b: _Builder, p: _Person, key: str, session: int, item: Item) -> None:
    rng = b.rng
    price = f"{p.currency}{item.price}"
    b.plant(
        key,
        session,
        (
            f"Treated myself to {item.thing} for {price}. {item.care}",
            f"I finally bought {item.thing}. {price}, which felt like a lot! {item.care}",
            f"Update: {item.thing} arrived today (paid {price} in the end). {item.care}",
        ),
        filler.pad(rng, item.answer, ("Enjoy it!", "Keep the receipt for the warranty.")),
    )
    b.ask(
        "single_fact",
        rng.choice(
            (f"What kind of {item.noun} did I buy?", f"How much did I pay for my {item.noun}?",
             f"Which {item.noun} did I end up getting?")
        ),
        [key],
        f"{item.thing}, {price}",
    )  # fmt: skip


def _trip(b: _Builder, p: _Person, facts: dict[str, str], trip_at: int, departure: datetime,
          days: int) -> None:  # fmt: skip
    rng = b.rng
    trip = rng.choice(TRIPS)
    companion = facts.get("partner", rng.choice(("two friends from uni", "my cousin")))
    b.plant(
        "trip",
        trip_at,
        (
            f"Flights are booked! {_cap(companion)} and I are off to {trip.region} on "
            f"{_day_text(rng, departure)} for {days} days. What should I pack?",
            f"{_cap(companion)} and I leave for {trip.country} on "
            f"{_day_text(rng, departure)}: {trip.region}, {days} days, our first proper holiday "
            "in ages. How do I avoid getting ill on a long flight?",
        ),
        (
            "Exciting! Pack layers rather than bulky items, comfortable shoes you've "
            "already worn in, a small daypack, a universal adapter and any medication in "
            "its original box. Check the forecast a few days before you go and leave some "
            "space in the bag for things you'll bring back.",
            "Stay hydrated, wash or sanitise your hands before eating, sleep as much as you "
            "can the night before, and walk around the cabin every couple of hours. A mask "
            "in crowded airports doesn't hurt, and carry painkillers and rehydration "
            "sachets just in case.",
        ),
    )
    back = trip_at + 2
    if back < b.n:
        b.plant(
            "trip_back",
            back,
            (
                f"Home again and still jet-lagged. Honestly the best part was "
                f"{trip.highlight}. How do I get back into a normal sleep pattern?",
                f"Back at my desk after the holiday and I keep daydreaming about "
                f"{trip.highlight}. Any tips for making a photo book?",
            ),
            (
                "Welcome back! Get outside in the morning light, keep to your normal "
                "bedtime even if you're wide awake, and avoid napping longer than twenty "
                "minutes. Most people are back to normal within a few days.",
                "What a memory to bring home. Pick a story rather than every photo: "
                "one strong image per page, grouped by day or place, with short captions "
                "written while you still remember the details. Most photo book services "
                "let you start from a simple template.",
            ),
        )
        b.ask(
            "multi_hop",
            rng.choice(
                (f"What was the highlight of my trip to {trip.country}?",
                 f"What did I enjoy most about my holiday in {trip.country}?")
            ),
            ["trip", "trip_back"],
            trip.highlight,
        )  # fmt: skip
    b.ask(
        "temporal",
        rng.choice(
            (f"When did I fly out to {trip.country}?",
             f"What date did my {trip.country} holiday start?")
        ),
        ["trip"],
        f"{departure:%d %B %Y}",
    )  # fmt: skip
    b.ask("single_fact", f"How long was my trip to {trip.country}?", ["trip"], f"{days} days")
    if b.has("partner"):
        b.ask(
            "multi_hop",
            f"What is the person I travelled to {trip.country} with really into?",
            ["trip", "partner"],
            facts["partner_interest"],
        )
    items = rng.sample(ITEMS, 3)
    _purchase(b, p, "pre_trip_item", trip_at + 1, items[0])
    b.ask(
        "temporal",
        rng.choice(
            (f"What did I buy in the week before I left for {trip.country}?",
             f"Which purchase did I make just before my {trip.country} holiday?")
        ),
        ["pre_trip_item", "trip"],
        items[0].thing,
    )  # fmt: skip
    s = b.pick(0.0, 1.0, avoid=lambda s: s in (trip_at, trip_at + 1, trip_at + 2))
    if s is not None:
        _purchase(b, p, "item", s, items[1])
    sd = b.pick(0.0, 1.0, avoid=lambda s: s in (trip_at, trip_at + 1))
    if sd is not None:
        b.plant(
            "almost_bought",
            sd,
            f"I nearly bought {rng.choice(ALMOST_BOUGHT)} today but talked myself out of it. "
            "How do you decide whether something is worth the money?",
            "A few tests help: would you buy it at full price if it weren't on offer, what "
            "would it cost per use over a year, and do you already own something that does the "
            "job? Waiting thirty days before any non-essential purchase filters out most "
            "impulse buys.",
        )
    so = b.pick(0.0, 1.0, avoid=lambda s: s in (trip_at, trip_at + 2))
    if so is not None:
        b.plant(
            "colleague_trip",
            so,
            f"A colleague just got back from {rng.choice(OTHER_COUNTRIES)} and won't stop "
            "talking about it. How do people afford so many holidays?",
            "Usually a mix of things: travelling off-season, booking flights well ahead or "
            "very last minute, staying in cheaper places, and treating travel as the main "
            "thing they spend on. A separate savings pot that gets a fixed amount every "
            "month makes it feel far less painful.",
        )


EVENTS = (
    (
        "My first half marathon is on {day} and my longest training run is only 15k. Am I "
        "going to be OK?",
        "Did it! Crossed the line in {result} and I can barely walk down the stairs today. "
        "What helps sore legs?",
        ("1:58:40", "2:04:12", "1:52:09"),
        "When was my first half marathon?",
        "How fast did I finish the race?",
    ),
    (
        "My driving test is booked for {day}. The big roundabout near the test centre "
        "terrifies me. Any tips?",
        "I PASSED! The examiner only marked me down for {result} small things. Any tips for "
        "the first few weeks on my own?",
        ("two", "three", "four"),
        "When was my driving test?",
        "How many minor faults did I get?",
    ),
    (
        "Got tickets to see my favourite band on {day}, standing right at the front. How "
        "early should I queue?",
        "The gig last night was unreal. They opened with {result} and I lost my voice "
        "singing along. Is there a quick fix for a hoarse throat?",
        ("their very first single", "a slow acoustic song", "a brand-new track"),
        "When was the concert I went to?",
        "What did the band start the show with?",
    ),
)


def _event(b: _Builder, p: _Person, facts: dict[str, str]) -> None:
    rng = b.rng
    # No driving test for a driver, no half marathon for a knee that stopped running.
    skip = {"car": "driving test", "exercise": "half marathon"}
    events = [e for e in EVENTS if not any(k in facts and v in e[0] for k, v in skip.items())]
    before, after, results, when, how = rng.choice(events)
    s0 = b.pick(0.1, 0.8)
    if s0 is None or s0 + 1 >= b.n:
        return
    # The event is the day before the next session, which tells how it went.
    day = (b.dates[s0 + 1] - timedelta(days=1)).replace(hour=0, minute=0)
    if (day - b.dates[s0]).days < 3:
        return
    result = rng.choice(results)
    b.plant(
        "event",
        s0,
        before.format(day=_day_text(rng, day)),
        "Preparation is most of it: rehearse the tricky parts until they feel routine, get "
        "a proper night's sleep the night before, eat something you know agrees with you, and "
        "arrive early so you're not rushed. Nerves are normal and often help you focus once "
        "you get going.",
    )
    b.plant(
        "event_after",
        s0 + 1,
        after.format(result=result),
        "Congratulations, that's a big moment! Be gentle with yourself for a few days: rest, "
        "drink plenty, keep moving lightly and eat properly. It's worth writing down what "
        "went well while it's fresh, so you remember it next time.",
    )
    b.ask("temporal", when, ["event"], f"{day:%d %B %Y}")
    b.ask("single_fact", how, ["event_after"], result)


KID_ACTIVITIES = ("play the drums", "do gymnastics", "learn judo", "join a swimming squad")
SUBJECTS = ("reading", "fractions", "spelling", "handwriting")


def _kid(b: _Builder, p: _Person, facts: dict[str, str]) -> None:
    rng = b.rng
    name, gender = p.person()
    rel = "daughter" if gender == "f" else "son"
    pro = PRONOUNS[gender]
    age = rng.randint(6, 11)
    activity = rng.choice(KID_ACTIVITIES)
    s0 = b.pick(0.0, 0.6)
    assert s0 is not None
    b.plant(
        "kid",
        s0,
        f"My {rel} {name} turned {age} on Sunday and has decided {pro['sub']} wants to "
        f"{activity}. Is {age} a sensible age to start?",
        f"{age} is a great age to start: coordination and attention span are good enough to "
        "enjoy proper lessons, and a trial class costs little. Let the enthusiasm lead, "
        "keep practice short and fun at home, and agree to give it a term before deciding "
        "whether to continue.",
    )
    b.ask(
        "single_fact",
        rng.choice(("What activity does my child want to try?", "What did my kid ask to take "
                    "up?")),
        ["kid"],
        activity,
    )  # fmt: skip
    s1 = b.pick(0.2, 1.0, after=s0)
    if s1 is not None:
        subject = rng.choice(SUBJECTS)
        b.plant(
            "kid_school",
            s1,
            f"Parents' evening was tonight. {name}'s teacher says {pro['sub']}'s struggling with "
            f"{subject}. How can I help at home without turning it into a battle?",
            "Keep it short, regular and playful: ten minutes a day beats an hour on Sunday. "
            "Use games and everyday moments, praise effort rather than results, and ask the "
            "teacher what method they use so you explain it the same way at home.",
        )
        b.ask(
            "multi_hop",
            f"Which school subject is my {rel} finding hard?",
            ["kid", "kid_school"],
            subject,
        )


BOOKS = (
    ("The Remains of the Day", "Kazuo Ishiguro", "quiet, funny and devastating by the end"),
    ("A Gentleman in Moscow", "Amor Towles", "warm, clever and perfect in long sittings"),
    ("The Left Hand of Darkness", "Ursula K. Le Guin", "thoughtful science fiction"),
    ("Station Eleven", "Emily St. John Mandel", "hopeful despite its premise"),
    ("The Secret History", "Donna Tartt", "gripping from the first page"),
)
LIKED = ("Normal People", "The Midnight Library", "Where the Crawdads Sing", "Klara and the Sun")


def _recommendations(b: _Builder, p: _Person, facts: dict[str, str]) -> None:
    rng = b.rng
    title, author, why = rng.choice(BOOKS)
    s = b.pick(0.0, 1.0)
    assert s is not None
    b.plant(
        "book",
        s,
        f"Can you recommend a novel for a long train journey? I really liked {rng.choice(LIKED)}.",
        f"If you enjoyed that, try '{title}' by {author}: it's {why}, and it rewards the long "
        "stretches of reading a train gives you. Download a sample first, and pack a second "
        "option just in case it doesn't grab you in the first fifty pages.",
        evidence="assistant",
    )
    b.ask(
        "single_fact",
        rng.choice(("Which book did you suggest I read?", "What novel did you tell me to try?")),
        ["book"],
        f"{title} by {author}",
    )
    monthly = rng.choice((100, 150, 200, 250, 300))
    rate = rng.choice((3, 4, 5))
    years = rng.choice((5, 10))
    total = sum(monthly * (1 + rate / 100 / 12) ** k for k in range(1, years * 12 + 1))
    s2 = b.pick(0.0, 1.0, avoid=lambda x: x == s)
    if s2 is not None:
        b.plant(
            "savings",
            s2,
            f"If I put {p.currency}{monthly} a month into savings at {rate}% a year, what "
            f"would I have after {years} years?",
            f"With monthly compounding you'd end up with roughly {p.currency}{total:,.0f}, of "
            f"which {p.currency}{monthly * 12 * years:,} is what you paid in and the rest is "
            "interest. Rates change over time, so treat it as an estimate, and check whether "
            "the interest is taxable where you live.",
            evidence="assistant",
        )
        b.ask(
            "single_fact",
            "How much did you work out my savings would grow to?",
            ["savings"],
            f"about {p.currency}{total:,.0f}",
        )


CARS = (
    ("2009 Ford Focus", "the Focus"),
    ("old Honda Civic", "the Civic"),
    ("Peugeot 206", "the Peugeot"),
    ("ancient Toyota Yaris", "the Yaris"),
)
NEW_CARS = (
    "a secondhand Nissan Leaf",
    "a Skoda Octavia estate",
    "a used Tesla Model 3",
    "a Kia Niro hybrid",
)


def _car(b: _Builder, p: _Person, facts: dict[str, str]) -> None:
    rng = b.rng
    facts["car"] = "yes"
    old, short = rng.choice(CARS)
    new = rng.choice(NEW_CARS)
    s0 = b.pick(0.0, 0.5)
    assert s0 is not None
    s1 = b.pick(0.5, 1.0, after=s0 + 1)
    if s1 is None:
        return
    b.plant(
        "car0",
        s0,
        f"My {old} is making a grinding noise when I brake. Is it safe to keep driving it to "
        "work until the garage can fit me in?",
        "A grinding noise when braking usually means the pads are worn down to the metal, "
        "which damages the discs and makes braking less effective. I'd avoid driving it if "
        "you can, or keep to short, slow trips, and ask the garage whether it's safe to drive "
        "in at all.",
    )
    b.plant(
        "car1",
        s1,
        f"Said goodbye to {short} this weekend. The new car is {new}! Anything I should "
        "know in the first month?",
        "Congratulations! Read the handbook section on servicing and warranty, check the "
        "tyre pressures, and get used to the controls in a quiet car park. Note the mileage "
        "and any marks now, and register it in your name and insure it before driving off.",
    )
    b.ask("knowledge_update", "What car do I drive these days?", ["car1"], new)
    b.ask(
        "knowledge_update",
        "What was wrong with the vehicle I had before?",
        ["car0", "car1"],
        "grinding brakes",
    )


def _exercise(b: _Builder, p: _Person, facts: dict[str, str]) -> None:
    facts["exercise"] = "yes"
    s0 = b.pick(0.0, 0.4)
    assert s0 is not None
    s1 = b.pick(0.55, 1.0, after=s0 + 1)
    if s1 is None:
        return
    b.plant(
        "exercise0",
        s0,
        "I run about three times a week before work, usually 5k. What should I eat beforehand "
        "so I don't get a stitch?",
        "Something small and easy to digest thirty to sixty minutes before: half a banana, a "
        "slice of toast with honey, or a few crackers. Sip water rather than gulping, and "
        "warm up with a few minutes of brisk walking before you start running.",
    )
    b.plant(
        "exercise1",
        s1,
        "The physio told me to rest my knee for a while, so I've swapped the early runs for "
        "swimming laps at lunchtime. How do I get better at front crawl breathing?",
        "Breathe out steadily through your nose while your face is in the water, so you only "
        "need to breathe in when you turn. Roll your whole body rather than lifting your head, "
        "and practise breathing every three strokes with a float at first.",
    )
    b.ask(
        "knowledge_update",
        b.rng.choice(
            ("What do I do to stay fit at the moment?", "Am I still running before work?")
        ),
        ["exercise1"],
        "swimming laps at lunchtime",
    )


# In this order: the event is chosen knowing whether the person drives and runs.
OPTIONAL_FACTS = (_partner, _diet, _car, _exercise, _event, _kid, _recommendations)


def _dates(rng: random.Random, n: int) -> tuple[list[datetime], int, datetime, int]:
    """Session dates in 2025 with a trip between sessions `trip_at + 1` and `trip_at + 2`:
    (dates, trip_at, departure, days away)."""
    trip_at = rng.randint(max(1, round(0.3 * n)), max(1, round(0.6 * n)))
    trip_at = min(trip_at, n - 3)
    lead = rng.randint(3, 8)  # the purchase session is `lead` days before departure
    days = rng.randint(6, 14)
    span = 320
    gaps = [rng.randint(4, 24) for _ in range(n - 1)]
    gaps[trip_at] = rng.randint(5, 20)
    gaps[trip_at + 1] = lead + days + rng.randint(1, 5)
    fixed = gaps[trip_at] + gaps[trip_at + 1]
    others = sum(gaps) - fixed
    if sum(gaps) > span:  # squeeze the other gaps so the year holds them all
        scale = (span - fixed) / others
        gaps = [
            g if i in (trip_at, trip_at + 1) else max(2, int(g * scale)) for i, g in enumerate(gaps)
        ]
    start = datetime(2025, 1, 6, tzinfo=UTC) + timedelta(days=rng.randint(0, 30))
    days_in = [0]
    for gap in gaps:
        days_in.append(days_in[-1] + gap)
    dates = [
        start + timedelta(days=d, hours=rng.randint(7, 22), minutes=rng.randint(0, 59))
        for d in days_in
    ]
    departure = (dates[trip_at + 1] + timedelta(days=lead)).replace(hour=0, minute=0)
    return dates, trip_at, departure, days


_FIRST = ("Hi! ", "Morning! ", "Hey, me again. ", "Hello. ", "", "", "", "", "", "")
_LATER = ("Different topic. ", "Oh, before I forget. ", "Unrelated, but here goes. ", "", "", "")


def _session(
    rng: random.Random, talk: filler.Conversation, plants: list[_Plant], exchanges: int
) -> tuple[tuple[Message, ...], dict[str, int]]:
    """One session's messages: `exchanges` (user, assistant) pairs, the plants among threads
    of filler (never inside a thread); where each plant's evidence message landed."""
    used: set[str] = set()
    topics = rng.sample(filler.TOPICS, 2)
    wanted = exchanges - len(plants)
    threads: list[list[tuple[str, str]] | _Plant] = []
    count = 0
    if wanted > 3 and rng.random() < 0.15:
        threads.append([talk.greeting(used)])
        count += 1
    while count < wanted:
        topic = topics[0] if count < wanted / 2 else topics[1]
        thread = talk.thread(topic, used, rng.choice((0, 1, 1, 2)))[: wanted - count]
        threads.append(thread)
        count += len(thread)
    closing = wanted > 3 and rng.random() < 0.3
    if closing:  # the last filler pair becomes a thank-you
        last = threads[-1]
        assert isinstance(last, list)
        last.pop()
        if not last:
            threads.pop()
    for plant in plants:
        threads.insert(rng.randint(0, len(threads)), plant)
    if closing:
        threads.append([talk.closer(used)])
    messages: list[Message] = []
    where: dict[str, int] = {}
    for part in threads:
        prefix = rng.choice(_FIRST if not messages else _LATER)
        if isinstance(part, _Plant):
            where[part.key] = len(messages) + (0 if part.evidence == "user" else 1)
            messages.append(Message("user", prefix + part.user))
            messages.append(Message("assistant", part.reply))
            continue
        for number, (user, assistant) in enumerate(part):
            first = number == 0 and not messages
            messages.append(Message("user", (prefix if first else "") + user))
            messages.append(Message("assistant", assistant))
    return tuple(messages), where


def _entity(
    rng: random.Random, index: int, name: str, sessions: tuple[int, int]
) -> tuple[Entity, list[Question]]:
    n = rng.randint(*sessions)
    dates, trip_at, departure, days = _dates(rng, n)
    person = _Person(rng, name, rng.choice(CURRENCIES), {name})
    builder = _Builder(rng, dates)
    facts: dict[str, str] = {}
    chosen = sorted(rng.sample(OPTIONAL_FACTS, 4), key=OPTIONAL_FACTS.index)
    if _partner in chosen:  # the partner may come on the trip
        _partner(builder, person, facts)
        chosen.remove(_partner)
    _trip(builder, person, facts, trip_at, departure, days)
    for fact in (_home, _work, _sibling, _allergy, _hobby):
        fact(builder, person, facts)
    if rng.random() < 0.85:
        _pet(builder, person, facts)
    for fact in chosen:
        fact(builder, person, facts)
    entity_id = f"mq{index:02d}-{name.lower()}"
    built: list[Session] = []
    where: dict[str, tuple[int, int]] = {}
    talk = filler.Conversation(rng)
    for s, date in enumerate(dates):
        plants = [plant for plant in builder.plants if plant.session == s]
        low = max(3, len(plants) + 1)
        exchanges = min(15, max(low, round(rng.triangular(3, 15, 6))))
        messages, placed = _session(rng, talk, plants, exchanges)
        built.append(Session(date, messages))
        where.update({key: (s, m) for key, m in placed.items()})
    questions = [
        Question(entity_id, ask.text, ask.category, tuple(where[k] for k in ask.keys), ask.answer)
        for ask in builder.asks
    ]
    return Entity(entity_id, name, tuple(built)), questions


def generate(
    seed: int = DEFAULT_SEED,
    entities: int = DEFAULT_ENTITIES,
    sessions: tuple[int, int] = DEFAULT_SESSIONS,
) -> Dataset:
    """The dataset for `seed`: the same seed gives the same dataset, byte for byte."""
    rng = random.Random(seed)
    names = rng.sample([*FEMALE, *MALE], entities)
    built: list[Entity] = []
    questions: list[Question] = []
    for index, name in enumerate(names):
        entity, asked = _entity(rng, index, name, sessions)
        built.append(entity)
        questions.extend(asked)
    return Dataset(seed, tuple(built), tuple(questions))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_data", description=__doc__)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--entities", type=int, default=DEFAULT_ENTITIES)
    parser.add_argument("--show", type=int, metavar="INDEX", help="print this entity in full")
    args = parser.parse_args(argv)
    dataset = generate(args.seed, args.entities)
    print(dataset.describe())
    if args.show is not None:
        entity = dataset.entities[args.show]
        for s, session in enumerate(entity.sessions):
            print(f"\n== session {s} {session.date:%Y-%m-%d %H:%M}")
            for m, message in enumerate(session.messages):
                print(f"[{s}.{m}] {message.role}: {message.content}")
        print()
        for question in dataset.questions:
            if question.entity_id == entity.entity_id:
                print(
                    f"{question.category:<16} {question.text}  -> {question.answer} "
                    f"{list(question.evidence)}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
