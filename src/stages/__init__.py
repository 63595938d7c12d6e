"""The pipeline stages, one module each, in the order ``src.pipeline.STAGES`` runs them (see its docstring).

Their names, skip flags and opt-in keys are declared here, where the command line reads them without importing
the stage modules (``--help`` stays instant); ``src.pipeline`` checks that its stage table matches.
"""
STAGE_NAMES: tuple[str, ...] = ("preprocess", "augment", "merge", "train", "rl", "tune", "infer", "evaluate")
SKIP_FLAGS: dict[str, str] = {"preprocess": "--skip-preprocess", "augment": "--skip-augmentation",
                              "merge": "--skip-merge", "train": "--skip-training", "rl": "--skip-rl",
                              "tune": "--skip-tune", "infer": "--skip-inference", "evaluate": "--skip-evaluation"}
OPT_IN: dict[str, str] = {"rl": "rl.enabled"}  # off unless this key is true or --stages names the stage
