"""Answer scores against references: SQuAD token F1 and normalisation, ROUGE-L, citation-marker removal."""
from __future__ import annotations

import re
import string
from collections import Counter

_CITATION = re.compile(r"\[\d+\]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    """SQuAD answer normalisation: lower case, punctuation and articles removed, spaces squashed."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 of the normalised bags of words (1.0 when both are empty)."""
    pred, ref = normalize(prediction).split(), normalize(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def rouge_l(prediction: str, references: list[str]) -> float:
    """ROUGE-L F-measure, best over the references (rouge-score, Porter stemmer)."""
    from rouge_score import rouge_scorer  # the `test` extra: only the answer-quality benchmark scores ROUGE

    if not prediction.strip():
        return 0.0
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return scorer.score_multi(references, prediction)["rougeL"].fmeasure


def clean_answer(text: str) -> str:
    """The answer as scored: citation markers like [2] removed."""
    return " ".join(_CITATION.sub(" ", text).split())
