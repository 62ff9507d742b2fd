"""Offline models and demo data: what the tests, the demo and the CPU runs use instead of a hub.

Modules: ``tiny_qwen`` and ``tiny_qwen3vl`` (tiny random-weight Qwen2.5-VL and Qwen3-VL built
with no download; ``qwen3vl_templates`` holds Qwen3-VL's chat templates), ``demo`` (a small demo
workspace), ``learn_task`` and ``count_task`` (the CPU learning run's and the ablation study's
tasks) and ``fake_endpoint`` (a scripted OpenAI-compatible chat server, no model).
"""
