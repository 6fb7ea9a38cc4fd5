"""Chat templates: a list of {"role", "content"} messages as the prompt text an in-process model
continues (what an HF tokenizer's chat template renders, written out for the families the
project loads), so that `/v1/chat/completions` works on the project's server.

    chat.render([{"role": "user", "content": "Hi"}], "gemma")
    # '<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n'

Gemma has no system role: a system message is put before the first user message (as Gemma's
own template does). The family of a tokenizer is found by its special pieces (`family`).
"""

from __future__ import annotations

from typing import Optional, Sequence

ROLES = ("system", "user", "assistant")

# family -> (turn opening by role, turn end, assistant opening for generation)
_TEMPLATES = {
    "gemma": ({"user": "<start_of_turn>user\n", "assistant": "<start_of_turn>model\n"},
              "<end_of_turn>\n", "<start_of_turn>model\n"),
    "chatml": ({"system": "<|im_start|>system\n", "user": "<|im_start|>user\n",
                "assistant": "<|im_start|>assistant\n"}, "<|im_end|>\n",
               "<|im_start|>assistant\n"),
    "llama3": ({r: f"<|start_header_id|>{r}<|end_header_id|>\n\n" for r in ROLES},
               "<|eot_id|>", "<|start_header_id|>assistant<|end_header_id|>\n\n"),
}
_MARKERS = {"gemma": ("<start_of_turn>", "<end_of_turn>"),
            "chatml": ("<|im_start|>", "<|im_end|>"),
            "llama3": ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")}


def _piece_id(vocab, piece: str) -> Optional[int]:
  """The id of a special piece in a SentencePiece or tokenizer.json vocabulary, else None."""
  sp = getattr(vocab, "tokenizer", None)            # seqio.SentencePieceVocabulary
  if sp is not None and hasattr(sp, "piece_to_id"):
    i = sp.piece_to_id(piece)
    return None if i == sp.unk_id() else int(i)
  tok = getattr(vocab, "_tok", None)                # vocab.HFTokenizerVocabulary
  if tok is not None:
    i = tok.token_to_id(piece)
    return None if i is None else int(i)
  return None


def special_ids(vocab) -> tuple[Optional[str], dict]:
  """(chat family, {marker: id}) of the first family whose turn markers are all single
  pieces of the vocabulary; (None, {}) for a byte-level or plain model. SentencePiece does not
  turn marker text into these control ids, so the model's `encode` maps them itself."""
  for name, markers in _MARKERS.items():
    ids = {m: _piece_id(vocab, m) for m in markers}
    if all(i is not None for i in ids.values()):
      return name, ids
  return None, {}


def render(messages: Sequence[dict], fam: str) -> str:
  """The prompt of `messages` in family `fam`'s template, ending with the assistant's opening.
  A ValueError names the message with an unknown role or non-string content."""
  if fam not in _TEMPLATES:
    raise ValueError(f"no chat template for family {fam!r}; known: {sorted(_TEMPLATES)}")
  opens, end, gen = _TEMPLATES[fam]
  out, system = [], ""
  for i, m in enumerate(messages):
    role, content = m.get("role"), m.get("content")
    if role not in ROLES or not isinstance(content, str):
      raise ValueError(f"messages[{i}]: needs role in {ROLES} and string content, got "
                       f"role={role!r}")
    if role == "system" and role not in opens:
      system += content + "\n\n"
      continue
    if role == "user" and system:
      content, system = system + content, ""
    out.append(opens[role] + content + end)
  if not out and not system:
    raise ValueError("chat: no messages")
  if system:
    out.append(opens["user"] + system.rstrip("\n") + end)
  return "".join(out) + gen
