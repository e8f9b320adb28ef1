"""Any Hugging Face causal language model directory on disk, streamed as it generates.

`generate()` runs in a thread and hands each new token to a text streamer;
this backend yields from the streamer and, when the job must stop, trips a
stopping criterion so generation ends at the next token.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from inference.backends import model_files
from inference.backends.base import Backend, BackendConfig, BackendError, ShouldStop, cpu_threads
from inference.backends.text_stream import apply_stops, stop_list

# For tokenizers that ship no chat template (base models): plain "role: text" lines.
PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
# The generation thread gets this long to notice a stop before the backend gives up on it.
GENERATION_JOIN_SECONDS = 30


class TransformersConfig(BackendConfig):
    path: str = Field(min_length=1, description="A Hugging Face model directory (config, weights, tokenizer).")
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$", description="Torch device.")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field("float32", description="Weights' dtype.")
    chat_template: str | None = Field(
        None, min_length=1, description="A Jinja chat template; default: the tokenizer's, else plain 'role: text'."
    )


class TransformersBackend(Backend):
    """Chat and completions from a local Hugging Face causal LM, one token at a time."""

    key = "transformers"
    tasks = frozenset({"chat", "completion"})
    Config = TransformersConfig
    config: TransformersConfig

    def __init__(self, config: TransformersConfig):
        super().__init__(config)
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        directory = str(model_files.existing_path(self.config.path, directory=True))
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        if torch.get_num_threads() != cpu_threads():
            torch.set_num_threads(cpu_threads())  # process-wide: every torch model here shares them
        dtype = self.config.dtype if self.config.dtype == "auto" else getattr(torch, self.config.dtype)
        self._tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, dtype=dtype)
        self._model = model.to(self.config.device).eval()

    def close(self) -> None:
        self._model = None
        self._tokenizer = None

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise BackendError("model_unavailable", "The model is not loaded.")
        return self._tokenizer

    def prompt_text(self, job_input: dict[str, Any]) -> str:
        if "prompt" in job_input:
            return job_input["prompt"]
        template = self.config.chat_template or getattr(self.tokenizer, "chat_template", None) or PLAIN_CHAT_TEMPLATE
        messages = [{"role": m["role"], "content": m["content"]} for m in job_input["messages"]]
        return self.tokenizer.apply_chat_template(
            messages, chat_template=template, add_generation_prompt=True, tokenize=False
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _context_length(self) -> int | None:
        config = self._model.config
        return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)

    def stream(self, job_input: dict[str, Any], should_stop: ShouldStop) -> Iterator[str]:
        if self._model is None:
            raise BackendError("model_unavailable", "The model is not loaded.")
        with self._lock:
            yield from apply_stops(self._generate(job_input, should_stop), stop_list(job_input.get("stop")))

    def _generate(self, job_input: dict[str, Any], should_stop: ShouldStop) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteriaList

        from inference.backends.token_streamer import TokenStreamer

        chat = "messages" in job_input
        encoded = self.tokenizer(self.prompt_text(job_input), add_special_tokens=not chat, return_tensors="pt")
        prompt_length = encoded["input_ids"].shape[1]
        max_new_tokens = job_input.get("max_tokens", 256)
        context = self._context_length()
        if context is not None:
            if prompt_length >= context:
                raise BackendError(
                    "context_length_exceeded", f"The prompt is {prompt_length} tokens; this model reads {context}."
                )
            max_new_tokens = min(max_new_tokens, context - prompt_length)

        halt = threading.Event()
        streamer = TokenStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        temperature = job_input.get("temperature", 1.0)
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            sampling = {"do_sample": True, "temperature": temperature, "top_p": job_input.get("top_p", 1.0)}
        kwargs = {
            **{name: tensor.to(self.config.device) for name, tensor in encoded.items()},
            **sampling,
            "max_new_tokens": max_new_tokens,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_HaltWhenSet(halt)]),
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        }
        failure: list[BaseException] = []

        def run() -> None:
            try:
                if job_input.get("seed") is not None:
                    torch.manual_seed(job_input["seed"])
                with torch.inference_mode():
                    self._model.generate(**kwargs)
            except BaseException as exc:  # handed to the consuming thread, which raises it
                failure.append(exc)
            finally:
                streamer.end()

        thread = threading.Thread(target=run, name="transformers-generate", daemon=True)
        thread.start()
        try:
            for text in streamer:
                if should_stop():
                    return
                yield text
        finally:
            halt.set()
            thread.join(timeout=GENERATION_JOIN_SECONDS)
        if failure:
            raise BackendError("generation_failed", f"Generation failed: {failure[0]}") from failure[0]


class _HaltWhenSet:
    """A stopping criterion that ends generation once `event` is set (cancel, lost lease, stop sequence)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)
