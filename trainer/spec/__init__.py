"""The vocabulary floor: the torch-free facts every other module shares, each defined once. Nothing here imports
a module above it; the trainer's core, the tiny world, the commands, the studio and the benchmarks all stand on it.

run_folder.py         a run folder's files and the events of metrics.jsonl (the studio <-> trainer contract)
config.py             the one training config (TrainConfig), its problems and its reference (docs/config.md)
field_values.py       a raw JSON/TOML value checked against a field's type
bounds.py             what a clip, a number or a text may be: the token budgets of a GPU and a CPU, text limits
machine.py            a config judged against the machine (config_problems_on): bounds, device budget, memory
video_shape.py        the one video-shape rule (multiples of 16, 4k+1 frames)
generate_settings.py  the generation settings (defaults, presets, bounds) of generate, evaluate, worker and tab
schedules.py          the learning-rate schedules
user_cache.py         what is built once into the user cache, and how
embedded.py           the names "tiny" and "sample", resolved through the tiny world's plug-in, loaded by name
"""
