"""RL preprocessing: public multimodal RL sets to verl 0.9.1 RL parquet with the SRPO prompt.

Modules: ``prepare_rl`` (the command, run as ``python -m srpo_data.prepare_rl``), ``sources``
(one row builder per public layout, and their registry), ``rows`` (question, answer and images
to a verl row; shared with the eval converters), ``readers`` (parquet, HF ``save_to_disk``,
JSONL/JSON, CSV, read lazily) and ``prompt_length`` (a row's prompt length as verl counts it).
"""
