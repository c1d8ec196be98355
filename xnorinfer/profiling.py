"""Profiles in onnxruntime's format: a JSON list of Chrome trace events (open it in Perfetto or
chrome://tracing), one "X" (complete) event per step run:

    {"cat": "Node", "name": "<layer>_kernel_time", "ph": "X", "ts": <us>, "dur": <us>, "pid": ..., "tid": ...,
     "args": {"op_name": "XBConv", "layer": "<layer>", "format": "binary", "provider": "XnorinferExecutionProvider",
              "executor": "c", "kernel": "bconv", "threads": 2, "run": 0, "step": 3,
              "input_type_shape": [{"bits": [1, 32, 32, 1]}, ...], "output_type_shape": [{"float": [1, 32, 32, 64]}]}}

`ts` counts microseconds from the start of profiling.  `format` is "binary" for the steps of a layer
that reads packed bits (its op declares packed inputs), else the kind of the step's first input
("float", "int", "bool").  Packed tensors are shown as
stored: type "bits", the last dimension in 64-bit words.  `kernel` is the C runtime's op (the C
executor runs a layer as one or more such steps; the Python executor, one step per graph node).

Both executors add their events here; when profiling is off nothing here runs.
"""
import json
import os
import threading
import time

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .operators import OPS, Packed

PROVIDER = "XnorinferExecutionProvider"
MAX_EVENTS = 1_000_000   # as onnxruntime caps its profiler; later steps are counted, not kept

_KIND = {"f": "float", "i": "int", "u": "int", "b": "bool"}


def type_shape(value: Any) -> Dict[str, List[int]]:
    """onnxruntime's {"<type>": [dims]} of a value of the Python executor."""
    if isinstance(value, Packed):
        if value.words is not None:
            return {"bits": list(value.words.shape)}
        value = value.dense
    arr = np.asarray(value)
    return {_KIND.get(arr.dtype.kind, str(arr.dtype)): list(arr.shape)}


def step_format(op: str, input_shapes: Sequence[Dict[str, List[int]]]) -> str:
    """"binary" for a step of a layer on packed bits, else the kind of the step's first input."""
    opdef = OPS.get(op)
    if (opdef is not None and opdef.packed_inputs) or any("bits" in t for t in input_shapes):
        return "binary"
    return next(iter(input_shapes[0])) if input_shapes else "none"


class Trace:
    """The steps of one session's profile.  A run records its steps' raw figures (the C runtime's:
    one array of times per run); the events are built when written, so a profiled run costs little
    more than an unprofiled one."""

    def __init__(self, prefix: str, threads: int) -> None:
        self.prefix, self.threads = prefix, threads
        self.start_ns = time.time_ns()                 # onnxruntime's get_profiling_start_time_ns
        self._t0 = time.perf_counter_ns()
        self._records: List[tuple] = []                # ("step", fields...) or ("c_run", fields...)
        self.kept, self.dropped, self.runs = 0, 0, 0
        self._lock = threading.Lock()

    def now_us(self) -> float:
        return (time.perf_counter_ns() - self._t0) / 1e3

    def begin_run(self) -> int:
        with self._lock:
            self.runs += 1
            return self.runs - 1

    def _keep(self, record: tuple, steps: int) -> None:
        with self._lock:
            if self.kept + steps <= MAX_EVENTS:
                self._records.append(record)
                self.kept += steps
            else:
                self.dropped += steps

    def add(self, *, layer: str, op: str, kernel: str, executor: str, ts: float, dur: float,
            inputs: List[Dict[str, List[int]]], outputs: List[Dict[str, List[int]]], step: int, run: int,
            threads: Optional[int] = None) -> None:
        """One step."""
        self._keep(("step", layer, op, kernel, executor, ts, dur, inputs, outputs, step, run,
                    threads or self.threads, threading.get_native_id()), 1)

    def add_c_run(self, layout: Sequence[tuple], nodes: Sequence[Tuple[str, str]], started: float, times: Any,
                  run: int, threads: int) -> None:
        """The steps of one C runtime run: layout[s] = (kernel, _, inputs, outputs) and nodes[s] = (layer,
        op) as CModel.step_layout and Program.step_nodes give them, times (steps, 2) = start and duration
        from the run's start (us), `started` when the run began on this trace's clock."""
        self._keep(("c_run", layout, nodes, started, times, run, threads, threading.get_native_id()), len(layout))

    def events(self) -> List[Dict[str, Any]]:
        """The trace events so far, in time order."""
        with self._lock:
            records = list(self._records)
        events = []
        for r in records:
            if r[0] == "step":
                events.append(_event(*r[1:]))
                continue
            _, layout, nodes, started, times, run, threads, tid = r
            for step, ((kernel, _, ins, outs), (layer, op)) in enumerate(zip(layout, nodes)):
                events.append(_event(layer, op, kernel, "c", started + float(times[step][0]), float(times[step][1]),
                                     ins, outs, step, run, threads, tid))
        events.sort(key=lambda e: e["ts"])
        return events

    def write(self, path: Optional[str] = None) -> str:
        """Write the events as JSON (default path: <prefix><local date>_<time>.json); returns the path."""
        if path is None:
            path = self.prefix + time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(self.start_ns / 1e9)) + ".json"
        events = self.events()
        with open(path, "w") as f:
            json.dump(events, f, indent=0, separators=(",", ":"))
        return os.fspath(path)


def _event(layer: str, op: str, kernel: str, executor: str, ts: float, dur: float, inputs: List[Dict[str, List[int]]],
           outputs: List[Dict[str, List[int]]], step: int, run: int, threads: int, tid: int) -> Dict[str, Any]:
    return {"cat": "Node", "name": f"{layer}_kernel_time", "ph": "X", "ts": round(ts, 3), "dur": round(dur, 3),
            "pid": os.getpid(), "tid": tid,
            "args": {"op_name": op, "layer": layer, "format": step_format(op, inputs), "provider": PROVIDER,
                     "executor": executor, "kernel": kernel, "threads": threads, "run": run, "step": step,
                     "input_type_shape": inputs, "output_type_shape": outputs}}


def run_python_steps(steps: Sequence[Any], constants: Dict[str, Any], feeds: Dict[str, Any], trace: Trace,
                     run: int) -> Dict[str, Any]:
    """executor.run_steps, timing each step into `trace`."""
    env = dict(constants)
    env.update(feeds)
    for index, step in enumerate(steps):
        node = step.node
        args = [env[n] if n else None for n in node.inputs]
        ts = trace.now_us()
        outs = step.fn(*args)
        dur = trace.now_us() - ts
        for name, value in zip(node.outputs, outs):
            if name:
                env[name] = value
        trace.add(layer=node.name, op=node.op, kernel=node.op, executor="python", ts=ts, dur=dur,
                  inputs=[type_shape(a) for a in args if a is not None],
                  outputs=[type_shape(o) for name, o in zip(node.outputs, outs) if name], step=index, run=run)
    return env


def summarize(events: Union[List[Dict[str, Any]], str, "os.PathLike[str]"]) -> str:
    """A table of time by op (graph op, format), from trace events (a list, or a path to a trace)."""
    items: List[Dict[str, Any]]
    if isinstance(events, (str, os.PathLike)):
        with open(events) as f:
            items = json.load(f)
    else:
        items = events
    steps = [e for e in items if e.get("cat") == "Node" and e.get("ph") == "X"]
    runs = len({e["args"].get("run") for e in steps}) or 1
    total = sum(e["dur"] for e in steps) or 1.0
    by_op: Dict[tuple, tuple] = {}
    for e in steps:
        key = (e["args"].get("op_name", e["name"]), e["args"].get("format", ""))
        calls, dur = by_op.get(key, (0, 0.0))
        by_op[key] = (calls + 1, dur + e["dur"])
    rows = [("op", "format", "calls/run", "ms/run", "share")]
    for (op, fmt), (calls, dur) in sorted(by_op.items(), key=lambda kv: -kv[1][1]):
        rows.append((op, fmt, f"{calls / runs:g}", f"{dur / runs / 1e3:.4f}", f"{100 * dur / total:.1f}%"))
    rows.append(("total", "", f"{len(steps) / runs:g}", f"{total / runs / 1e3:.4f}", "100.0%"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    return "\n".join(lines + [f"({runs} runs profiled)"])
