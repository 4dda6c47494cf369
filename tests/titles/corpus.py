"""First messages for judging the fallback summarizer, and the table of their titles in docs/titles.md.

`python -m tests.titles.corpus` prints the table; `python -m tests.titles.corpus --write` puts it into
docs/titles.md. tests/titles/test_corpus.py fails when the table there is not what the code produces.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from threadstore.titles import summarize


@dataclass(frozen=True)
class Sample:
    kind: str
    message: str
    # Pinned for a representative subset; the rest is there to be read in the table.
    expected: str | None = None
    # Only greetings or framing: echoing the message's own words is the intended last resort.
    echo: bool = False


_LONG_PROSE = (
    "I'm writing my master's thesis on urban heat islands and I need to structure the literature review. "
    + "So far I have read about forty papers on remote sensing, street trees, albedo and cooling demand. " * 60
    + "How should I group them?"
)
_LONG_LOG = "Why does my build fail?\n" + "".join(
    f"[{i:05}] WARN deprecated API used in module_{i}\n" for i in range(3000)
)
_HUGE_PASTE = "Please proofread this chapter:\n\n" + "The river ran quietly past the old mill. " * 2500

SAMPLES = [
    # Coding.
    Sample("coding", "How do I reverse a list in Python?", "Reverse a list in Python"),
    Sample("coding", "What's the difference between let and const in JavaScript?"),
    Sample("coding", "Can you explain how async/await works in Rust?"),
    Sample("coding", "My React component re-renders forever when I call setState inside useEffect"),
    Sample(
        "coding",
        "Write a SQL query that returns the top 5 customers by revenue",
        "SQL query that returns the top 5 customers",
    ),
    Sample("coding", "git: how do I undo the last commit but keep the changes?"),
    Sample("coding", "Why does `0.1 + 0.2 == 0.3` return false in JavaScript?"),
    Sample("coding", "TypeError: Cannot read properties of undefined (reading 'map')"),
    Sample("coding", "how to center a div", "Center a div"),
    Sample("coding", "Is Rust faster than Go for web servers?"),
    Sample("coding", 'Convert this JSON to YAML:\n```json\n{"a": 1, "b": [1, 2]}\n```', "Convert this JSON to YAML"),
    Sample("coding", "I'm working on a Django project. How do I add a custom user model?", "Django project"),
    Sample(
        "coding",
        "Here is my code:\n```python\ndef first(xs):\n    return xs[0]\n```\nWhy does it crash on an empty list?",
        "Why does it crash on an empty list",
    ),
    Sample(
        "coding",
        "Traceback (most recent call last):\n  File \"app.py\", line 3, in <module>\n    int('abc')\n"
        "ValueError: invalid literal for int() with base 10: 'abc'",
        "ValueError: invalid literal for int() with base 10",
    ),
    Sample("coding", "Python: how do I read a CSV file?", "Python: read a CSV file"),
    Sample("coding", "Explain this code\n```js\nconst add = (a, b) => a + b;\n```"),
    Sample("coding", "help me set up a GitHub Actions workflow for a monorepo"),
    Sample("coding", "Should I use PostgreSQL or MongoDB for a small SaaS?"),
    # Code only.
    Sample("code only", "```js\nconsole.log(1)\n```", "console.log(1)"),
    Sample("code only", "```python\n# Compute Fibonacci numbers with memoization\ndef fib(n):\n    ...\n```"),
    Sample("code only", "SELECT name, COUNT(*) FROM orders GROUP BY name HAVING COUNT(*) > 3;"),
    Sample("code only", "import numpy as np\nx = np.array([1, 2])\nprint(x.mean())"),
    Sample("code only", "```\n$ docker compose up\nError response from daemon: port is already allocated\n```"),
    Sample("code only", '<div class="card">\n  <p>Hello</p>\n</div>'),
    # Writing.
    Sample(
        "writing",
        "Hi Claude, can you help me write a cover letter for a software engineering job?",
        "Cover letter for a software engineering job",
    ),
    Sample("writing", "Write a haiku about autumn leaves please", "Haiku about autumn leaves"),
    Sample("writing", "Can you please write me a short story about a dragon who loves tea?"),
    Sample("writing", "Proofread my email to my boss asking for a day off"),
    Sample("writing", "I need a catchy name for my bakery"),
    Sample("writing", "Rewrite this paragraph so it sounds more formal: hey guys, the meeting got moved to 3"),
    Sample("writing", "Draft a LinkedIn post announcing that I got promoted"),
    Sample("writing", "Give me 10 blog post ideas about remote work"),
    # Travel.
    Sample(
        "travel",
        "Can you help me plan a three day trip to Lisbon in March with kids?",
        "Three day trip to Lisbon in March",
    ),
    Sample(
        "travel", "Lisbon trip with kids in March: can you help me plan three days?", "Lisbon trip with kids in March"
    ),
    Sample("travel", "I'm planning a family trip to New York City next summer, what should we see?"),
    Sample("travel", "What's the best way to get from Tokyo to Kyoto?"),
    Sample("travel", "Do I need a visa to visit Vietnam with a German passport?"),
    Sample("travel", "packing list for a week of hiking in Patagonia"),
    # Cooking.
    Sample("cooking", "What can I make with chicken, rice and spinach?"),
    Sample("cooking", "How long should I boil an egg for a runny yolk?"),
    Sample("cooking", "make a two week meal plan for a vegetarian", "Two week meal plan for a vegetarian"),
    Sample("cooking", "Is it safe to eat raw cookie dough?"),
    Sample("cooking", "Give me a recipe for vegan lasagna that serves 6"),
    Sample("cooking", "sourdough starter smells like acetone, is it dead?"),
    # Health.
    Sample("health", "I've had a headache for three days, should I see a doctor?"),
    Sample("health", "What are the symptoms of iron deficiency?", "Symptoms of iron deficiency"),
    Sample("health", "Create a 4 week beginner running plan"),
    Sample("health", "How much sleep does a teenager need?"),
    Sample("health", "is it bad to drink coffee on an empty stomach"),
    # Maths.
    Sample("maths", "Solve 3x + 5 = 20"),
    Sample("maths", "What is the derivative of x^2 * sin(x)?"),
    Sample("maths", "Can you explain Bayes' theorem with a simple example?"),
    Sample("maths", "Prove that the square root of 2 is irrational"),
    Sample("maths", "what's 15% of 240"),
    Sample("maths", "Why is 0.999... equal to 1?"),
    # Questions and commands.
    Sample("question", "What is the difference between TCP and UDP?", "Difference between TCP and UDP"),
    Sample("question", "Tell me about the history of the Roman Empire", "History of the Roman Empire"),
    Sample("question", "Who is Ada Lovelace?", "Ada Lovelace"),
    Sample("question", "Why is the sky blue?", "Why is the sky blue"),
    Sample("question", "My iPhone battery drains fast, any tips?", "My iPhone battery drains fast"),
    Sample("question", "How does a mortgage offset account work?"),
    Sample("question", "I have a question about taxes in Germany", "Taxes in Germany"),
    Sample(
        "question", "Hello, how are you today? I want to learn Spanish in six months", "Learn Spanish in six months"
    ),
    Sample("command", "Summarize this article: https://example.com/news/2024/some-article", "Summarize this article"),
    Sample("command", "Translate 'good luck with your exam' into Japanese"),
    Sample("command", "Compare the iPhone 15 and the Pixel 8"),
    Sample("command", "Recommend some sci-fi books like The Expanse"),
    Sample("command", "HOW DO I FIX MY WIFI??", "Fix my wifi"),
    # Lists.
    Sample("list", "Shopping list:\n- eggs\n- milk\n- flour", "Shopping list: eggs, milk, flour"),
    Sample("list", "- PostgreSQL\n- MySQL\n- SQLite\nwhich one for a hobby project?", "PostgreSQL, MySQL, SQLite"),
    Sample(
        "list",
        "Can you help me with the following:\n1. Write a cover letter\n2. Update my CV",
        "Cover letter, Update my CV",
    ),
    Sample("list", "Pros and cons:\n* remote work\n* office work", "Pros and cons: remote work, office work"),
    Sample("list", "My goals for this year:\n1. Run a marathon in under four hours\n2. Learn to play the piano"),
    Sample("list", "# Project plan\n\n- [ ] set up the repo\n- [ ] write the README"),
    # German.
    Sample(
        "German",
        "Kannst du mir bitte helfen, einen Brief an meinen Vermieter zu schreiben?",
        "Brief an meinen Vermieter",
    ),
    Sample("German", "Hallo! Wie kann ich in Python eine Liste umkehren?", "In Python eine Liste umkehren"),
    Sample("German", "Was ist der Unterschied zwischen TCP und UDP?", "Unterschied zwischen TCP und UDP"),
    Sample("German", "Ich möchte Spanisch lernen, wo fange ich an?", "Spanisch lernen"),
    Sample("German", "Schreib mir ein Gedicht über den Herbst", "Gedicht über den Herbst"),
    Sample("German", "Kannst du mir erklären, wie eine Wärmepumpe funktioniert?"),
    Sample("German", "Ich brauche Hilfe bei meiner Steuererklärung"),
    Sample("German", "Guten Morgen! Könnten Sie mir bitte helfen, meine Wohnung zu putzen?", "Meine Wohnung putzen"),
    # French.
    Sample("French", "Pouvez-vous m'aider à écrire une lettre de motivation ?", "Lettre de motivation"),
    Sample("French", "Bonjour, comment puis-je apprendre le piano rapidement ?", "Apprendre le piano rapidement"),
    Sample("French", "Qu'est-ce que la photosynthèse ?", "Photosynthèse"),
    Sample("French", "Peux-tu me proposer un menu pour un dîner entre amis ?"),
    Sample("French", "J'aimerais organiser un voyage à Rome en mai", "Organiser un voyage à Rome en mai"),
    Sample("French", "Explique-moi l'histoire de la Révolution française", "Histoire de la Révolution française"),
    Sample("French", "Bonjour, comment faire du pain ?"),
    Sample("French", "Écris-moi un poème sur la mer, s'il te plaît", "Poème sur la mer"),
    # Spanish.
    Sample("Spanish", "¿Puedes ayudarme a planear un viaje a Madrid?", "Viaje a Madrid"),
    Sample("Spanish", "¿Puedes ayudarme a planear un viaje a Lisboa?", "Viaje a Lisboa"),
    Sample("Spanish", "Hola, ¿cómo puedo mejorar mi currículum?", "Mejorar mi currículum"),
    Sample("Spanish", "¿Qué es la inflación?", "Inflación"),
    Sample("Spanish", "Escribe un poema sobre el mar, por favor", "Poema sobre el mar"),
    Sample("Spanish", "Necesito ayuda con mis deberes de matemáticas"),
    Sample("Spanish", "Quiero aprender a tocar la guitarra"),
    Sample("Spanish", "¿Me puedes explicar la diferencia entre ser y estar?"),
    # Other languages: no framing table, greetings only.
    Sample("other language", "Ciao! Come posso imparare il tedesco velocemente?"),
    Sample("other language", "Olá, você pode me ajudar a escrever um e-mail?"),
    Sample("other language", "Привет! Как приготовить борщ?", "Как приготовить борщ"),
    Sample("other language", "你好\uff0c请帮我写一首关于秋天的诗。"),
    Sample("other language", "東京でおすすめのラーメン屋を教えてください"),
    Sample("other language", "Merhaba, İstanbul'da nereye gitmeliyim?"),
    # Greetings and framing only.
    Sample("greeting only", "Hi!", "Hi", echo=True),
    Sample("greeting only", "hello there 👋", "Hello there", echo=True),
    Sample("greeting only", "Guten Tag", "Guten Tag", echo=True),
    Sample("framing only", "Can you help?", "Can you help", echo=True),
    Sample("framing only", "Hola, ¿puedes ayudarme?", "Hola", echo=True),
    Sample("framing only", "Quick question", "Quick question", echo=True),
    # Very short.
    Sample("very short", "pasta"),
    Sample("very short", "42"),
    Sample("very short", "help", echo=True),
    Sample("very short", "?"),
    Sample("very short", "🎉🎉🎉"),
    Sample("very short", "Dune"),
    Sample("very short", "iPhone 15 vs Pixel 8"),
    # Very long.
    Sample("very long", _LONG_PROSE),
    Sample("very long", _LONG_LOG),
    Sample("very long", _HUGE_PASTE),
    Sample("very long", "lorem ipsum dolor sit amet " * 4000),
    Sample(
        "very long",
        "So basically what happened is that yesterday my landlord sent me an email saying that the rent will go up "
        "by thirty percent next month and I don't know whether that is even legal in California",
    ),
    # Odd input.
    Sample("odd", "🎉🎉 Help me plan a birthday party for my 5 year old 🎂", "Birthday party for my 5 year old"),
    Sample("odd", "https://example.com/foo"),
    Sample("odd", "Hey there, quick question - how do I center a div in CSS?", "Center a div in CSS"),
    Sample("odd", "C++ vs Rust for game development", "C++ vs Rust for game development"),
    Sample("odd", "iPhone battery drains fast overnight", "iPhone battery drains fast overnight"),
]


def _cell(text: str, limit: int) -> str:
    """One table cell: newlines shown as ⏎, long text cut, and Markdown syntax escaped so it shows as typed."""
    text = text.replace("\n", " ⏎ ")
    if len(text) > limit:
        text = f"{text[:limit].rstrip()}… ({len(text):,} chars)"
    return "".join("\\" + ch if ch in "\\`*_[]<>|#~" else ch for ch in text)


def markdown_table() -> str:
    rows = ["| # | Kind | First message | Title |", "|---|---|---|---|"]
    for number, sample in enumerate(SAMPLES, 1):
        rows.append(
            f"| {number} | {sample.kind} | {_cell(sample.message, 90)} | {_cell(summarize(sample.message), 90)} |"
        )
    return "\n".join(rows) + "\n"


DOC = Path(__file__).resolve().parents[2] / "docs" / "titles.md"
START = "<!-- corpus table: generated by `python -m tests.titles.corpus --write` -->\n"
END = "<!-- end of corpus table -->\n"


def doc_with_table(doc: str) -> str:
    """docs/titles.md with the table between its markers replaced by the current one."""
    before, _, rest = doc.partition(START)
    _, _, after = rest.partition(END)
    return f"{before}{START}{markdown_table()}{END}{after}"


def main(argv: list[str]) -> None:
    if argv == ["--write"]:
        DOC.write_text(doc_with_table(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        sys.stdout.write(markdown_table())


if __name__ == "__main__":
    main(sys.argv[1:])
