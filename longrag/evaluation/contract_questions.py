"""Ten questions a person would ask of the licence agreements in examples/contracts, each with the
document that answers it and words a right answer holds; graded leniently (the wording is the
model's). Used by benchmarks/contract_questions.py and the regression test."""
from __future__ import annotations

import re

# question → (document that answers it, words one of which a right answer holds)
QUESTIONS = {
    "Can I use the licensor's trademarks under the Apache License?": ("Apache-2.0.txt", ["trademark"]),
    "What happens to my Apache patent licence if I sue a contributor for patent infringement?":
        ("Apache-2.0.txt", ["terminat"]),
    "Is the software under the MIT licence provided with any warranty?":
        ("MIT.txt", ["without warranty", "without any warranty", "as is", "no warranty", "not provided with any warranty"]),
    "Which notice must be included in all copies of MIT-licensed software?":
        ("MIT.txt", ["copyright notice", "permission notice"]),
    "Can the names of the contributors be used to endorse products under the BSD 3-Clause licence?":
        ("BSD-3-Clause.txt", ["prior written permission", "without specific", "may not", "cannot", "can not"]),
    "Under the zlib licence, must altered source versions be marked?": ("Zlib.txt", ["plainly marked"]),
    "Which law governs the Common Public License 1.0?": ("CPL-1.0.txt", ["new york"]),
    "How long do I have to cure a violation to have my GPLv3 licence reinstated after first notice?":
        ("GPL-3.0-only.txt", ["30 days", "thirty days"]),
    "Under the Mozilla Public License 2.0, what happens if I fail to comply with its terms?":
        ("MPL-2.0-no-copyleft-exception.txt", ["terminat"]),
    "Under the AGPL, what must I offer to users who interact with my modified program over a network?":
        ("AGPL-3.0-only.txt", ["corresponding source", "source"]),
}


def right(row: dict) -> bool:
    """Found, citing the expected document, and holding one of the expected words (word starts:
    "terminat" matches "terminates"; "no" never matches inside "notice")."""
    doc, words = QUESTIONS[row["question"]]
    text = row["answer"].lower()
    return (row["found"] and doc in row["cited"]
            and any(re.search(rf"\b{re.escape(w)}", text) for w in words))
