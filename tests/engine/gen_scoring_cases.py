#!/usr/bin/env python3
"""Writes tests/engine/data/scoring_cases.jsonl: random texts scored by the Python rule.

The rule as the reference pipeline states it: lowercase, re.findall(r"\\w+|[^\\w\\s]"),
answer tokens contiguous in prediction tokens. Combining marks are left out of the
alphabet (Python's \\w excludes them, flexgen's includes them on purpose).
  python3 tests/engine/gen_scoring_cases.py > tests/engine/data/scoring_cases.jsonl
"""
import json
import random
import re

TOKEN = re.compile(r"\w+|[^\w\s]")
ALPHABET = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") + list(" \t\n ,.!?'\"-()/:;&$%") +
            list("àáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞßĀāĂăĄąĆćČčĎďĐđĒēĘęĚěĞğĹĺĽľŁłŃńŇňŐőŒœŘřŚśŠšŢţŤťŮůŰűŸŹźŻżŽž") +
            list("ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩαβγδεζηθικλμνξοπρσςτυφχψωΆΈΉΊΌΎΏάέήίόύώ") +
            list("АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюяЄІЇЎєіїў") +
            list("東京日本語中文한국어ＡＢＣａｂｃ１２３٣٤€£¥©®™—–…“”‘’«»\u00a0\u2003\u3000"))
WORDS = ["new", "york", "city", "Tokyo", "yen", "Japanese", "the", "U.S.", "Ελλάδα", "ΟΔΟΣ", "Москва", "São",
         "Paulo", "Zürich", "Œuvre", "Straße", "c++", "e-mail", "1,000", "₹", "Ⅻ", "naïve", "DŽungla"]


def tokens(s):
    return TOKEN.findall(s.lower())


def score(pred, answers):
    p = tokens(pred)
    c = b = e = False
    for a in answers:
        g = tokens(a)
        if not g:
            continue
        inside = any(p[i:i + len(g)] == g for i in range(len(p) - len(g) + 1))
        rev = bool(p) and any(g[i:i + len(p)] == p for i in range(len(g) - len(p) + 1))
        c, b, e = c or inside, b or inside or rev, e or p == g
    return c, b, e


def rand_text(rng):
    if rng.random() < 0.5:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 24)))
    return rng.choice(["", " ", "  "]).join(rng.choice(WORDS) + rng.choice(["", "", ",", ".", "!"])
                                            for _ in range(rng.randint(0, 5)))


def main():
    rng = random.Random(20261124)
    for _ in range(400):
        text = rand_text(rng)
        print(json.dumps({"text": text, "tokens": tokens(text)}, ensure_ascii=False))
    for _ in range(400):
        pred = rand_text(rng)
        answers = [rand_text(rng) for _ in range(rng.randint(0, 3))]
        r = rng.random()
        if answers and r < 0.3:  # answer inside the prediction: likely a match
            answers[0] = " ".join(pred.split()[rng.randint(0, 2):][:2])
        elif answers and r < 0.5:  # prediction inside the answer: bidirectional only
            answers[0] = rng.choice(WORDS) + " " + pred.upper() + " " + rng.choice(WORDS)
        c, b, e = score(pred, answers)
        print(json.dumps({"prediction": pred, "answers": answers, "correct": c, "correct_bidirectional": b,
                          "exact_match": e}, ensure_ascii=False))


if __name__ == "__main__":
    main()
