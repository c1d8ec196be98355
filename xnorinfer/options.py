"""Session options as onnxruntime spells them.

`InferenceSession(path, sess_options, providers)` takes an `xnorinfer.SessionOptions` or an
`onnxruntime.SessionOptions` (read by attribute name, so onnxruntime need not be installed to use
ours).  What xnorinfer honours:

    intra_op_num_threads      threads for the kernels (0: every core, or XNORINFER_NUM_THREADS)
    enable_profiling          a Chrome-trace JSON of every step run (profiling.py); end_profiling()
    profile_file_prefix       ... writes it to <prefix><date>_<time>.json and returns the path
    log_severity_level        0 verbose .. 4 fatal: sets the level of the "xnorinfer" logger (process-wide,
                              as onnxruntime's default logger is; -1, the default: left as it is)
    graph_optimization_level  ORT_DISABLE_ALL: every layer as the file states it (no binarization)
    logid                     a prefix of the session's log messages

Settings that change what onnxruntime would do but that xnorinfer does not implement (parallel
execution mode, writing an optimized model) raise a warning naming them; memory-planning switches
(enable_cpu_mem_arena, enable_mem_pattern, enable_mem_reuse) have no effect (the C runtime plans one
arena per model either way) and are accepted silently, as are use_deterministic_compute (runs are
deterministic anyway), execution_order (one order: the planned graph's), use_per_session_threads (the
kernels share one process-wide pool; intra_op_num_threads bounds what a session uses of it) and
log_verbosity_level.  Free-dimension overrides, external initializers and custom-op libraries set on
an onnxruntime.SessionOptions cannot be read back from it and are not applied.
"""
import enum
import logging
import warnings
from dataclasses import dataclass
from typing import Any, Dict, Optional, Type, TypeVar

E = TypeVar("E", bound=enum.IntEnum)


# The providers a session accepts: xnorinfer's own name, and onnxruntime's CPU provider (xnorinfer is a
# CPU engine: code written for onnxruntime's CPU provider runs unchanged).
PROVIDERS = ("XnorinferExecutionProvider", "CPUExecutionProvider")


def get_available_providers() -> list:
    """As onnxruntime.get_available_providers()."""
    return list(PROVIDERS)


def get_device() -> str:
    """As onnxruntime.get_device(): where sessions run."""
    return "CPU"


class GraphOptimizationLevel(enum.IntEnum):
    """onnxruntime.GraphOptimizationLevel's values.  xnorinfer has one optimization (planning the
    binary layers onto packed kernels, exact either way): every level but ORT_DISABLE_ALL enables it."""
    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_LAYOUT = 3
    ORT_ENABLE_ALL = 99


class ExecutionMode(enum.IntEnum):
    """onnxruntime.ExecutionMode's values; xnorinfer runs steps in sequence (ORT_SEQUENTIAL)."""
    ORT_SEQUENTIAL = 0
    ORT_PARALLEL = 1


class ExecutionOrder(enum.IntEnum):
    """onnxruntime.ExecutionOrder's values; xnorinfer runs nodes in the planned graph's order."""
    DEFAULT = 0
    PRIORITY_BASED = 1
    MEMORY_EFFICIENT = 2


_DEFAULTS = {
    "intra_op_num_threads": 0, "inter_op_num_threads": 0, "enable_profiling": False,
    "profile_file_prefix": "xnorinfer_profile_", "log_severity_level": -1, "log_verbosity_level": 0,
    "logid": "", "graph_optimization_level": GraphOptimizationLevel.ORT_ENABLE_ALL,
    "execution_mode": ExecutionMode.ORT_SEQUENTIAL, "execution_order": ExecutionOrder.DEFAULT,
    "optimized_model_filepath": "", "use_per_session_threads": True,
    "enable_cpu_mem_arena": True, "enable_mem_pattern": True, "enable_mem_reuse": True,
    "use_deterministic_compute": False,
}
_CHECKS = {
    "intra_op_num_threads": (int, lambda v: v >= 0, "an int >= 0 (0: every core)"),
    "inter_op_num_threads": (int, lambda v: v >= 0, "an int >= 0"),
    "log_severity_level": (int, lambda v: -1 <= v <= 4, "an int from 0 (verbose) to 4 (fatal), or -1 (not set)"),
    "log_verbosity_level": (int, lambda v: v >= 0, "an int >= 0"),
    "profile_file_prefix": (str, None, "a str"),
    "logid": (str, None, "a str"),
    "optimized_model_filepath": (str, None, "a str"),
}


class SessionOptions:
    """onnxruntime.SessionOptions' attributes (see the module's docstring for what each does here).
    Setting an attribute onnxruntime does not have is an AttributeError, as it is there."""

    __slots__ = tuple(_DEFAULTS) + ("_config",)
    _config: Dict[str, str]

    def __init__(self) -> None:
        for name, value in _DEFAULTS.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_config", {})

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _DEFAULTS:
            raise AttributeError(f"'SessionOptions' object has no attribute {name!r}")
        object.__setattr__(self, name, _checked(name, value))

    def add_session_config_entry(self, key: str, value: str) -> None:
        """Kept and returned by get_session_config_entry; xnorinfer reads no entries (a warning says
        so when the session starts)."""
        self._config[str(key)] = str(value)

    def get_session_config_entry(self, key: str) -> str:
        if key not in self._config:
            raise RuntimeError(f"SessionOptions does not have configuration with key: {key}")
        return self._config[key]

    def __repr__(self) -> str:
        changed = {k: getattr(self, k) for k in _DEFAULTS if getattr(self, k) != _DEFAULTS[k]}
        return f"SessionOptions({', '.join(f'{k}={v!r}' for k, v in changed.items())})"


def _checked(name: str, value: Any) -> Any:
    if name == "graph_optimization_level":
        return _enum(GraphOptimizationLevel, value, name)
    if name == "execution_mode":
        return _enum(ExecutionMode, value, name)
    if name == "execution_order":
        return _enum(ExecutionOrder, value, name)
    if name in _CHECKS:
        kind, ok, what = _CHECKS[name]
        if not isinstance(value, kind) or isinstance(value, bool) or (ok is not None and not ok(value)):
            raise TypeError(f"SessionOptions.{name} must be {what}, got {value!r}")
        return value
    if not isinstance(value, bool):
        raise TypeError(f"SessionOptions.{name} must be a bool, got {value!r}")
    return value


def _enum(cls: Type[E], value: Any, name: str) -> E:
    """Our enum member for ours, onnxruntime's (a pybind11 enum: int() and .name) or an int."""
    try:
        return cls(int(value))
    except (TypeError, ValueError):
        raise ValueError(f"SessionOptions.{name}: {value!r} is not one of {[m.name for m in cls]}") from None


@dataclass
class Settings:
    """What a session takes from its options and arguments."""
    num_threads: Optional[int] = None   # None: the pool's size
    binarize: bool = True
    profiling: bool = False
    profile_prefix: str = "xnorinfer_profile_"
    log_level: Optional[int] = None     # a logging level to set on the "xnorinfer" logger, or None
    logid: str = ""


LOG_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.WARNING, 3: logging.ERROR, 4: logging.CRITICAL}


def settings(sess_options: Any, num_threads: Optional[int] = None, binarize_layers: bool = True) -> "Settings":
    """Settings from sess_options (ours, onnxruntime's, or None) and the session's own keywords."""
    if sess_options is None:
        return Settings(num_threads=num_threads, binarize=binarize_layers)
    if not isinstance(sess_options, SessionOptions) and not _is_ort_options(sess_options):
        raise TypeError("sess_options must be an xnorinfer.SessionOptions or an onnxruntime.SessionOptions, "
                        f"got {type(sess_options).__name__}")
    read = {name: _checked(name, getattr(sess_options, name, default)) for name, default in _DEFAULTS.items()}
    _warn_unsupported(read, sess_options)
    threads = read["intra_op_num_threads"] or None
    if num_threads is not None and threads is not None and num_threads != threads:
        raise ValueError(f"num_threads={num_threads} and sess_options.intra_op_num_threads={threads} disagree")
    binarize = read["graph_optimization_level"] != GraphOptimizationLevel.ORT_DISABLE_ALL
    return Settings(num_threads=num_threads if num_threads is not None else threads,
                    binarize=binarize and binarize_layers, profiling=read["enable_profiling"],
                    profile_prefix=read["profile_file_prefix"], log_level=LOG_LEVELS.get(read["log_severity_level"]),
                    logid=read["logid"])


def _is_ort_options(obj: Any) -> bool:
    cls = type(obj)
    return cls.__name__ == "SessionOptions" and cls.__module__.split(".")[0] == "onnxruntime"


def _warn_unsupported(read: Dict[str, Any], sess_options: Any) -> None:
    notes = []
    if read["execution_mode"] == ExecutionMode.ORT_PARALLEL:
        notes.append("execution_mode=ORT_PARALLEL (steps run in sequence; intra_op_num_threads sets the kernels' "
                     "threads)")
    if read["optimized_model_filepath"]:
        notes.append(f"optimized_model_filepath={read['optimized_model_filepath']!r} (nothing is written; "
                     "InferenceSession.save() or `xnorinfer convert` writes the planned model as .xnor)")
    if isinstance(sess_options, SessionOptions) and sess_options._config:
        notes.append(f"session config entries {sorted(sess_options._config)} (none is read)")
    for note in notes:
        warnings.warn(f"xnorinfer does not support SessionOptions {note}", RuntimeWarning, stacklevel=4)
