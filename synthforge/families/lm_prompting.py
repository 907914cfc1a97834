"""Prompted generation (the causal_lm family with `adaptation: prompt`): no training, a pre-trained model is shown
k seed documents of the requested label (and metadata) and asked for one more.

An instruct model with a chat template gets a few-shot conversation: the instruction as the system turn, then per
example a user turn naming the conditions and the example as the assistant's answer, then the user turn of the
document to write. The model ends its answer with its end-of-turn token, which is its EOS, so the sampling loop
stops there like for any other document. A model without a chat template gets the examples as plain text, each
after its conditions line and ended by EOS.

Examples rotate through the seed: the documents of each condition are put in an order drawn from the call's seed,
and row j of a condition takes the next k in that order, so a call of n rows shows min(n·k, documents) different
seed documents, every one once before any repeats (the LAMBADA / SuperGen line of work conditions a pre-trained LM
on the label and a few examples the same way; rotating keeps the output from collapsing onto the first few).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthforge.errors import UserError


def condition_key(values: dict[str, Any]) -> str:
    return "|".join(f"{k}={values[k]}" for k in sorted(values))


def shorten(text: str, words: int) -> str:
    """The first `words` words, cut back to the last full sentence inside them when there is one: an example that
    stops mid-sentence teaches the model to stop mid-sentence."""
    parts = text.split()
    if len(parts) <= words:
        return text.strip()
    cut = " ".join(parts[:words])
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    return cut[:end + 1] if end > len(cut) // 2 else cut


def rotation(docs: dict[str, list[str]], rows: list[dict[str, str]], k: int, rng: np.random.Generator
             ) -> list[list[str]]:
    """k examples per row, of the row's own conditions, rotating through each condition's documents in a drawn order."""
    order = {key: rng.permutation(len(texts)) for key, texts in docs.items()}
    used = {key: 0 for key in docs}
    out = []
    for row in rows:
        key = condition_key(row)
        texts, perm = docs[key], order[key]
        picks = [texts[perm[(used[key] + i) % len(texts)]] for i in range(min(k, len(texts)))]
        used[key] += len(picks)
        out.append(picks)
    return out


def describe(values: dict[str, str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in values.items()) or "any"


def prompt(tokenizer, instruction: str, values: dict[str, str], examples: list[str]) -> str:
    """The few-shot prompt for one document, as text (the caller tokenizes it without adding special tokens)."""
    ask = f"Write one document. {describe(values)}."
    if getattr(tokenizer, "chat_template", None):
        turns = [{"role": "system", "content": instruction}]
        for ex in examples:
            turns += [{"role": "user", "content": ask}, {"role": "assistant", "content": ex}]
        turns.append({"role": "user", "content": ask})
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    eos = tokenizer.eos_token or ""
    head = f"{instruction}\n\n"
    return head + "".join(f"{describe(values)}\n{ex}{eos}\n" for ex in examples) + f"{describe(values)}\n"


def prompt_ids(tokenizer, instruction: str, values: dict[str, str], examples: list[str], limit: int) -> list[int]:
    """The prompt's token ids, at most `limit` of them (the context left after the document to write): examples
    are left out from the last while it is longer; with none left and still too long, the instruction is too."""
    for k in range(len(examples), -1, -1):
        ids = tokenizer(prompt(tokenizer, instruction, values, examples[:k]), add_special_tokens=False)["input_ids"]
        if len(ids) <= limit:
            return ids
    raise UserError(f"generator.params.instruction: the prompt without examples is {len(ids)} tokens, more than "
                    f"the {limit} the model's context leaves beside output.sampling.max_new_tokens")
