"""Judge with any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, Ollama, OpenAI).

Each (user, item) is asked twice, once per perspective (:mod:`..prompts`). The answer
must be exactly High, Mid or Low (:func:`..prompts.parse_label`). An unparseable answer
(base models answer chat requests with empty or unrelated text) is asked once more, with
a reminder of the three words, ``answer_tries`` times in all, and then recorded as
``unknown``, never guessed. When the first ``garbage_after`` answers of a run were all
unparseable, the endpoint is taken to be unable to follow the instruction: later pairs get
one try each (a warning says so), so a broken model costs one request per question, not
several. Transport errors and timeouts are retried with exponential backoff (``retries``);
a request that still fails is not recorded (a later run asks again) and counted as an
error. ``concurrency`` requests run at once.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Dict, List, Optional, Sequence, Tuple

from ..endpoint import EndpointFailure, post_json
from ..prompts import PROMPT_VERSION, SYSTEM, item_centric_prompt, parse_label, user_centric_prompt

#: the follow-up after an unparseable answer
REMINDER = "Answer with exactly one word: High, Mid or Low."
from .base import Judge, JudgeInputs, UserTask


class EndpointError(RuntimeError):
    pass


class OpenAIChatJudge(Judge):
    kind = "label"

    def __init__(self, base_url: str, model: Optional[str] = None, *, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 4, timeout_s: float = 60.0, retries: int = 3, backoff_s: float = 0.5,
                 max_tokens: int = 4, answer_tries: int = 2, garbage_after: int = 16) -> None:
        u = base_url.rstrip("/")
        self.url = u if u.endswith("/chat/completions") else u + "/chat/completions"
        self.model = model or "default"
        self.api_key = os.environ.get(api_key_env, "")
        self.concurrency, self.timeout_s = max(1, int(concurrency)), float(timeout_s)
        self.retries, self.backoff_s, self.max_tokens = int(retries), float(backoff_s), int(max_tokens)
        self.answer_tries, self.garbage_after = max(1, int(answer_tries)), int(garbage_after)
        self._lock = threading.Lock()
        self._answers = self._parsed = 0
        self.name = f"openai-chat:{self.model}"
        self.version = PROMPT_VERSION

    def prompt_identity(self) -> str:
        from ..prompts import SYSTEM, item_centric_prompt, user_centric_prompt
        return "\x00".join([SYSTEM, user_centric_prompt("\x01P", "\x01I", "\x01N"),
                             item_centric_prompt(["\x01H"], "\x01I", "\x01N"), self.url,
                             f"temperature=0 max_tokens={self.max_tokens}"])

    # -- one request ------------------------------------------------------------------
    def ask(self, system: str, prompt: str, reminder: bool = False) -> str:
        """The answer text; raises :class:`EndpointError` after the transport retries."""
        messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
        if reminder:
            messages.append({"role": "user", "content": REMINDER})
        payload = {"model": self.model, "temperature": 0, "max_tokens": self.max_tokens, "messages": messages}
        try:
            return post_json(self.url, payload, lambda data: str(data["choices"][0]["message"]["content"] or ""),
                             api_key=self.api_key, timeout_s=self.timeout_s, retries=self.retries,
                             backoff_s=self.backoff_s)
        except EndpointFailure as e:
            raise EndpointError(f"{self.url}: {e}") from None

    @property
    def answers_garbage(self) -> bool:
        """Whether the first ``garbage_after`` answers were all unparseable."""
        return self._answers >= self.garbage_after > 0 and self._parsed == 0

    def judge_one(self, prompt: str, system: str) -> Tuple[str, str, int]:
        """(label or 'unknown', last raw answer, tries) for one prompt."""
        raw = ""
        tries = 1 if self.answers_garbage else self.answer_tries
        for attempt in range(tries):
            raw = self.ask(system, prompt, reminder=attempt > 0)
            lab = parse_label(raw)
            with self._lock:
                self._answers += 1
                self._parsed += lab is not None
            if lab is not None:
                return lab, raw, attempt + 1
        return "unknown", raw, tries

    # -- the batch ---------------------------------------------------------------------
    def run(self, tasks: Sequence[UserTask], inputs: JudgeInputs, cache, progress: bool = False) -> Dict[str, float]:
        system = SYSTEM.format(noun=inputs.noun)
        jobs: List[Tuple[int, int, str, str]] = []
        for t in tasks:
            hist = [inputs.item_name[j] for j in t.context]
            for i in t.items:
                for p in ("user", "item"):
                    if self.key(inputs, t.user, i, p) in cache:
                        continue
                    prompt = (user_centric_prompt(inputs.user_profile[t.user], inputs.item_text[i], inputs.noun)
                              if p == "user" else item_centric_prompt(hist, inputs.item_text[i], inputs.noun))
                    jobs.append((t.user, i, p, prompt))
        stats = {"judged": 0.0, "unknown": 0.0, "errors": 0.0, "retries": 0.0}
        if not jobs:
            return stats
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(jobs), desc="judge (chat)", unit="q")
        first_error: Optional[str] = None
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futs = {pool.submit(self.judge_one, j[3], system): j for j in jobs}
            try:
                for fut in as_completed(futs):
                    u, i, p, _ = futs[fut]
                    try:
                        lab, raw, tries = fut.result()
                    except EndpointError as e:
                        stats["errors"] += 1
                        first_error = first_error or str(e)
                    else:
                        cache.put(self.record(inputs, u, i, p, "cand", label=lab, raw=raw[:200]))
                        stats["judged"] += 1
                        stats["unknown"] += lab == "unknown"
                        stats["retries"] += tries - 1
                    if bar is not None:
                        bar.update(1)
            except KeyboardInterrupt:
                for f in futs:
                    f.cancel()
                raise
        if bar is not None:
            bar.close()
        stats["answers_garbage"] = float(self.answers_garbage)
        if self.answers_garbage:
            import warnings
            warnings.warn(f"{self.url}: none of the first {self._answers} answers was High, Mid or Low (a base model, "
                          f"or a chat template the server does not apply?); each later question was asked once and "
                          f"its answer recorded as unknown", stacklevel=2)
        if stats["errors"] and not stats["judged"]:
            raise EndpointError(f"every request to the chat endpoint failed ({int(stats['errors'])}); first: {first_error}")
        return stats
