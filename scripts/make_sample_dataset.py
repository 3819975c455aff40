"""Write the embedded sample dataset (a fictional atlas) into retbench/data/datasets/sample_data.

Deterministic: the same seed writes the same bytes (a test checks it). Run
``python scripts/make_sample_dataset.py [OUT]`` after changing it, and commit the output. Everything in it is invented.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SEED = 2026
TOWNS = 60
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "retbench" / "data" / "datasets" / "sample_data"

ONSETS = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "r", "s",
          "st", "t", "th", "v", "w", "z"]
VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou"]
CODAS = ["", "", "n", "r", "l", "s", "th", "m", "nd", "rk"]
ENDINGS = ["ford", "by", "mere", "holt", "wick", "stead", "ora", "ia", "ven", "dal", "burg", "mouth"]
REGIONS = ["Eastmarch", "the Pell Downs", "Lower Varn", "the Saltcoast", "Highmoor", "the Amber Vale",
           "Greyfen", "the Northreach"]
INDUSTRIES = ["glassblowing", "salt mining", "shipbuilding", "wool weaving", "cheese making",
              "clockmaking", "papermaking", "copper smelting", "bell founding", "rope making",
              "honey farming", "lace making"]
ROLES = ["merchant", "shepherd", "monk", "blacksmith", "sea captain", "stonemason", "miller"]
LANDMARKS = ["stone bridge", "watchtower", "market hall", "chapel", "granary", "town wall"]
SEASONS = ["spring", "summer", "autumn", "winter"]
CELEBRATES = ["the first harvest", "the spring floods", "the founding of the town", "the return of the fleet",
              "the longest night", "the shearing season"]
FIRST = ["Alda", "Bram", "Cora", "Dorin", "Elsa", "Fenn", "Greta", "Hal", "Ilse", "Joran", "Kesta",
         "Lorn", "Mira", "Nils", "Orla", "Piet", "Runa", "Sten", "Tova", "Ulf", "Vera", "Wim"]


def word(rng: random.Random, syllables: int) -> str:
    text = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables))
    return text.capitalize()


def unique(rng: random.Random, seen: set[str], make) -> str:
    while True:
        value = make()
        if value not in seen:
            seen.add(value)
            return value


def make_town(rng: random.Random, seen: set[str], towns: list[dict]) -> dict:
    name = unique(rng, seen, lambda: word(rng, rng.choice([1, 2])) + rng.choice(ENDINGS))
    return {
        "name": name,
        "slug": name.lower(),
        "region": rng.choice(REGIONS),
        "river": unique(rng, seen, lambda: word(rng, 2)),
        "bank": rng.choice(["north", "south", "east", "west"]),
        "mountain": unique(rng, seen, lambda: word(rng, 2)),
        "height": rng.randrange(900, 3400, 7),
        "year": rng.randrange(880, 1650),
        "founder": unique(rng, seen, lambda: f"{rng.choice(FIRST)} {word(rng, 2)}"),
        "role": rng.choice(ROLES),
        "origin": rng.choice(towns)["name"] if towns else "across the sea",
        "landmark": rng.choice(LANDMARKS),
        "industry": rng.choice(INDUSTRIES),
        "population": rng.randrange(1200, 48000, 10),
        "share": rng.randrange(8, 60),
        "festival": unique(rng, seen, lambda: f"{word(rng, 2)} Fair"),
        "season": rng.choice(SEASONS),
        "days": rng.randrange(2, 10),
        "celebrates": rng.choice(CELEBRATES),
        "council": rng.randrange(5, 25),
        "mayor": unique(rng, seen, lambda: f"{rng.choice(FIRST)} {word(rng, 2)}"),
        "elected": rng.randrange(2001, 2026),
    }


def passages(t: dict) -> list[dict]:
    n = t["name"]
    texts = {
        "geography": (f"Geography of {n}", f"{n} is a market town in {t['region']}, on the {t['bank']} bank of the "
                      f"River {t['river']}. It lies at the foot of Mount {t['mountain']}, which rises to "
                      f"{t['height']} metres above the sea."),
        "history": (f"History of {n}", f"{n} was founded in {t['year']} by {t['founder']}, a {t['role']} who came "
                    f"from {t['origin']}. The old {t['landmark']} in the centre of the town dates from that time."),
        "economy": (f"Economy of {n}", f"The economy of {n} has long depended on {t['industry']}. About "
                    f"{t['share']} per cent of its {t['population']:,} inhabitants still work in the trade."),
        "culture": (f"Culture of {n}", f"Every {t['season']} the people of {n} hold the {t['festival']}, a "
                    f"{t['days']}-day festival that celebrates {t['celebrates']}."),
        "government": (f"Government of {n}", f"{n} is governed by a council of {t['council']} members. The current "
                       f"mayor, {t['mayor']}, was elected in {t['elected']}."),
    }
    return [{"_id": f"{t['slug']}-{kind}", "title": title, "text": text, "metadata": {"town": n, "aspect": kind}}
            for kind, (title, text) in texts.items()]


def questions(t: dict) -> list[tuple[str, str, list[str], str]]:
    """(aspect, question, answers, type) triples about one town."""
    n = t["name"]
    return [
        ("history", f"Who founded the town of {n}?", [t["founder"]], "person"),
        ("history", f"In which year was {n} established?", [str(t["year"])], "date"),
        ("geography", f"Which river flows past {n}?", [t["river"], f"River {t['river']}"], "place"),
        ("geography", f"How tall is the mountain that overlooks {n}?",
         [f"{t['height']} metres", str(t["height"])], "number"),
        ("economy", f"What trade has the economy of {n} relied on?", [t["industry"]], "thing"),
        ("culture", f"What is the name of the festival held in {n}?", [t["festival"]], "thing"),
        ("government", f"Who is the mayor of {n}?", [t["mayor"]], "person"),
    ]


def main(out: Path) -> None:
    rng = random.Random(SEED)
    seen: set[str] = set()
    towns: list[dict] = []
    for _ in range(TOWNS):
        towns.append(make_town(rng, seen, towns))
    corpus = [p for t in towns for p in passages(t)]
    queries, answers, qrels = [], [], {"train": [], "test": []}
    for index, town in enumerate(towns):
        picked = rng.sample(questions(town), 3)
        for number, (aspect, question, gold, qtype) in enumerate(picked):
            qid = f"q{index:02d}{number}"
            split = "test" if number < 2 else "train"
            queries.append({"_id": qid, "text": question, "metadata": {}})
            answers.append({"_id": qid, "answers": gold, "type": qtype})
            qrels[split].append((qid, f"{town['slug']}-{aspect}", 1))
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus", corpus), ("queries", queries), ("answers", answers)):
        with open(out / f"{name}.jsonl", "w", encoding="utf-8", newline="\n") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    for split, rows in qrels.items():
        with open(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8", newline="\n") as handle:
            handle.write("query-id\tcorpus-id\tscore\n")
            handle.writelines(f"{q}\t{d}\t{s}\n" for q, d, s in rows)
    print(f"{len(corpus)} passages, {len(queries)} queries "
          f"({len(qrels['test'])} test, {len(qrels['train'])} train) -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT)
