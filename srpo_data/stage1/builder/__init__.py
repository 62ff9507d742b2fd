"""Stage 1 of SRPO: the reflection SFT data builder (``python -m srpo_data.build_reflections``).

Modules: ``config`` (endpoint and run settings), ``inputs`` (RL parquet / JSONL rows),
``client`` (OpenAI-compatible calls with retries), ``store`` (durable JSONL step store),
``steps`` (prompts, parsing, target, filter: pure), ``pipeline`` (the async run), ``outputs``
(verl SFT parquet, LLaMA-Factory sharegpt JSON), ``run`` (one build), ``prompts/*.txt`` (the
policy's and teacher's prompts). The scripted server the tests and benchmarks ask instead of a
model is :mod:`srpo_data.offline.fake_endpoint`; the real-model tests use ``transformers serve``.
"""
