"""What Mecab does to speaker tags and masks, and what protecting them would change, on real dev data.

Usage: python -m benchmarks.mecab_tags [--data ../shared/data/dialogsum-ko/dev.csv]

Prints Mecab's morphemes for tagged samples, the share of Mecab tokens in the dev references
that are pieces of a ``#...#`` tag, and the first-turn baseline scored with the scorer's Mecab
mode (raw text, as the leaderboard) next to a variant that keeps each tag whole (the tag is
swapped for a placeholder Mecab keeps as one token, then swapped back). The project scores raw
text; the variant is measured here only to show how much the choice moves the numbers.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

TAG = re.compile(r"#\w+#")
PLACEHOLDER = "XTAGX"
SAMPLES = ("#Person1#가 #Person2#에게 #PhoneNumber#로 전화했다.", "#Person1#: 안녕하세요.", "Bye, #Person2#.")


def protected_join(texts: list[str]) -> list[str]:
    """Mecab-joined texts with every ``#...#`` tag kept as one token (for comparison only).

    Each tag becomes the Latin word ``XTAGX``, which Mecab keeps whole and cuts off a following
    particle (a change of script); the placeholders are then given their tags back in order.
    """
    from src.evaluation.morphemes import get_mecab

    tagger, out = get_mecab(), []
    for text in texts:
        tags = iter(TAG.findall(text))
        tokens = tagger.morphs(TAG.sub(PLACEHOLDER, text))
        restored = [next(tags) if token == PLACEHOLDER else token for token in tokens]
        if next(tags, None) is not None:
            raise SystemExit(f"a placeholder was merged by Mecab in {text!r}")
        out.append(" ".join(restored))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data" / "dialogsum-ko" / "dev.csv"))
    args = parser.parse_args()
    import pandas as pd

    from src.evaluation.morphemes import mecab_tokens
    from src.evaluation.rouge_compat import rouge_f1
    from src.evaluation.scoring import score_texts

    for sample in SAMPLES:
        print(f"mecab {sample!r}: {mecab_tokens([sample])[0]}")
    dev = pd.read_csv(args.data)
    refs = dev["summary"].tolist()
    tokens = [t for row in mecab_tokens(refs) for t in row]
    # Raw minus protected token count is (pieces - 1) per tag; adding one per tag gives the pieces.
    tag_count = sum(len(TAG.findall(text)) for text in refs)
    tag_tokens = len(tokens) - sum(len(row.split()) for row in protected_join(refs)) + tag_count
    print(f"dev references: {tag_count} #...# tags; {len(tokens)} Mecab tokens, {tag_tokens} of them tag pieces "
          f"({100 * tag_tokens / len(tokens):.1f}%)")
    for name, preds in (("first turn", [d.split("\n")[0] for d in dev["dialogue"]]),
                        ("first turn, speaker prefix cut", [d.split("\n")[0].split(": ", 1)[-1] for d in dev["dialogue"]])):
        raw = score_texts(preds, [[r] for r in refs], "mecab")
        hyps, joined_refs = protected_join(preds), protected_join(refs)
        rows = [rouge_f1(h, r) for h, r in zip(hyps, joined_refs)]
        kept = 100 * sum(sum(row) for row in rows) / (3 * len(rows))
        print(f"{name}: mecab on raw text (the scorer) final {raw['final']:.2f}; tags kept whole {kept:.2f}")


if __name__ == "__main__":
    main()
