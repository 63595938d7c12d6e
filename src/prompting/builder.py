"""The one prompt builder used by training, inference and evaluation-time generation.

A training example and an inference prompt differ only by the completion: both come from
``PromptBuilder.encode_prompt``, and the completion is the summary followed by the template's own
end-of-turn token (or EOS), so the model learns to stop where inference expects it to.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from src.config import PromptConfig
from src.utils.errors import UserError

log = logging.getLogger(__name__)

# Llama 3.x templates print today's date; a fixed date keeps train and inference prompts identical.
TEMPLATE_KWARGS = {"date_string": "26 Jul 2024"}
INSTRUCTION_FORMAT = "### Instruction:\n{instruction}\n\n### Input:\n{dialogue}\n\n### Response:\n"
_SENTINEL = "\u2063SUMMARY\u2063"

Shot = tuple[str, str]  # (dialogue, summary)


@dataclass
class EncodedPrompt:
    """Token ids of one prompt and what the length budget did to it."""

    input_ids: list[int]
    n_shots: int
    dropped_shots: int = 0
    dropped_turns: int = 0
    cut_chars: bool = False

    @property
    def trimmed(self) -> bool:
        """True when the dialogue itself had to be shortened."""
        return self.dropped_turns > 0 or self.cut_chars


@dataclass
class PromptBuilder:
    """Renders dialogues into prompts with the tokenizer's chat template (or an instruction format)."""

    tokenizer: Any
    cfg: PromptConfig
    use_chat: bool = field(init=False)
    system_in_user: bool = field(init=False, default=False)
    completion_prefix: str = field(init=False, default="")
    turn_end: str = field(init=False, default="")
    add_bos: bool = field(init=False, default=False)
    shot_suffix: str = field(init=False, default="")

    def __post_init__(self) -> None:
        tok = self.tokenizer
        self.use_chat = bool(self.cfg.use_chat_template and getattr(tok, "chat_template", None))
        bos = tok.bos_token_id
        self.add_bos = bos is not None and tok("a", add_special_tokens=True)["input_ids"][:1] == [bos]
        if self.use_chat:
            self._probe_template()
        else:
            self.turn_end = tok.eos_token or ""
        if not self.turn_end:
            raise UserError("config key 'model.name': the tokenizer has no EOS token and its chat template no "
                            "end-of-turn marker, so a summary could never end; use a model whose tokenizer defines "
                            "eos_token")

    # ------------------------------------------------------------ rendering

    def messages(self, dialogue: str, shots: Sequence[Shot] = (), instruction: Optional[str] = None,
                 summary: Optional[str] = None) -> list[dict[str, str]]:
        """Chat messages: system, then one user/assistant pair per shot, then the dialogue."""
        instr = instruction or self.cfg.instruction
        msgs: list[dict[str, str]] = []
        for shot_dialogue, shot_summary in shots:
            msgs += [{"role": "user", "content": f"{instr}\n\n{shot_dialogue}"},
                     {"role": "assistant", "content": shot_summary + self.shot_suffix}]
        msgs.append({"role": "user", "content": f"{instr}\n\n{dialogue}"})
        if summary is not None:
            msgs.append({"role": "assistant", "content": summary})
        if self.cfg.system_prompt:
            if self.system_in_user:
                msgs[0] = {"role": "user", "content": f"{self.cfg.system_prompt}\n\n{msgs[0]['content']}"}
            else:
                msgs.insert(0, {"role": "system", "content": self.cfg.system_prompt})
        return msgs

    def render(self, dialogue: str, shots: Sequence[Shot] = (), instruction: Optional[str] = None) -> str:
        """The prompt text, ending with the generation header (assistant turn opener or '### Response:')."""
        if self.use_chat:
            return self._apply(self.messages(dialogue, shots, instruction), add_generation_prompt=True)
        instr = instruction or self.cfg.instruction
        parts = [self.cfg.system_prompt + "\n\n"] if self.cfg.system_prompt else []
        for shot_dialogue, shot_summary in shots:
            parts.append(INSTRUCTION_FORMAT.format(instruction=instr, dialogue=shot_dialogue) + shot_summary + "\n\n")
        parts.append(INSTRUCTION_FORMAT.format(instruction=instr, dialogue=dialogue))
        return "".join(parts)

    def _apply(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                                  **TEMPLATE_KWARGS)

    def _probe_template(self) -> None:
        """Find what the template puts between the prompt and the summary, and after the summary."""
        try:
            self._apply(self.messages("x"), add_generation_prompt=True)
        except Exception:  # some templates (e.g. Gemma) reject a system role: fold it into the user turn
            self.system_in_user = True
        prompt = self._apply(self.messages("x"), add_generation_prompt=True)
        full = self._apply(self.messages("x", summary=_SENTINEL), add_generation_prompt=False)
        at = full.find(_SENTINEL)
        if at < 0 or not full.startswith(prompt):
            log.warning("chat template renders a prompt that is not a prefix of the full conversation; "
                        "the completion is taken as summary + end-of-turn only")
        else:
            self.completion_prefix = full[len(prompt):at]
        self.turn_end = full[at + len(_SENTINEL):].rstrip() if at >= 0 else ""
        if not self.turn_end or not self._has_stop(self.turn_end):
            # e.g. SOLAR's template ends the assistant turn with nothing: EOS must be learnt explicitly,
            # and few-shot answers get the same ending so the prompt shows where an answer stops
            self.turn_end += self.tokenizer.eos_token or ""
            self.shot_suffix = self.turn_end + "\n\n"

    def _has_stop(self, text: str) -> bool:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return any(i in self.stop_token_ids for i in ids)

    # ------------------------------------------------------------ token ids

    @property
    def stop_token_ids(self) -> list[int]:
        """EOS plus the template's end-of-turn token(s): generation stops at any of them."""
        tok = self.tokenizer
        ids = [tok.eos_token_id] if tok.eos_token_id is not None else []
        special = set(tok.all_special_ids) | {i for i, t in tok.added_tokens_decoder.items() if t.special}
        for i in tok(self.turn_end, add_special_tokens=False)["input_ids"] if self.turn_end else []:
            if i in special and i not in ids and i != tok.pad_token_id:
                ids.append(i)
        return ids

    def ids(self, text: str) -> list[int]:
        """Token ids of a rendered prompt, with BOS added once when the model expects one."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        bos = self.tokenizer.bos_token_id
        if self.add_bos and (not ids or ids[0] != bos):
            ids = [bos] + ids
        return ids

    def completion_ids(self, summary: str) -> list[int]:
        """The training target: summary + end-of-turn/EOS, as the model should generate it."""
        text = f"{self.completion_prefix}{str(summary).strip()}{self.turn_end}"
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_prompt(self, dialogue: str, shots: Sequence[Shot] = (), instruction: Optional[str] = None) -> EncodedPrompt:
        """Prompt ids within ``prompt.max_prompt_tokens``: drop shots first, then dialogue turns."""
        budget = self.cfg.max_prompt_tokens
        shots = [(cap_dialogue(d, self.cfg.few_shot_max_chars), s) for d, s in shots]
        n_start = len(shots)
        ids = self.ids(self.render(dialogue, shots, instruction))
        while len(ids) > budget and shots:
            shots.pop()  # shots are ordered most useful first
            ids = self.ids(self.render(dialogue, shots, instruction))
        enc = EncodedPrompt(ids, n_shots=len(shots), dropped_shots=n_start - len(shots))
        if len(ids) > budget:
            enc = self._trim_dialogue(dialogue, instruction, enc)
        return enc

    def encode_example(self, dialogue: str, summary: str, shots: Sequence[Shot] = (),
                       instruction: Optional[str] = None) -> dict[str, Any]:
        """A training example: prompt ids + completion ids, labels masked (-100) on the prompt."""
        prompt = self.encode_prompt(dialogue, shots, instruction)
        completion = self.completion_ids(summary)
        return {"input_ids": prompt.input_ids + completion,
                "labels": [-100] * len(prompt.input_ids) + completion,
                "prompt_len": len(prompt.input_ids), "trimmed": prompt.trimmed,
                "dropped_shots": prompt.dropped_shots}

    # ------------------------------------------------------------ trimming

    def _fits(self, dialogue: str, instruction: Optional[str]) -> Optional[list[int]]:
        ids = self.ids(self.render(dialogue, (), instruction))
        return ids if len(ids) <= self.cfg.max_prompt_tokens else None

    def _trim_dialogue(self, dialogue: str, instruction: Optional[str], enc: EncodedPrompt) -> EncodedPrompt:
        """Keep as many whole turns as fit (binary search), chosen by ``prompt.dialogue_trim``."""
        turns = dialogue.split("\n")
        lo, hi, best = 1, len(turns) - 1, None
        while lo <= hi:
            k = (lo + hi) // 2
            ids = self._fits(keep_turns(turns, k, self.cfg.dialogue_trim), instruction)
            if ids is not None:
                best, lo = (k, ids), k + 1
            else:
                hi = k - 1
        if best is not None:
            return EncodedPrompt(best[1], 0, enc.dropped_shots, dropped_turns=len(turns) - best[0])
        return self._cut_chars(turns[0] if self.cfg.dialogue_trim != "tail" else turns[-1], instruction, enc, len(turns))

    def _cut_chars(self, turn: str, instruction: Optional[str], enc: EncodedPrompt, n_turns: int) -> EncodedPrompt:
        lo, hi, best = 0, len(turn), None
        while lo <= hi:
            k = (lo + hi) // 2
            ids = self._fits(turn[:k], instruction)
            if ids is not None:
                best, lo = ids, k + 1
            else:
                hi = k - 1
        if best is None:
            raise UserError(f"config key 'prompt.max_prompt_tokens' = {self.cfg.max_prompt_tokens} is smaller than "
                            "the system prompt, instruction and template alone; raise it")
        return EncodedPrompt(best, 0, enc.dropped_shots, dropped_turns=n_turns - 1, cut_chars=True)


def keep_turns(turns: list[str], k: int, policy: str) -> str:
    """``k`` of the turns: the first (head), the last (tail), or both ends (middle dropped)."""
    if policy == "head":
        kept = turns[:k]
    elif policy == "tail":
        kept = turns[-k:]
    else:
        front = (k + 1) // 2
        kept = turns[:front] + (turns[len(turns) - (k - front):] if k - front else [])
    return "\n".join(kept)


def cap_dialogue(dialogue: str, max_chars: int) -> str:
    """A few-shot example's dialogue cut to whole turns within ``max_chars`` (at least one turn)."""
    if len(dialogue) <= max_chars:
        return dialogue
    kept: list[str] = []
    total = 0
    for turn in dialogue.split("\n"):
        if kept and total + len(turn) + 1 > max_chars:
            break
        kept.append(turn)
        total += len(turn) + 1
    return "\n".join(kept)


def prompt_problems(tokenizer: Any, cfg: PromptConfig) -> list[str]:
    """What would stop the builder for this tokenizer: no stop token, or a budget the template alone exceeds."""
    try:
        PromptBuilder(tokenizer, cfg).encode_prompt("#Person1#: 안녕하세요.\n#Person2#: 네, 안녕하세요.")
    except UserError as exc:
        return exc.problems
    return []
