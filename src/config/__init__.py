"""One typed config tree: the schema (``schema``), loading YAML and overrides (``loading``), cross-key rules (``checks``)."""
from src.config.checks import check_config, config_problems
from src.config.loading import (all_keys, build_config, coerce, load_config, parse_overrides, read_yaml, resolve_input, resolve_path,
                                section_problems, to_dict)
from src.config.schema import (AUTO, BLOCKABLE_SCRIPTS, DEBUG_OVERLAY, DEFAULT_CONFIG, REPO_ROOT, SPLITS, ApiConfig, AugmentationConfig,
                               ColumnMap, Config, DataConfig, EvaluationConfig, HubSource, HubSplits, InferenceConfig,
                               LoraConfig, MbrConfig, MergeConfig, ModelConfig, PathsConfig, PreprocessConfig, PromptConfig, RlConfig,
                               Seq2SeqConfig, SplitFractions, SplitRows, TrainingConfig, TuneConfig, opt,
                               sub)

__all__ = ["AUTO", "BLOCKABLE_SCRIPTS", "DEBUG_OVERLAY", "DEFAULT_CONFIG", "REPO_ROOT", "SPLITS", "ApiConfig", "AugmentationConfig", "ColumnMap", "Config",
           "DataConfig", "EvaluationConfig", "HubSource", "HubSplits", "InferenceConfig", "LoraConfig", "MbrConfig", "MergeConfig",
           "ModelConfig", "PathsConfig", "PreprocessConfig", "PromptConfig", "RlConfig", "Seq2SeqConfig", "SplitFractions",
           "SplitRows", "TrainingConfig", "TuneConfig", "all_keys", "build_config", "check_config", "coerce", "config_problems",
           "load_config", "opt", "parse_overrides", "read_yaml", "resolve_input", "resolve_path", "section_problems", "sub", "to_dict"]
