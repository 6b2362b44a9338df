"""Generated training negatives for the prompt classifier: long, ordinary requests to an
assistant (seeded, so the shipped model can be rebuilt byte for byte)."""

from __future__ import annotations

import random

# The packages above hold documentation and small talk; a long message to the bot is more often
# a request with context and wishes about the answer. These are generated from the parts below
# (written for this script, not taken from any evaluation set), so the classifier learns that
# addressing the assistant, giving it a task and shaping its answer is ordinary; what a
# jailbreak adds (rules dropped, a character that must never refuse) is what should score.

_TOPICS = (
    ("my sourdough starter", "it doubles in about eight hours but the loaf comes out dense",
     "I feed it once a day with rye flour and keep it on the counter"),
    ("a Python script that renames photos", "it crashes when two files have the same date",
     "I read the EXIF date with Pillow and build the new name from it"),
    ("our weekly dungeon crawl night", "half the group wants combat and half wants story",
     "we play on Discord with six people and the sessions run about three hours"),
    ("training for my first half marathon", "my knees hurt after the long runs",
     "I run four times a week and the long run is now 16 km"),
    ("a trip to Lisbon in October", "we only have three days and want to avoid tourist traps",
     "we land on Friday morning and fly out Monday night"),
    ("the position sizing rules in my trading plan", "I keep breaking my own risk limit",
     "I risk one percent per trade on a 10k account and trade the morning session"),
    ("the moderation setup of our server", "spam bots keep joining in waves at night",
     "we have about 4000 members and three active moderators in Europe"),
    ("my home network", "the Wi-Fi drops every evening around eight",
     "the router is in the hallway and the office is two floors up"),
    ("learning Japanese", "I can read hiragana but kanji do not stick",
     "I study thirty minutes a day with flashcards and a textbook"),
    ("a birthday party for my daughter", "she turns seven and wants a science theme",
     "we expect twelve kids in our garden for about three hours"),
    ("a cover letter for a junior data analyst job", "I come from teaching and worry it shows",
     "I taught maths for five years and did an online SQL course last year"),
    ("my tomato plants", "the lower leaves turn yellow with brown spots",
     "they grow in pots on a balcony that gets sun until early afternoon"),
    ("the budget for our small bakery", "flour and energy prices went up twenty percent",
     "we sell about three hundred loaves a week at two locations"),
    ("a PostgreSQL query that got slow", "it takes nine seconds since the table grew",
     "the orders table has forty million rows and an index on customer_id"),
    ("my guitar practice", "I plateaued on barre chords",
     "I have played for a year, mostly with online lessons, twenty minutes a day"),
    ("a presentation for the quarterly meeting", "the numbers are bad and I must present them",
     "sales dropped eight percent and the audience is the whole department"),
    ("our options trading study group", "newer members get lost in the Greeks",
     "we meet on Sundays in a voice channel and share a slide deck"),
    ("my cat's diet", "she vomits after eating dry food too fast",
     "she is nine years old, indoor only, and eats twice a day"),
    ("a short story for a writing contest", "the middle drags and the ending feels rushed",
     "the limit is 3000 words and the theme is a journey"),
    ("the onboarding flow of our app", "users drop off at the second screen",
     "we ask for an email, a password and a phone number up front"),
    ("a bookshelf I am building", "the shelves sag in the middle after a month",
     "they are 90 cm wide, made of 18 mm pine, with no back panel"),
    ("my grandmother's recipe for apple cake", "I want to make it without eggs",
     "she used four eggs, butter, flour, sugar and a lot of cinnamon"),
    ("a spreadsheet for our club's finances", "the totals stopped matching the bank",
     "we track dues, event costs and donations on separate tabs"),
    ("a chemistry homework question", "I do not get why the reaction is exothermic",
     "it is about burning methane and the bond energies table in our book"),
    ("my journal of trades", "I cannot tell which setups actually make money",
     "I log entry, exit, size, the setup name and a screenshot for each trade"),
)
_OPENINGS = (
    "Hi all, I could use some help with {topic}.", "Hey, quick question about {topic}.",
    "Hello! I have been stuck on {topic} for a while now.",
    "So I need advice on {topic} and I figured someone here would know.",
    "Good morning everyone. Long post about {topic}, sorry in advance.",
    "I'm hoping you can help me think through {topic}.", "Question about {topic}:",
    "Hi bot, can you help me with {topic}?", "This is about {topic}.",
)
_CONTEXT = (
    "Some background: {fact}.", "For context, {fact}.", "The problem is that {issue}.",
    "What happens is that {issue}.", "I should mention that {fact}.",
    "Right now {fact}, and {issue}.", "I tried a few things already but {issue}.",
    "A friend told me it is normal, but {issue} and that worries me.",
    "Details in case they matter: {fact}.",
)
_REQUESTS = (
    "Can you explain what is most likely going on?",
    "What would you change first, and why?",
    "Could you give me a step by step plan for the next two weeks?",
    "Please list the most common mistakes people make with this.",
    "Can you answer as simply as possible? I am a beginner.",
    "I would like you to compare the two or three usual approaches.",
    "Write me a short checklist I can print out.",
    "Could you suggest a few questions I should ask an expert?",
    "Please summarize the options with their pros and cons.",
    "Can you draft a message I could send to the group about it?",
    "What should I read or watch to understand this better?",
    "You can be blunt, I would rather hear what I am doing wrong.",
    "Can you tell me what you would need to know to give a better answer?",
    "Please rewrite my plan below so it is clearer.",
)
_WISHES = (
    "Please keep the answer short, a few bullet points is fine.",
    "Answer in plain English, no jargon if you can avoid it.",
    "Use a table if that makes the comparison easier.",
    "Start with the most important point.",
    "If you are not sure about something, say so.",
    "Please add a short example for each step.",
    "I read on a phone, so short paragraphs please.",
    "No need to repeat my question back to me.",
    "Explain it the way a patient teacher would.",
    "Give me the answer first and the reasoning after.",
    "Please answer in English even though my notes below are partly in German.",
    "Keep it friendly, this is for a group of beginners.",
)
_PERSONAS = (
    "Imagine you are an experienced coach looking at this for the first time.",
    "Pretend you are a friendly librarian recommending books to a curious teenager.",
    "Act as a careful reviewer and point out anything unclear.",
    "You are helping a small volunteer team, so keep costs in mind.",
    "Think like a teacher preparing a lesson for next week.",
    "Play the role of the customer for a moment: what would annoy you?",
    "Answer as a mentor who has made these mistakes before.",
)
_CLOSINGS = (
    "Thanks a lot!", "Thanks in advance, any help is welcome.", "Cheers.",
    "Appreciate it, this server has been great.", "Thank you, and sorry for the wall of text.",
    "Let me know if you need more details.", "",
)
_NOTES = (
    "Here is what I wrote so far: {fact}; {issue}; next step unclear.",
    "My notes from last week:\n- {fact}\n- {issue}\n- asked around, no clear answer yet",
    "Timeline: week one went fine, week two {issue}, and since then nothing changed.",
    "What I already checked: the obvious settings, the manual, two forum threads.",
)


def generated_requests(count: int = 600, seed: int = 13) -> list[tuple[str, str]]:
    """(group, text): ordinary long requests to an assistant, from the parts above."""
    chooser = random.Random(seed)
    found = []
    for index in range(count):
        topic, issue, fact = _TOPICS[index % len(_TOPICS)]
        slots = {"topic": topic, "issue": issue, "fact": fact}
        parts = [chooser.choice(_OPENINGS)]
        parts += chooser.sample(_CONTEXT, chooser.randint(1, 3))
        if chooser.random() < 0.5:
            parts.append(chooser.choice(_NOTES))
        if chooser.random() < 0.3:
            parts.append(chooser.choice(_PERSONAS))
        parts += chooser.sample(_REQUESTS, chooser.randint(1, 3))
        parts += chooser.sample(_WISHES, chooser.randint(0, 3))
        parts.append(chooser.choice(_CLOSINGS))
        found.append((f"generated:{index % len(_TOPICS):02d}", assemble(chooser, parts, slots)))
    return found


def assemble(chooser: random.Random, parts: list[str], slots: dict[str, str]) -> str:
    """A generated message: its parts filled in and joined by one kind of break."""
    separator = chooser.choice((" ", "\n", "\n\n"))
    return separator.join(part.format(**slots) for part in parts if part)
