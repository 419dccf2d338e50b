"""Everyday chat for the memory_perf benchmark: varied, reproducible user/assistant messages.

Sessions about one topic (cooking, travel, code, health, money, home, work, books and films,
gardening, gadgets, fitness, family), each user message a question or a follow-up with its
slots filled (dishes, cities, names, tools...), often with a personal aside, and each reply
three to eight sentences drawn from the topic's pool. Enough variety that full-text search and
embeddings see realistic text (the words, their mix and the lengths vary), nothing tuned to
one retrieval method. `session(rng, 50)` gives 50 messages, user first, alternating.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_COMMON: dict[str, tuple[str, ...]] = {
    "person": (
        "Anna",
        "Marco",
        "Priya",
        "Tom",
        "Lucia",
        "Kenji",
        "Sofia",
        "Daniel",
        "Fatima",
        "Oskar",
        "Mei",
        "Jonas",
    ),
    "relation": ("sister", "brother", "mother", "father", "friend", "colleague", "neighbour"),
    "city": (
        "Lisbon",
        "Berlin",
        "Toronto",
        "Osaka",
        "Valencia",
        "Krakow",
        "Edinburgh",
        "Denver",
        "Porto",
        "Melbourne",
        "Montreal",
        "Ljubljana",
    ),
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "month": ("January", "March", "April", "June", "August", "September", "October", "December"),
}

_ASIDES = (
    "My {relation} {person} is staying with us until {day}.",
    "I'm back from {city} since last week.",
    "Things have been hectic at work this month.",
    "I only have about an hour tonight.",
    "{person} suggested I ask you.",
    "We're planning something for {month}.",
    "Sorry if I asked this before.",
    "I tried something similar last {day} and it went badly.",
)


@dataclass(frozen=True)
class _Topic:
    openers: tuple[str, ...]
    followups: tuple[str, ...]
    pool: tuple[str, ...]
    slots: dict[str, tuple[str, ...]]


_TOPICS = (
    _Topic(  # cooking
        openers=(
            "What can I cook tonight with {veg}, some {staple} and not much else?",
            "Can you give me a simple recipe for {dish}?",
            "Why does my {dish} always come out bland?",
            "How long can I keep cooked {staple} in the fridge?",
            "I want to bake {bake} for {person}'s birthday, where do I start?",
        ),
        followups=(
            "Could I swap the {veg} for something else?",
            "How do I stop it from sticking to the pan?",
            "Is it fine to make it the day before?",
            "What wine or drink would go with it?",
            "Can I freeze the leftovers?",
        ),
        pool=(
            "Soften an onion and some garlic first, then add the {veg} with a pinch of salt.",
            "A squeeze of lemon at the end lifts the whole dish.",
            "Toast the spices in the dry pan for a minute before the liquid goes in.",
            "Cook the {staple} separately so it keeps its texture.",
            "Taste for salt right at the end, after everything has reduced.",
            "If the pan is hot enough before the oil goes in, nothing will stick.",
            "Most stews taste better the next day once the flavours have settled.",
            "For {bake}, weigh the flour instead of using cups, it makes a real difference.",
            "Leftovers keep three days in a closed container in the fridge.",
            "A spoon of miso or anchovy paste adds depth without tasting fishy.",
            "Roasting the {veg} at high heat caramelises the edges nicely.",
        ),
        slots={
            "veg": ("aubergine", "courgette", "spinach", "cauliflower", "leeks", "peppers"),
            "staple": ("rice", "couscous", "pasta", "lentils", "potatoes", "quinoa"),
            "dish": ("lentil soup", "chicken curry", "risotto", "shakshuka", "ramen", "chili"),
            "bake": ("a lemon drizzle cake", "sourdough", "banana bread", "brownies"),
        },
    ),
    _Topic(  # travel
        openers=(
            "I'm thinking of going to {city} in {month}, is that a good time?",
            "What should I pack for four days of hiking near {city}?",
            "Is it better to take the train or fly from {city} to {other}?",
            "Can you plan a weekend in {city} for two people on a budget?",
            "My passport expires in {month}, can I still travel to {other}?",
        ),
        followups=(
            "Which neighbourhood would you stay in?",
            "Do I need to book the museums in advance?",
            "What about getting from the airport to the centre?",
            "Is it safe to walk around at night there?",
            "How much cash should I bring?",
        ),
        pool=(
            "{month} is shoulder season there, so prices are lower and the crowds thinner.",
            "The night train from {city} to {other} saves you a hotel night.",
            "Pack layers: the mornings are cold even when the afternoons are warm.",
            "Book the main museum online, the queue without a ticket can take an hour.",
            "Stay near the old town, most sights are then within walking distance.",
            "Most places take cards, but keep a little cash for markets and small cafes.",
            "Many countries want six months left on the passport, so check before booking.",
            "A day pass for public transport usually pays off after three rides.",
            "Try to leave one afternoon unplanned, that is often the best part of a trip.",
            "Trains in that region are punctual, but buy the ticket before boarding.",
        ),
        slots={
            "other": ("Madrid", "Vienna", "Copenhagen", "Prague", "Rome", "Amsterdam"),
        },
    ),
    _Topic(  # code
        openers=(
            "My {lang} script crashes with a {error} when the input file is empty, why?",
            "How do I read a large CSV file in {lang} without running out of memory?",
            "What's the difference between a list and a tuple in {lang}?",
            "Can you review this function that parses dates from our {service} logs?",
            "How should I structure tests for a small {lang} web service?",
        ),
        followups=(
            "Would a generator help here?",
            "How do I mock the database in that test?",
            "What if the file has a different encoding?",
            "Is there a library that already does this?",
            "How do I make it run faster?",
        ),
        pool=(
            "Check for the empty case before indexing, that is where the {error} comes from.",
            "Read the file in chunks and process each one, memory then stays flat.",
            "A generator yields one row at a time instead of building the whole list.",
            "Keep the parsing pure and test it without touching the {service}.",
            "Pass the encoding explicitly when opening the file, never rely on the default.",
            "Profile before optimising: the slow part is rarely where you expect it.",
            "Put the fixtures in one place so every test starts from a known state.",
            "A small integration test against a real database catches what mocks hide.",
            "Name the function after what it returns, the call sites read much better.",
            "Log the offending line number, it saves a lot of guessing later.",
        ),
        slots={
            "lang": ("Python", "TypeScript", "Go", "Rust", "Java"),
            "error": ("KeyError", "IndexError", "null pointer exception", "panic", "TypeError"),
            "service": ("billing", "checkout", "search", "notification", "payments"),
        },
    ),
    _Topic(  # health
        openers=(
            "I've had a stiff neck for a week after working at my laptop, what helps?",
            "How much sleep do I actually need if I train {sport} three times a week?",
            "Is it normal to feel tired after switching to a {diet} diet?",
            "What stretches help with lower back pain from sitting all day?",
            "My {relation} keeps getting headaches in the afternoon, any ideas?",
        ),
        followups=(
            "Should I see a doctor about it?",
            "How long until it gets better?",
            "Would a standing desk help?",
            "Is coffee making it worse?",
            "What about ibuprofen?",
        ),
        pool=(
            "Raise the screen to eye level so your head is not tilted forward for hours.",
            "Most adults need seven to nine hours, more during heavy training weeks.",
            "A new {diet} diet often lacks iron or B12 at first, which can cause tiredness.",
            "Gentle cat-cow stretches and hip flexor stretches ease a stiff lower back.",
            "Afternoon headaches are often about water, screens or skipped lunch.",
            "If the pain lasts more than two weeks or gets worse, see a doctor.",
            "Stand up and walk for a few minutes every hour, it matters more than the chair.",
            "Coffee after two in the afternoon can disturb sleep even if you fall asleep fine.",
            "Heat helps stiff muscles, ice helps fresh swelling.",
            "Keep a short diary for a week, patterns become obvious quickly.",
        ),
        slots={
            "sport": ("running", "cycling", "swimming", "climbing", "football"),
            "diet": ("vegetarian", "vegan", "low-carb", "gluten-free"),
        },
    ),
    _Topic(  # money
        openers=(
            "How much of my salary should I put into savings each month?",
            "Is it worth paying off my {loan} early or should I invest instead?",
            "Can you help me set up a budget for a move to {city}?",
            "What's a sensible emergency fund for a family of {count}?",
            "How do I split shared costs fairly with {person} when we earn differently?",
        ),
        followups=(
            "What about inflation?",
            "Would an index fund make sense for that?",
            "How do I track it without a spreadsheet?",
            "What if my income is irregular?",
            "Should the rent be split the same way?",
        ),
        pool=(
            "A common rule is fifty percent needs, thirty percent wants and twenty savings.",
            "Paying off a {loan} with a high rate is a guaranteed return, hard to beat.",
            "Three to six months of expenses is the usual emergency fund.",
            "Split shared costs in proportion to income if you earn very differently.",
            "An index fund spreads risk cheaply and suits money you will not touch for years.",
            "Automate the transfer on payday so saving never depends on willpower.",
            "Moving costs are always higher than planned, add a fifth on top of the estimate.",
            "Track only a few categories, a budget that is too detailed gets abandoned.",
            "With irregular income, budget from your lowest month, not your average one.",
            "Review the budget every quarter, not every day.",
        ),
        slots={
            "loan": ("car loan", "student loan", "mortgage", "credit card"),
            "count": ("three", "four", "five"),
        },
    ),
    _Topic(  # home
        openers=(
            "There's mould on the {room} ceiling again, how do I get rid of it for good?",
            "What colour should I paint a small {room} with little light?",
            "The {appliance} makes a loud noise when it starts, is it broken?",
            "How do I fix a dripping tap in the {room}?",
            "We're moving in {month}, how should I plan the packing?",
        ),
        followups=(
            "Do I need special paint for that?",
            "Can I do it myself or call someone?",
            "How much would a repair cost roughly?",
            "Which room should I pack first?",
            "Is it dangerous?",
        ),
        pool=(
            "Mould comes back unless the room is aired daily, especially after showers.",
            "Warm whites make a dark {room} feel bigger than cold greys do.",
            "A loud start on a {appliance} is often a worn bearing, not a dead motor.",
            "A dripping tap usually needs a new washer, a cheap part.",
            "Turn off the water under the sink before opening the tap.",
            "Pack the rooms you use least first, and label boxes by room and content.",
            "Use anti-mould paint only after cleaning the surface and letting it dry.",
            "If water touches electrics, switch off the circuit before anything else.",
            "Get two quotes for any repair above a few hundred.",
            "A dehumidifier in winter pays for itself in a damp flat.",
        ),
        slots={
            "room": ("bathroom", "kitchen", "bedroom", "hallway", "living room"),
            "appliance": ("washing machine", "dishwasher", "fridge", "dryer", "boiler"),
        },
    ),
    _Topic(  # work
        openers=(
            "How do I tell my manager {person} that the {project} deadline is unrealistic?",
            "Can you help me write the agenda for Thursday's {project} review?",
            "I have to present the {project} results to the board, any tips?",
            "How do I give feedback to a colleague who keeps missing meetings?",
            "Should I ask for a raise before or after my review in {month}?",
        ),
        followups=(
            "What if they say no?",
            "How long should the presentation be?",
            "Should I put it in writing?",
            "How do I start the conversation?",
            "What numbers should I bring?",
        ),
        pool=(
            "Come with a plan: what can ship by the deadline and what needs two more weeks.",
            "Keep the agenda to three items and put the decision needed at the top.",
            "Lead with the result, then the evidence, then what you need from the board.",
            "Give feedback early and in private, about the behaviour and not the person.",
            "Ask for a raise before the review, budgets are usually set by then.",
            "Bring numbers: what you delivered on {project} and what it was worth.",
            "Follow up in writing so everyone remembers the same agreement.",
            "Ten minutes of slides and twenty of discussion works better than the reverse.",
            "If the answer is no, ask what would have to be true for it to be yes.",
            "Open with a question rather than a complaint, it changes the tone.",
        ),
        slots={
            "project": ("migration", "onboarding", "pricing", "analytics", "mobile app"),
        },
    ),
    _Topic(  # books and films
        openers=(
            "Can you recommend a {genre} novel like the one {person} lent me?",
            "What should we watch tonight, something {mood} but not too long?",
            "I just finished a {genre} series, what's similar?",
            "Is the book better than the film for {title}?",
            "Which {genre} classics should everyone read once?",
        ),
        followups=(
            "Is it suitable for teenagers?",
            "Where can I stream it?",
            "Something shorter maybe?",
            "Any audiobook versions?",
            "What did critics think?",
        ),
        pool=(
            "If you liked the pacing of {title}, a tight {genre} novel will suit you.",
            "For a {mood} evening, a ninety-minute film beats starting a new series.",
            "The book of {title} spends more time inside the characters' heads.",
            "Critics were split, but audiences loved the ending.",
            "The audiobook is narrated well and runs about ten hours.",
            "It has some dark scenes, fine for older teenagers.",
            "Start with the shorter novels of that author before the big one.",
            "Most classics are free as ebooks since they are out of copyright.",
            "The series gets better after the slow first two episodes.",
            "A film club at home is a good excuse to watch older films.",
        ),
        slots={
            "genre": ("crime", "science fiction", "historical", "fantasy", "literary"),
            "mood": ("funny", "light", "gripping", "calm", "uplifting"),
            "title": ("Dune", "The Name of the Rose", "Rebecca", "Solaris", "Emma"),
        },
    ),
    _Topic(  # gardening
        openers=(
            "My {plant} leaves are turning yellow, what am I doing wrong?",
            "When should I plant {plant} on a north-facing balcony?",
            "How often do I water {plant} in the summer heat?",
            "Slugs ate all my {plant} seedlings, how do I protect the next ones?",
            "Can I grow {plant} indoors over the winter?",
        ),
        followups=(
            "What soil should I use?",
            "Does it need fertiliser?",
            "How big a pot?",
            "Will it survive the frost?",
            "Can I take cuttings?",
        ),
        pool=(
            "Yellow leaves usually mean too much water, let the soil dry between waterings.",
            "{plant} likes light but not the full afternoon sun on a hot balcony.",
            "Water deeply twice a week rather than a little every day.",
            "A copper strip around the pot keeps slugs away from the {plant}.",
            "Use a free-draining compost with some grit mixed in.",
            "Feed once a month in the growing season and not at all in winter.",
            "Bring the pot inside before the first frost, usually in {month}.",
            "Cuttings root easily in a glass of water on a bright windowsill.",
            "A bigger pot holds water longer, which helps on hot days.",
            "Turn indoor pots weekly so the plant does not lean toward the window.",
        ),
        slots={
            "plant": ("basil", "tomato", "lavender", "chilli", "rosemary", "fig tree"),
        },
    ),
    _Topic(  # gadgets
        openers=(
            "My {device} battery drains in half a day, what can I do?",
            "Which {device} should I buy for under four hundred?",
            "How do I move all my photos from the old {device} to the new one?",
            "The {device} won't connect to the wifi since the update, help?",
            "Is it worth repairing a cracked {device} screen?",
        ),
        followups=(
            "What about the warranty?",
            "Do I lose anything if I reset it?",
            "Is the cheaper model good enough?",
            "How long do they usually last?",
            "Can I recycle the old one?",
        ),
        pool=(
            "Check which app uses the battery in the settings, it is usually one culprit.",
            "Forget the network and join it again, updates often break the saved settings.",
            "Back up to the cloud or a laptop first, then restore on the new {device}.",
            "A screen repair costs about a third of a new {device}, usually worth it.",
            "The cheaper model has the same chip, you mostly lose the camera.",
            "Most makers take old devices back and recycle them for free.",
            "A reset keeps nothing that is not backed up, so check the backup first.",
            "Battery health below eighty percent is the point where a swap makes sense.",
            "Turn off background refresh for apps you rarely open.",
            "The warranty rarely covers drops, but some cards include device insurance.",
        ),
        slots={
            "device": ("phone", "laptop", "tablet", "smartwatch", "e-reader"),
        },
    ),
    _Topic(  # fitness
        openers=(
            "Can you make me a plan to run a {race} in {month}?",
            "How do I start strength training at home without equipment?",
            "My knees hurt after {sport}, should I stop?",
            "What should I eat before a morning {sport} session?",
            "How do I stay motivated to exercise in winter?",
        ),
        followups=(
            "How many rest days?",
            "What if I miss a week?",
            "Should I stretch before or after?",
            "Do I need special shoes?",
            "How do I track progress?",
        ),
        pool=(
            "Build up the long run by about ten percent a week toward the {race}.",
            "Squats, push-ups and lunges at home cover most of what a gym would.",
            "Knee pain after {sport} is often about load, cut the volume for a week.",
            "A banana and some water an hour before {sport} is plenty for a morning session.",
            "Take at least one full rest day a week, two when starting out.",
            "Missing a week costs little, just restart a step lower.",
            "Stretch after the session, when the muscles are warm.",
            "Proper running shoes matter more than any other piece of kit.",
            "Write down each session, seeing progress is the best motivation.",
            "In winter, train with a friend, it is much harder to skip.",
        ),
        slots={
            "race": ("5k", "10k", "half marathon", "marathon"),
            "sport": ("running", "cycling", "padel", "tennis", "yoga"),
        },
    ),
    _Topic(  # family
        openers=(
            "What could I get {person} for their {age}th birthday?",
            "My {relation} is visiting for a week, what can we do with kids around?",
            "How do I help my son with his {subject} homework without doing it for him?",
            "We're planning a family dinner for {count} people, any ideas?",
            "How should we split the holidays between both families this {month}?",
        ),
        followups=(
            "Something cheaper maybe?",
            "What if it rains?",
            "How much time should that take?",
            "Anything vegetarian?",
            "How do I bring it up with them?",
        ),
        pool=(
            "An experience often lands better than an object at a {age}th birthday.",
            "With kids around, plan one outing a day and keep the rest loose.",
            "Ask him to explain the {subject} problem to you, that shows where he is stuck.",
            "For {count} people, a big tray bake and a salad keeps the cook at the table.",
            "Alternate the holidays year by year, it is the fairest rule most families find.",
            "A rainy day is a good excuse for a museum or a board game afternoon.",
            "Twenty minutes of homework help a day is more than enough at that age.",
            "Bring it up early and offer a proposal, not an open question.",
            "A vegetarian main that everyone eats is easier than two separate dishes.",
            "Let the kids choose one activity each, they complain less.",
        ),
        slots={
            "age": ("30", "40", "50", "60", "70"),
            "subject": ("maths", "history", "chemistry", "French", "geography"),
            "count": ("eight", "ten", "twelve"),
        },
    ),
)


def _fill(rng: random.Random, template: str, slots: dict[str, tuple[str, ...]]) -> str:
    text = template
    while "{" in text:
        start = text.index("{")
        end = text.index("}", start)
        name = text[start + 1 : end]
        choices = slots.get(name) or _COMMON[name]
        text = text[:start] + rng.choice(choices) + text[end + 1 :]
    return text


def _slots(rng: random.Random, topic: _Topic) -> dict[str, tuple[str, ...]]:
    """A session's slots: each name fixed to one or two values, so a session keeps its
    subject (one dish, one city) the way a conversation does."""
    fixed = {**_COMMON, **topic.slots}
    return {name: tuple(rng.sample(values, min(2, len(values)))) for name, values in fixed.items()}


def user_message(rng: random.Random, opener: bool = True) -> str:
    """One user message of a random topic (a question a later session might ask)."""
    topic = rng.choice(_TOPICS)
    slots = _slots(rng, topic)
    return _fill(rng, rng.choice(topic.openers if opener else topic.followups), slots)


def session(rng: random.Random, messages: int) -> list[tuple[str, str]]:
    """`messages` (role, text) pairs, user first, alternating, about one topic (sometimes
    drifting to a second one halfway)."""
    topics = [rng.choice(_TOPICS)]
    if rng.random() < 0.3:
        topics.append(rng.choice(_TOPICS))
    fixed = [_slots(rng, topic) for topic in topics]
    out: list[tuple[str, str]] = []
    for index in range(messages):
        which = min(len(topics) - 1, index * len(topics) // messages)
        topic, slots = topics[which], fixed[which]
        if index % 2 == 0:
            first = index == 0 or rng.random() < 0.25
            text = _fill(rng, rng.choice(topic.openers if first else topic.followups), slots)
            if rng.random() < 0.3:
                text = f"{_fill(rng, rng.choice(_ASIDES), slots)} {text}"
            out.append(("user", text))
        else:
            count = rng.randint(3, 8)
            out.append(
                ("assistant", " ".join(_fill(rng, s, slots) for s in _sample(rng, topic, count)))
            )
    return out


def _sample(rng: random.Random, topic: _Topic, count: int) -> list[str]:
    return rng.sample(topic.pool, min(count, len(topic.pool)))
