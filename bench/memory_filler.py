"""The everyday chat around the planted facts of the memory_quality dataset (bench/memory_data.py).

Topics a person brings to an assistant (cooking, travel, code, health, work, money, home,
books and films, writing, gadgets, science, habits, and everyday life with the people around
them). A thread is an opening question and zero to two follow-ups: the opener's own
(`then`), else the topic's general ones. A reply is the answer to its question followed by
sentences from the topic's pool, not yet used in the session, until it reaches the length
drawn for it (30 to 120 words). Slots (`{dish}`) are filled from the topic's lists.

None of it answers a question of the dataset: it is what retrieval has to see past, and the
everyday-life topic (the neighbours' dog, a cousin's wedding, a colleague moving abroad, a
friend from a first job) sits close to the facts asked about.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Exchange:
    """A user message (one of `users`, slots filled), the start of its reply, and the
    follow-ups that fit only after it."""

    users: tuple[str, ...]
    reply: str
    then: tuple[Exchange, ...] = ()


@dataclass(frozen=True)
class Topic:
    name: str
    openers: tuple[Exchange, ...]
    followups: tuple[Exchange, ...]  # fit after any opener of the topic
    pool: tuple[str, ...]
    slots: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _x(users: str | tuple[str, ...], reply: str, *then: Exchange) -> Exchange:
    return Exchange(users if isinstance(users, tuple) else (users,), reply, then)


COOKING = Topic(
    "cooking",
    openers=(
        _x(
            (
                "What can I make for dinner tonight with {veg}, some {staple} and a tin of "
                "chickpeas?",
                "I've got {veg}, {staple} and not much else. Any dinner ideas that take under "
                "half an hour?",
            ),
            "A quick one-pan dish works well here: soften an onion and some garlic, add the "
            "{veg} and the chickpeas with a spoonful of cumin and paprika, simmer for ten "
            "minutes with a splash of water, then serve it over the {staple}.",
            _x(
                "Could I swap the {veg} for something else?",
                "Definitely. Anything that holds its shape works, such as squash, peppers or "
                "green beans; just adjust the cooking time so it doesn't turn to mush.",
            ),
        ),
        _x(
            "Can you give me a simple recipe for {dish}? Nothing too fancy.",
            "Here's a straightforward approach to {dish}: prepare everything before you turn "
            "on the heat, cook the onion and garlic gently first, then build the flavour in "
            "layers and taste for salt right at the end.",
            _x(
                "Can I make it the day before?",
                "Yes, it often tastes better the next day once the flavours have settled. "
                "Reheat it gently and loosen it with a splash of water if it has thickened.",
            ),
        ),
        _x(
            "Why does my {dish} always come out a bit bland?",
            "Blandness is usually a seasoning and acidity problem. Salt early and in stages, "
            "brown things properly instead of stewing them, and finish with something sharp "
            "like lemon juice or a splash of vinegar.",
        ),
        _x(
            "Is it safe to freeze cooked {staple}?",
            "Yes, as long as you cool it quickly, ideally within an hour, and freeze it in "
            "flat portions. Reheat it until it's steaming hot all the way through and only "
            "reheat it once.",
            _x(
                "How long can it stay in the freezer?",
                "For the best texture, use it within a month or two. It stays safe longer, "
                "but it slowly dries out and picks up freezer smells.",
            ),
        ),
        _x(
            "How do I make a proper tomato sauce from scratch?",
            "Start with good tinned tomatoes, cook garlic gently in plenty of olive oil, add "
            "the tomatoes with a pinch of salt and let it simmer for at least twenty minutes "
            "until it thickens. A knob of butter at the end rounds it off.",
            _x(
                "Fresh tomatoes or tinned?",
                "Outside high summer, tinned are usually better: they're picked ripe and "
                "their flavour is consistent. Fresh ones shine in quick, raw sauces.",
            ),
        ),
        _x(
            "What's a good make-ahead lunch for the week?",
            "Grain bowls are hard to beat: cook a big batch of {staple}, roast a tray of "
            "{veg}, make one punchy dressing, and keep everything in separate boxes so it "
            "doesn't go soggy.",
        ),
        _x(
            "My bread never rises properly. What am I doing wrong?",
            "The usual culprits are old yeast, water that's too hot, or not enough time. "
            "Check the yeast foams in warm water first, and let the dough rise somewhere "
            "draught-free until it has genuinely doubled, however long that takes.",
            _x(
                "How do I know when it's kneaded enough?",
                "Do the windowpane test: stretch a small piece thin. If it goes translucent "
                "without tearing, the gluten is developed enough.",
            ),
        ),
        _x(
            "How do I cook rice so it isn't sticky?",
            "Rinse it until the water runs clear, use about one and a half times as much water "
            "as rice for long-grain, bring it to the boil, cover and simmer on the lowest heat "
            "for twelve minutes, then leave it covered off the heat for five.",
        ),
        _x(
            "What's a quick dessert I can make with whatever's in the cupboard?",
            "A mug cake or a fruit crumble are the classic cupboard rescues: flour, butter and "
            "sugar rubbed together make a crumble topping for any fruit, even tinned or "
            "frozen, and it bakes in about thirty minutes.",
        ),
    ),
    followups=(
        _x(
            "How long will it keep in the fridge?",
            "Three to four days in an airtight container is a safe rule. If you won't get "
            "through it by then, freeze half straight away rather than waiting.",
        ),
        _x(
            "What would you serve with it?",
            "Something fresh and crunchy balances it nicely: a simple green salad with a sharp "
            "dressing, some pickled onions, or warm flatbread for scooping.",
        ),
        _x(
            "Would it work in a slow cooker?",
            "It would. Brown anything that needs browning first, then give it six to eight "
            "hours on low, and add delicate herbs only at the end.",
        ),
    ),
    pool=(
        "Taste as you go rather than relying on the recipe's quantities.",
        "A squeeze of lemon right before serving lifts almost any savoury dish.",
        "If you're cooking for more people, scale the liquid up a little less than the rest.",
        "Toasting spices in a dry pan for a minute makes a noticeable difference.",
        "Fresh herbs go in at the end; dried ones need time to cook.",
        "Don't crowd the pan, or everything steams instead of browning.",
        "Leftovers make a good filling for wraps or a topping for baked potatoes.",
        "Keep a jar of something punchy, such as chilli crisp or capers, for quick fixes.",
        "Resting food for a few minutes after cooking makes it easier to serve.",
        "A good sharp knife makes prep faster and safer than any gadget.",
        "Frozen vegetables are perfectly fine here and save a lot of chopping.",
    ),
    slots={
        "veg": ("courgettes", "spinach", "sweet potatoes", "cauliflower", "aubergine", "kale"),
        "staple": ("rice", "couscous", "pasta", "quinoa", "potatoes", "noodles"),
        "dish": ("dal", "risotto", "shakshuka", "stir-fry", "minestrone", "chilli"),
    },
)

PLACES = (
    "Lisbon", "Copenhagen", "Budapest", "Prague", "Vienna", "Seville", "Tallinn", "Ljubljana",
    "Bruges", "Naples", "Quebec City", "Savannah",
)  # fmt: skip
TRAVEL = Topic(
    "travel",
    openers=(
        _x(
            "What's the easiest way to get from the airport into the centre of {place}?",
            "In most cities the train or express bus is cheaper and more predictable than a "
            "taxi. For {place}, check the airport's own website for the current route and buy "
            "a ticket before you reach the platform.",
        ),
        _x(
            "Any tips for surviving a long-haul flight in economy?",
            "Pick an aisle seat if you like to move around, drink water rather than alcohol, "
            "walk the aisle every couple of hours and pack compression socks, a refillable "
            "bottle and a decent neck pillow.",
            _x(
                "Are compression socks really worth it?",
                "On flights over four hours, yes for most people: they reduce ankle swelling "
                "and the risk of clots, and cost very little.",
            ),
        ),
        _x(
            "Is travel insurance worth it for a short trip?",
            "Usually yes. It is cheap for short trips, and it covers cancellations, lost "
            "luggage and medical costs that you would otherwise pay yourself. Read what it "
            "excludes before you buy.",
        ),
        _x(
            "Someone at work keeps raving about {place}. Is it worth a long weekend?",
            "{place} makes a good long weekend if you like walking and food. Stay central so "
            "you are not wasting time on transport, and book anything popular a few weeks "
            "ahead.",
            _x(
                "What's the best time of year to go?",
                "Spring and early autumn are usually the sweet spot: mild weather, fewer "
                "crowds and lower prices than the summer peak.",
            ),
        ),
        _x(
            "How do I pack for a week with only hand luggage?",
            "Choose one colour scheme so everything goes together, wear the bulkiest shoes on "
            "the plane, roll your clothes, and plan to do one small wash halfway through.",
        ),
        _x(
            "What's the best way to deal with jet lag going east?",
            "Shift your bedtime an hour earlier for a few days before you fly, get outside in "
            "the morning light when you land, and avoid long naps on the first day.",
        ),
        _x(
            "Is it cheaper to book flights on a Tuesday? People keep saying that.",
            "It's mostly a myth now. Prices depend on demand and how far ahead you book, so "
            "set a price alert for your route and book when it dips, usually one to three "
            "months ahead for short-haul.",
        ),
    ),
    followups=(
        _x(
            "Should I change money before I go or just use my card?",
            "A card without foreign transaction fees is usually the cheapest option. Take a "
            "little cash for small places and always pay in the local currency when asked.",
        ),
        _x(
            "What should I definitely not forget?",
            "Passport, chargers, any medication in its original packaging, a copy of your "
            "insurance details and a plug adapter are the things people most often regret "
            "leaving behind.",
        ),
        _x(
            "How early should I get to the airport?",
            "Two hours for short-haul and three for long-haul is the usual advice, a bit more "
            "at busy times of year or if you are checking a bag.",
        ),
    ),
    pool=(
        "Booking accommodation with free cancellation gives you flexibility.",
        "Saving offline maps on your phone is useful if the signal drops.",
        "Museums are often free or cheaper on particular days of the week.",
        "Local markets are a good way to eat well without spending much.",
        "Keep digital copies of important documents somewhere you can reach them.",
        "Public transport passes for a few days usually pay for themselves quickly.",
        "Learning a handful of polite phrases in the local language goes a long way.",
        "Travelling just outside the school holidays can halve the prices.",
        "A small first-aid kit with plasters and painkillers takes up almost no room.",
        "It is worth checking the entry requirements again a week before you leave.",
    ),
    slots={"place": PLACES},
)

CODING = Topic(
    "code",
    openers=(
        _x(
            "Why does my Python script say 'IndexError: list index out of range'?",
            "It means you asked for a position the list doesn't have, often an off-by-one in "
            "a loop or an empty list. Print the length and the index just before the failing "
            "line, or loop over the items directly instead of over indexes.",
            _x(
                "It still fails, and the list isn't empty.",
                "Then the index is probably computed one too high, for example using the "
                "length itself as an index. Remember that the last valid index is the length "
                "minus one.",
            ),
        ),
        _x(
            "How do I undo my last git commit but keep the changes?",
            "Run `git reset --soft HEAD~1`: the commit disappears and its changes stay "
            "staged. If you have already pushed it, prefer `git revert` so you don't rewrite "
            "history that others depend on.",
        ),
        _x(
            "What's the difference between a list and a tuple in Python?",
            "A list is mutable, so you can add, remove and change items; a tuple is immutable "
            "once created. Tuples suit fixed records and can be dictionary keys, lists suit "
            "collections that grow.",
        ),
        _x(
            "My SQL query with a LEFT JOIN returns duplicate rows. Why?",
            "The joined table has more than one matching row for some keys, so each left row "
            "is repeated once per match. Check the join condition, or aggregate the right-hand "
            "table before joining.",
            _x(
                "Would DISTINCT fix it?",
                "It hides the symptom, but it can also merge rows you wanted to keep and it "
                "costs time on big tables. Fixing the join or aggregating first is cleaner.",
            ),
        ),
        _x(
            "Can you explain what a REST API is in simple terms?",
            "It's a way for programs to talk over HTTP: each thing is a URL, and you use "
            "standard verbs such as GET to read, POST to create and DELETE to remove, usually "
            "exchanging JSON.",
        ),
        _x(
            "How do I read a CSV file in JavaScript?",
            "In Node.js, read the file with `fs.readFile` and split it into lines, or better, "
            "use a parsing library such as csv-parse, which handles quoted commas and line "
            "breaks inside fields.",
        ),
        _x(
            "What's a good way to learn regular expressions?",
            "Learn a handful of pieces first: character classes, quantifiers, anchors and "
            "groups. Then practise on an interactive tester with your own real text, which "
            "makes the rules stick far better than reading.",
        ),
        _x(
            "What does 'async' actually mean in JavaScript?",
            "An async function returns a promise, and inside it `await` pauses that function "
            "until a promise settles without blocking everything else. It lets one thread "
            "juggle many waits, such as network calls.",
        ),
    ),
    followups=(
        _x(
            "Could you show me a small example?",
            "Sure. Start from the smallest input that shows the problem, run it, and change "
            "one thing at a time; a minimal example keeps only the essential lines.",
        ),
        _x(
            "Is there a way to write a test for that?",
            "Yes: write a test that reproduces the problem first, watch it fail, then fix the "
            "code and keep the test so the bug cannot come back unnoticed.",
        ),
    ),
    pool=(
        "Reading the full traceback from the bottom up usually points at the real cause.",
        "Small functions with clear names are easier to test and to reason about.",
        "A debugger lets you pause and inspect values instead of sprinkling print calls.",
        "Version control makes experiments cheap, so commit before trying something risky.",
        "Type hints catch a surprising number of mistakes before the code even runs.",
        "When in doubt, check the official documentation rather than old forum answers.",
        "Naming variables after what they mean saves time when you come back later.",
        "It helps to explain the problem out loud; the answer often appears halfway through.",
        "Automated formatting tools end most arguments about style.",
        "Keep secrets such as passwords out of the code and out of the repository.",
    ),
)

HEALTH = Topic(
    "health",
    openers=(
        _x(
            "How much water should I actually be drinking a day?",
            "There is no magic number: most adults do fine drinking to thirst, which usually "
            "ends up around one and a half to two litres, more in hot weather or when you "
            "exercise.",
        ),
        _x(
            "What's a good stretching routine after a workout?",
            "Five to ten minutes covering the big muscle groups works well: hamstrings, "
            "quads, hips, calves and chest, holding each stretch for about thirty seconds "
            "without bouncing.",
        ),
        _x(
            "I've been sleeping badly for a couple of weeks. Any tips?",
            "Keep the same wake-up time every day, including weekends, get daylight in the "
            "morning, cut caffeine after lunch and keep the bedroom cool and dark. If it "
            "continues for more than a month, mention it to a doctor.",
            _x(
                "Does reading on my phone in bed make it worse?",
                "It can: the content keeps your brain busy more than the light does. A paper "
                "book or an audiobook with the screen off is a better wind-down.",
            ),
        ),
        _x(
            "Is it OK to exercise with a cold?",
            "The usual rule is the neck check: if the symptoms are above the neck, such as a "
            "runny nose, light exercise is generally fine. With a fever, aches or a chesty "
            "cough, rest until you are better.",
        ),
        _x(
            "How can I sit less during the working day?",
            "Set a timer to stand every half hour, take calls on your feet, walk to a "
            "colleague instead of messaging, and use part of your lunch break for a short "
            "walk.",
        ),
        _x(
            "What's a realistic way to start meditating?",
            "Start with three to five minutes a day at the same time, focusing on your breath "
            "and gently returning to it when your mind wanders. A guided app helps at first.",
            _x(
                "My mind wanders constantly. Am I doing it wrong?",
                "No, noticing the wandering and coming back is the exercise itself. Every "
                "time you notice, that's a repetition, like lifting a weight.",
            ),
        ),
        _x(
            "Are standing stretches enough for a stiff lower back?",
            "They help, but combine them with movement through the day and some strength "
            "work for the hips and core, such as bridges and bird-dogs. If the stiffness "
            "comes with pain down a leg, get it checked.",
        ),
    ),
    followups=(
        _x(
            "How long before I notice a difference?",
            "Most people notice something within two to three weeks of doing it "
            "consistently; the key is doing a little most days rather than a lot once a "
            "week.",
        ),
        _x(
            "When should I see a doctor about it?",
            "If it gets worse, doesn't improve after a couple of weeks, or comes with other "
            "symptoms such as fever or weight loss, it is worth getting checked.",
        ),
    ),
    pool=(
        "Consistency matters much more than intensity when building a habit.",
        "Everyone is different, so treat general advice as a starting point.",
        "Keeping a short diary for a week can show patterns you would otherwise miss.",
        "Sleep, movement and food all affect each other, so small changes add up.",
        "If anything feels wrong, a pharmacist is a quick first person to ask.",
        "Warming up for a few minutes makes most exercise feel easier.",
        "Rest days are part of training, not a break from it.",
        "These are common, sensible starting points rather than medical advice.",
    ),
)

WORK = Topic(
    "work",
    openers=(
        _x(
            "Can you help me write a polite email declining a meeting?",
            "Of course. Something like: 'Thanks for the invite. I won't be able to join this "
            "one, but I'm happy to read the notes afterwards or share my input by email "
            "beforehand if that helps.'",
            _x(
                "Could you make it sound a bit less formal?",
                "Sure: 'Thanks for thinking of me! I can't make this one, but send the notes "
                "my way and I'll add my thoughts.' Same message, friendlier tone.",
            ),
        ),
        _x(
            "How do I give feedback to a colleague who keeps interrupting in meetings?",
            "Raise it privately and soon after an example, describe the specific behaviour "
            "and its effect, and ask for their view. Keep it about the meetings, not their "
            "personality.",
            _x(
                "What if they get defensive?",
                "Stay calm, acknowledge how they feel, and repeat the specific example. You "
                "don't need to resolve it in one conversation; agreeing to try something is "
                "enough.",
            ),
        ),
        _x(
            "Any tips for presenting to senior leadership?",
            "Lead with the conclusion and what you need from them, keep the detail in an "
            "appendix, expect to be interrupted, and rehearse the first two minutes until "
            "they are automatic.",
        ),
        _x(
            "How do I say no to extra work without sounding lazy?",
            "Frame it around priorities: explain what you are working on, ask which item "
            "should move if the new one comes in, and offer an alternative such as a later "
            "date.",
        ),
        _x(
            "What makes a good one-page CV?",
            "A clear headline, four to six achievements with numbers rather than duties, "
            "recent roles in more detail than old ones, and plenty of white space. Tailor the "
            "top third to each application.",
        ),
        _x(
            "How do I run a meeting that doesn't overrun?",
            "Send an agenda with a time for each item, start on time, name someone to keep "
            "time, park side topics in a list, and finish with decisions and owners.",
        ),
        _x(
            "How do I ask for a pay rise without it being awkward?",
            "Book a dedicated conversation rather than raising it in passing, bring evidence "
            "of what you've delivered and what similar roles pay, name a specific figure, and "
            "then stop talking and let them respond.",
        ),
    ),
    followups=(
        _x(
            "Is it OK to send it on a Friday afternoon?",
            "It's fine, though messages sent late on Friday are easily missed. If it needs a "
            "response, Monday morning is often better.",
        ),
        _x(
            "Should I do that by email or face to face?",
            "For anything sensitive, talk first and follow up in writing. Email is fine for "
            "simple, factual things that don't need discussion.",
        ),
    ),
    pool=(
        "Writing down what you agreed avoids misunderstandings later.",
        "Most people appreciate directness when it is paired with respect.",
        "Preparing two or three key points beforehand keeps you focused.",
        "It is worth checking how the message reads on a phone screen.",
        "Asking questions is often more persuasive than making statements.",
        "Short messages get read; long ones get skimmed.",
        "If a conversation gets heated, it is fine to suggest continuing it later.",
        "Thanking people specifically for what they did builds goodwill quickly.",
    ),
)

MONEY = Topic(
    "money",
    openers=(
        _x(
            "How does compound interest actually work?",
            "You earn interest not only on what you put in but also on the interest already "
            "earned, so growth speeds up over time. That is why starting early matters more "
            "than the amount.",
        ),
        _x(
            "Should I pay off my credit card or build up savings first?",
            "Usually clear high-interest debt first, because the card's interest is far "
            "higher than any savings rate, while keeping a small emergency buffer so you "
            "don't end up borrowing again.",
        ),
        _x(
            "How do I set up a simple monthly budget?",
            "List your income, then fixed costs, then set amounts for the variable "
            "categories. Pay savings first on payday, and review it after a month against "
            "what you actually spent.",
            _x(
                "Is it worth using a budgeting app?",
                "It can be, especially one that categorises spending automatically. The app "
                "matters less than looking at it regularly.",
            ),
        ),
        _x(
            "What is an index fund?",
            "It is a fund that simply tracks a market index, buying all the companies in it. "
            "Fees are low and you get broad diversification, which is why they are popular "
            "for long-term investing.",
        ),
        _x(
            "How big should an emergency fund be?",
            "Three to six months of essential spending is the common guideline: rent, bills, "
            "food and transport, not your full lifestyle.",
            _x(
                "Where should I keep that money?",
                "Somewhere safe and easy to reach, such as an instant-access savings account, "
                "separate from your everyday account so it isn't spent by accident.",
            ),
        ),
        _x(
            "Is it better to split bills with flatmates evenly or by room size?",
            "Either can be fair if everyone agrees up front. Splitting rent by room size and "
            "sharing bills evenly is a common compromise, and a shared spreadsheet or app "
            "avoids arguments about who paid what.",
        ),
    ),
    followups=(
        _x(
            "What's the catch?",
            "Mainly fees and discipline: check the charges carefully, and remember that any "
            "plan only works if you stick to it for months, not weeks.",
        ),
    ),
    pool=(
        "Automating transfers on payday removes the temptation to skip a month.",
        "Fees that look small compound too, so they are worth comparing.",
        "This is general information rather than personal financial advice.",
        "Reviewing subscriptions once a year usually finds something to cancel.",
        "Writing down a goal and a date makes saving feel more concrete.",
        "It's normal for the first budget to be wrong; adjust it rather than give up.",
        "Talking about money early avoids most arguments about it later.",
    ),
)

HOME = Topic(
    "home",
    openers=(
        _x(
            "How do I get rid of black mould on the bathroom ceiling?",
            "Wipe it with a mould spray or diluted bleach while wearing gloves and opening a "
            "window, then tackle the cause: run the extractor fan during and after showers "
            "and leave the door open to dry the room.",
            _x(
                "Would a landlord usually pay for that?",
                "Repairs to the structure and a broken extractor are normally the landlord's "
                "job; report it in writing with photos and keep a copy.",
            ),
        ),
        _x(
            "My {plant} keeps dying. What am I doing wrong?",
            "The most common cause is overwatering. Let the top few centimetres of soil dry "
            "out between waterings, make sure the pot drains, and give the {plant} as much "
            "light as the label says.",
            _x(
                "How often should I feed it?",
                "Every two to four weeks in spring and summer with a diluted liquid feed, and "
                "hardly at all in winter when it's barely growing.",
            ),
        ),
        _x(
            "How do I fix a dripping tap?",
            "Turn off the water supply, take the tap handle apart and replace the washer or "
            "the cartridge, depending on the type. Take the old part to the shop so you buy "
            "the right size.",
            _x(
                "Do I need special tools for that?",
                "Usually just basics: a screwdriver set, an adjustable spanner and some old "
                "towels. It is worth buying decent ones once.",
            ),
        ),
        _x(
            "What's the best way to keep the house cool in a heatwave?",
            "Close curtains and windows on the sunny side during the day, open everything up "
            "at night for a through draught, and avoid using the oven in the afternoon.",
        ),
        _x(
            "When should I plant tomatoes outside?",
            "After the last frost, when night temperatures stay above about ten degrees. "
            "Harden the seedlings off first by putting them outside for a few hours a day "
            "for a week.",
        ),
        _x(
            "How can I make a small living room feel bigger?",
            "Use light colours, a large mirror opposite the window, furniture on legs so you "
            "can see the floor, and fewer, larger pieces rather than lots of small ones.",
        ),
        _x(
            "What's the quickest way to clean an oven?",
            "Make a paste of bicarbonate of soda and water, spread it over the inside, leave it "
            "overnight, then wipe it off with a damp cloth and a spray of vinegar. Soak the "
            "racks in the bath with hot water and dishwasher tablets.",
        ),
    ),
    followups=(
        _x(
            "How often should I do it?",
            "A quick check once a month keeps it from becoming a big job, with a proper go "
            "at it every season.",
        ),
    ),
    pool=(
        "Doing a little regularly beats a big clear-out once a year.",
        "Photos before and after are useful if you need to show someone the problem.",
        "If you're unsure, a local handyman can often do it in under an hour.",
        "Good ventilation solves more household problems than any product.",
        "Cheap fixes are worth trying before calling someone out.",
        "Keeping receipts and manuals in one folder saves a lot of searching later.",
    ),
    slots={"plant": ("basil", "fiddle-leaf fig", "peace lily", "rosemary", "orchid")},
)

MEDIA = Topic(
    "media",
    openers=(
        _x(
            "Can you recommend a podcast about {subject}?",
            "There are good options depending on how deep you want to go. Narrative series "
            "are the easiest way in; interview shows are better once you know the basics of "
            "{subject}. Try the first episode of two or three and keep the one you finish.",
        ),
        _x(
            "What's a good film for a rainy Sunday afternoon?",
            "Something warm and easy works best: a classic comedy, a gentle animated film, "
            "or a long epic if you want to make a day of it with snacks.",
            _x(
                "Anything similar but shorter?",
                "A miniseries or a ninety-minute film in the same spirit would do it; shorter "
                "formats often keep the pace tighter too.",
            ),
        ),
        _x(
            "Can you explain the ending of Inception?",
            "The spinning top at the end is deliberately ambiguous. The film cares more that "
            "Cobb no longer checks it: he has chosen to be with his children, whatever is "
            "real.",
        ),
        _x(
            "Is it worth reading the book before watching the series?",
            "It depends on the adaptation, but reading first usually gives you the fuller "
            "story, and the series becomes a fun comparison rather than a spoiler.",
        ),
        _x(
            "What board games are good for four adults?",
            "Codenames and Wavelength are great for chatty groups, Ticket to Ride is easy to "
            "teach, and Azul is quick and pretty if people like something calmer.",
            _x(
                "Which one is easiest for people who don't usually play?",
                "Codenames: the rules take two minutes, teams help each other, and nobody "
                "is knocked out early.",
            ),
        ),
    ),
    followups=(
        _x(
            "Is it suitable for teenagers?",
            "Check the age rating and a parents' guide site; they list exactly what is in it "
            "so you can decide for yourself.",
        ),
    ),
    pool=(
        "Reviews from people with similar taste are more useful than average scores.",
        "Library apps often have audiobooks and films for free.",
        "It's fine to give up on something you're not enjoying.",
        "Watching with subtitles on helps with fast dialogue.",
        "Shorter seasons tend to be tighter and easier to finish.",
        "Word of mouth from friends is still the best recommendation engine.",
    ),
    slots={"subject": ("history", "space", "economics", "true crime", "design", "language")},
)

WRITING = Topic(
    "writing",
    openers=(
        _x(
            "What's the difference between 'affect' and 'effect'?",
            "Usually 'affect' is the verb and 'effect' is the noun: the weather affects my "
            "mood; the weather has an effect on my mood. 'Effect' as a verb means to bring "
            "about, as in to effect change.",
        ),
        _x(
            "Can you make this sound more professional: 'sorry for the late reply, been swamped'?",
            "Try: 'Thank you for your patience, and apologies for the delay in getting back "
            "to you.' It is polite without over-apologising, and it moves straight on to the "
            "point of your message.",
            _x(
                "Does that sound too stiff?",
                "Slightly. Swapping a couple of formal words for everyday ones and using "
                "contractions makes it sound more natural.",
            ),
        ),
        _x(
            "How do I say 'thank you for your patience' in {language}?",
            "I'd rather not guess the exact phrasing in {language}; a native speaker or a "
            "good dictionary will confirm it, and the polite forms matter in formal "
            "messages.",
        ),
        _x(
            "When do I use a semicolon?",
            "Use it to join two complete sentences that are closely related, or to separate "
            "items in a list when the items already contain commas.",
        ),
        _x(
            "Can you help me write a birthday message for a colleague I don't know well?",
            "Keep it warm and short: 'Happy birthday! I hope you have a lovely day and get a "
            "proper break from the inbox.' A personal touch is nice but not needed.",
        ),
    ),
    followups=(
        _x(
            "Can you make it shorter?",
            "Here's a tighter version that keeps the meaning and cuts the filler words; "
            "shorter usually reads as more confident.",
        ),
    ),
    pool=(
        "Reading the sentence aloud is the quickest way to catch awkward phrasing.",
        "Shorter sentences are almost always clearer.",
        "Cut adverbs first when you need to save words.",
        "Active voice usually reads more directly than passive voice.",
        "A good test is whether a busy reader would get the point in one pass.",
        "When in doubt, say it the way you would say it out loud.",
    ),
    slots={"language": ("Portuguese", "German", "Japanese", "Polish", "Dutch", "Korean")},
)

GADGETS = Topic(
    "gadgets",
    openers=(
        _x(
            "My laptop fan is really loud all the time. Should I worry?",
            "Check which program is using the processor first; a runaway browser tab is a "
            "common cause. If the fan stays loud when idle, the vents may need cleaning with "
            "compressed air.",
        ),
        _x(
            "How do I back up the photos on my phone?",
            "Turn on the phone's cloud photo backup, and once in a while copy everything to "
            "a computer or an external drive too, so you always have two copies in different "
            "places.",
        ),
        _x(
            "Our Wi-Fi keeps dropping in the evenings. Any ideas?",
            "Restart the router, move it off the floor and away from the microwave, and try "
            "switching the channel. If it only happens at busy times it may be the provider.",
            _x(
                "What if that doesn't fix it?",
                "Then a mesh system or a powerline adapter can help with coverage, and it is "
                "worth asking the provider to check the line.",
            ),
        ),
        _x(
            "Is a password manager really safe?",
            "A reputable one is much safer than reusing passwords. Protect it with a long "
            "passphrase and two-factor authentication, and store the recovery code offline.",
        ),
        _x(
            "How do I stop my phone battery draining so fast?",
            "Look at the battery settings to see which apps use the most, turn off "
            "background refresh for those, lower screen brightness, and remove widgets you "
            "don't use.",
        ),
        _x(
            "Is it worth paying for more cloud storage?",
            "If your photos and documents don't fit in the free tier, it's usually the "
            "cheapest insurance against losing them. Clear out duplicates and big videos "
            "first; you may need less than you think.",
        ),
    ),
    followups=(
        _x(
            "Is the paid version worth it?",
            "Only if you need the extra features regularly; the free tier covers what most "
            "people use day to day.",
        ),
    ),
    pool=(
        "Keeping software up to date fixes more problems than people expect.",
        "Turning it off and on again really does solve a lot of issues.",
        "Two-factor authentication is worth setting up on important accounts.",
        "Write down what you changed so you can undo it if needed.",
        "Cheap cables are a surprisingly common cause of charging problems.",
        "The manufacturer's support pages are often better than they look.",
    ),
)

SCIENCE = Topic(
    "science",
    openers=(
        _x(
            "Why is the sky blue?",
            "Sunlight is scattered by the molecules in the air, and shorter blue wavelengths "
            "scatter much more than red ones, so blue light reaches our eyes from every part "
            "of the sky.",
            _x(
                "So why isn't it violet then?",
                "Partly because sunlight contains less violet, partly because our eyes are "
                "less sensitive to it, so the mix we perceive comes out as blue.",
            ),
        ),
        _x(
            "How do vaccines work, in simple terms?",
            "They show your immune system a harmless piece or version of a germ, so it "
            "learns to recognise it and can respond quickly if you meet the real thing "
            "later.",
        ),
        _x(
            "Why do we get hiccups?",
            "A hiccup is a sudden involuntary spasm of the diaphragm followed by the vocal "
            "cords snapping shut. Eating fast, fizzy drinks and excitement can all set it "
            "off.",
        ),
        _x(
            "How far away is the Moon?",
            "On average about 384,000 kilometres, though it varies by roughly 40,000 "
            "kilometres because its orbit is an ellipse.",
        ),
        _x(
            "Why does bread go stale?",
            "Mostly not by drying out: the starch molecules recrystallise as the bread "
            "cools, which makes it firm. That's why warming stale bread briefly softens it "
            "again.",
        ),
        _x(
            "Why do cats purr?",
            "Nobody is completely sure. Purring comes from rapid twitching of the muscles of "
            "the voice box, and cats do it when content but also when stressed or hurt, so it "
            "may be as much about self-soothing as happiness.",
        ),
    ),
    followups=(
        _x(
            "Is that still the accepted explanation?",
            "Broadly yes; the details keep being refined, but the basic picture has held up well.",
        ),
    ),
    pool=(
        "It's one of those everyday things with a surprisingly deep explanation.",
        "Popular science books cover this well if you want more depth.",
        "The simple version leaves out some details, but it captures the main idea.",
        "Scientists are still studying some parts of it.",
        "It's a good example of how much happens that we never notice.",
    ),
)

HABITS = Topic(
    "habits",
    openers=(
        _x(
            "How do I stop procrastinating on boring tasks?",
            "Make the first step tiny, like opening the document and writing one line, set "
            "a timer for twenty-five minutes, and remove the easiest distraction, which is "
            "usually the phone.",
        ),
        _x(
            "Does the Pomodoro technique actually work?",
            "For many people, yes: short focused blocks with small breaks make starting "
            "easier and stop you burning out. Adjust the block length to what suits you.",
        ),
        _x(
            "How can I read more books this year?",
            "Carry one with you, read ten pages before bed instead of scrolling, and give "
            "yourself permission to abandon books you don't enjoy.",
        ),
        _x(
            "What's a good morning routine that doesn't take forever?",
            "Keep it short: a glass of water, five minutes outside or by a window, a quick "
            "look at your top three tasks, and breakfast away from your phone.",
        ),
        _x(
            "How do I keep a to-do list from getting out of control?",
            "Keep one list, not several, pick at most three priorities each day, and review "
            "it weekly to delete anything that no longer matters.",
        ),
        _x(
            "How do I spend less time on my phone in the evening?",
            "Charge it outside the bedroom, move social apps off the home screen, set a "
            "downtime schedule that greys them out after nine, and have something else in "
            "reach instead, like a book or a puzzle.",
        ),
    ),
    followups=(
        _x(
            "What if I miss a day?",
            "Just pick it up the next day. Missing once barely matters; the only thing to "
            "avoid is letting one missed day turn into a missed month.",
        ),
    ),
    pool=(
        "Habits stick better when they're attached to something you already do.",
        "Tracking progress visibly, even with ticks on a calendar, helps motivation.",
        "Start smaller than feels necessary and build up once it's automatic.",
        "Be kind to yourself: perfection is not the goal.",
        "Changing your surroundings is often easier than relying on willpower.",
    ),
)

LIFE = Topic(
    "life",
    openers=(
        _x(
            "The neighbours' dog barks every time someone walks past. How do I bring it up "
            "without starting a feud?",
            "Pick a calm moment, keep it friendly and specific: when it happens, how it "
            "affects you, and ask if they've noticed. Most owners don't hear it while they're "
            "out. Suggest something small, and give it a few weeks before escalating.",
        ),
        _x(
            "My cousin is getting married in the autumn and the dress code says 'festive "
            "formal'. What does that even mean?",
            "It's formal wear with a bit of fun: a dark suit with a bright tie or pocket "
            "square, or a cocktail or long dress in a rich colour or with some sparkle. When "
            "in doubt, dress up rather than down and ask someone else who's going.",
        ),
        _x(
            "A colleague is moving abroad next month. What's a nice leaving present from the team?",
            "Something light to pack and personal works best: a card everyone writes in, a "
            "photo book of team moments, a good travel accessory, or a voucher they can use "
            "in the new country. A small send-off lunch often means more than the gift.",
        ),
        _x(
            "We had friends over until two in the morning and I feel wrecked. How do I get "
            "through the day?",
            "Drink water steadily, eat a proper breakfast with some protein, get outside for "
            "fresh air and daylight, and keep caffeine to the morning. A twenty-minute nap "
            "after lunch helps; longer will leave you groggy.",
        ),
        _x(
            "An old friend from my first job got in touch after ten years. Is it weird to meet up?",
            "Not weird at all; lots of people reconnect like this and it's usually a lovely "
            "surprise. Suggest something low-key such as coffee or a walk, so there's no "
            "pressure, and see where the conversation goes.",
        ),
        _x(
            "My flatmate never does the washing-up. How do I raise it without a row?",
            "Bring it up at a calm time, not in the moment, and talk about the problem "
            "rather than their character. Suggest a simple system, such as a rota or washing "
            "up straight after cooking, and agree to check how it's going in a couple of "
            "weeks.",
        ),
        _x(
            "I said yes to too many plans this weekend. How do I cancel one politely?",
            "Cancel early and honestly: say you've overcommitted, apologise briefly, and "
            "suggest another date so it's clear you still want to see them. People take "
            "that far better than a last-minute excuse.",
        ),
        _x(
            "My best friend's birthday is coming up and she says she doesn't want anything. "
            "Should I believe her?",
            "Partly. She probably doesn't want you to spend much, so think small and "
            "personal: a handwritten note, her favourite snack, an evening out together, or "
            "a photo of the two of you. Time together is usually the real present.",
        ),
    ),
    followups=(
        _x(
            "What if that doesn't work?",
            "Then try a slightly more direct conversation, still friendly, and be clear about "
            "what you'd like to happen. Most of these things sort themselves out once they're "
            "said out loud.",
        ),
    ),
    pool=(
        "Most people respond well when they feel you're on the same side.",
        "A bit of warmth goes a long way in these conversations.",
        "It's worth thinking about what you want the outcome to be before you start.",
        "Small, regular gestures often matter more than big ones.",
        "You know the people involved best, so trust your instincts too.",
    ),
)

SMALL_TALK = Topic(
    "small_talk",
    openers=(
        _x(
            "Morning! Feeling a bit slow today, the coffee hasn't kicked in yet.",
            "Good morning! Some days just start slowly. A glass of water, a bit of daylight "
            "and one small easy task to get going can help the rest of the day pick up.",
        ),
        _x(
            "It's finally sunny here after a week of rain.",
            "That's lovely to hear. A week of grey skies really drags, so it's worth getting "
            "outside for a bit while it lasts, even just for a short walk at lunchtime.",
        ),
        _x(
            "Long week. I'm so ready for the weekend.",
            "That sounds well deserved. Do you have anything planned, or is it a weekend for "
            "doing as little as possible? Both are good options after a long week.",
        ),
    ),
    followups=(
        _x(
            "Thanks, that's really helpful!",
            "You're welcome! I'm glad it helps. Feel free to come back if anything else comes "
            "up, whether it's a follow-up question or something completely different.",
        ),
        _x(
            "Perfect, that's all I needed.",
            "Great, glad that sorted it. Good luck with it, and let me know how it goes if "
            "you'd like a second opinion on anything later.",
        ),
    ),
    pool=(
        "I'm always happy to help think things through.",
        "Let me know if you'd like more detail on any of that.",
        "Take care, and enjoy the rest of your day.",
        "A small break now and then does wonders for the rest of the day.",
    ),
)

TOPICS: tuple[Topic, ...] = (
    COOKING,
    TRAVEL,
    CODING,
    HEALTH,
    WORK,
    MONEY,
    HOME,
    MEDIA,
    WRITING,
    GADGETS,
    SCIENCE,
    HABITS,
    LIFE,
)


def fill(template: str, slots: dict[str, str]) -> str:
    return template.format(**slots) if "{" in template else template


def slot_values(rng: random.Random, topic: Topic) -> dict[str, str]:
    return {name: rng.choice(values) for name, values in topic.slots.items()}


def pad(
    rng: random.Random,
    start: str,
    pool: tuple[str, ...],
    used: set[str] | None = None,
    slots: dict[str, str] | None = None,
) -> str:
    """`start` followed by sentences of `pool` (those not in `used` first) until a length
    drawn between 35 and 95 words, never beyond 118; adds what it takes to `used`."""
    used = set() if used is None else used
    target = rng.randint(35, 95)
    words = len(start.split())
    sentences = [start]
    fresh = [s for s in pool if s not in used]
    stale = [s for s in pool if s in used]
    for sentence in [*rng.sample(fresh, len(fresh)), *rng.sample(stale, len(stale))]:
        if words >= target or (sentence in used and words >= 30):
            break
        extra = len(sentence.split())
        if words + extra > 118:
            continue
        used.add(sentence)
        sentences.append(fill(sentence, slots or {}))
        words += extra
    return " ".join(sentences)


@dataclass
class Conversation:
    """Filler for one entity: threads of openers and follow-ups, the same opener not twice
    for one person while others are left, sentences not repeated within a session."""

    rng: random.Random
    asked: set[tuple[str, str]] = field(default_factory=set)  # (topic, reply) per entity

    def thread(self, topic: Topic, used: set[str], followups: int) -> list[tuple[str, str]]:
        """(user, assistant) pairs: an opener of `topic` and up to `followups` follow-ups."""
        rng = self.rng
        fresh = [e for e in topic.openers if (topic.name, e.reply) not in self.asked]
        opener = rng.choice(fresh or list(topic.openers))
        self.asked.add((topic.name, opener.reply))
        slots = slot_values(rng, topic)
        pairs = [self._pair(topic, opener, slots, used)]
        later = [*opener.then, *(e for e in topic.followups if e.reply not in used)]
        for follow in later[:followups]:
            pairs.append(self._pair(topic, follow, slots, used))
        return pairs

    def _pair(
        self, topic: Topic, exchange: Exchange, slots: dict[str, str], used: set[str]
    ) -> tuple[str, str]:
        used.add(exchange.reply)
        user = fill(self.rng.choice(exchange.users), slots)
        return user, pad(self.rng, fill(exchange.reply, slots), topic.pool, used, slots)

    def greeting(self, used: set[str]) -> tuple[str, str]:
        exchange = self.rng.choice(SMALL_TALK.openers)
        return exchange.users[0], pad(self.rng, exchange.reply, SMALL_TALK.pool, used)

    def closer(self, used: set[str]) -> tuple[str, str]:
        exchange = self.rng.choice(SMALL_TALK.followups)
        return exchange.users[0], pad(self.rng, exchange.reply, SMALL_TALK.pool, used)
