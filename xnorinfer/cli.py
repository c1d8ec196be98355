"""The `xnorinfer` console script (also `python -m xnorinfer`).

Failures follow the convention of argparse-based tools: one line on stderr, `xnorinfer: error: ...`, and
exit status 2 for a usage error, 1 for anything else (130 on Ctrl-C); `--debug` shows the traceback.
"""
import argparse
import json
import sys

PROG = "xnorinfer"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, naming the --help to read."""

    def error(self, message):
        _print_error(f"{message} (see {self.prog} --help)")
        self.exit(2)


def _print_error(message):
    # One line whatever the message holds (a third-party exception's text may span several).
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    print(f"{PROG}: error: {'; '.join(lines) or 'failed'}", file=sys.stderr, flush=True)


def _count(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


_positive, _non_negative = _count(1), _count(0)


def _shape(text):
    try:
        m, n, k = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape {text!r} is not MxNxK (e.g. 1024x1024x4096)") from None
    if min(m, n, k) < 1:
        raise argparse.ArgumentTypeError(f"shape {text!r} has a dimension < 1")
    return m, n, k


def _threads(text):
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threads {text!r} is not a comma-separated list of integers") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("thread counts must be >= 1")
    return values


def build_parser():
    from . import __version__
    # --debug is accepted before the command and after it: every parser has it, and its default SUPPRESS
    # keeps a command's parser from resetting a --debug given before the command (so args may lack it).
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="on a failure, show the full traceback instead of one line")
    parser = _Parser(prog=PROG, description="Fast CPU inference for binary neural networks.", parents=[debug])
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(subparsers, name, **kwargs):
        return subparsers.add_parser(name, parents=[debug], **kwargs)

    info = command(sub, "info", help="show the backend, ISA path and threads in use")
    info.set_defaults(func=cmd_info)

    run = command(sub, "run", help="run a model on inputs from .npy/.npz files")
    run.add_argument("model", help="model file (.onnx)")
    run.add_argument("--input", "-i", action="append", required=True, metavar="[NAME=]FILE",
                     help="an input array (.npy), or NAME=FILE; a .npz maps input names to arrays")
    run.add_argument("--output", "-o", metavar="FILE", help="write the outputs (.npy for one, else .npz)")
    run.add_argument("--threads", type=_positive, default=None, help="threads for the binary kernels")
    run.set_defaults(func=cmd_run)

    convert = command(sub, "convert", help="write a model as a planned .xnor file (packed weights, loads by mmap)")
    convert.add_argument("model", help="input model (.onnx)")
    convert.add_argument("output", help="output file (.xnor)")
    convert.add_argument("--batch", type=_positive, default=1,
                         help="batch size of the C runtime's program, for inputs with a free batch dimension (default 1)")
    convert.set_defaults(func=cmd_convert)

    inspect = command(sub, "inspect", help="show the plan: binary and float layers, weight sizes, why a layer stayed float")
    inspect.add_argument("model")
    inspect.set_defaults(func=cmd_inspect)

    analyze = command(sub, "analyze", help="how well binarization preserves geometry, layer by layer "
                                           "(Anderson & Berg 2018)")
    analyze.add_argument("model", help="ONNX model (latent weights are read when binarized in the graph)")
    analyze.add_argument("--data", metavar="FILE", help="inputs (.npy, or .npz name -> array): activation "
                                                        "angles and dot-product correlations")
    analyze.add_argument("--weights", metavar="FILE", help=".npz of latent float weights, by initializer name")
    analyze.add_argument("--json", metavar="FILE", help="write the report as JSON")
    analyze.add_argument("--plot", metavar="FILE", help="write a PNG of the angle distributions (needs matplotlib)")
    analyze.set_defaults(func=cmd_analyze)

    demo = command(sub, "demo", help="classify held-out handwritten digits with a trained binary network")
    demo.add_argument("--threads", type=_positive, default=1)
    demo.set_defaults(func=cmd_demo)

    bench = command(sub, "bench", help="benchmarks: a model file, or the kernels (gemm, conv)")
    bench_sub = bench.add_subparsers(dest="target", required=True)
    model = command(bench_sub, "model", help="latency of a model file against onnxruntime (ONNX) or Larq Compute Engine (.tflite) (also: xnorinfer bench MODEL)")
    model.add_argument("model")
    model.add_argument("--threads", type=_threads, default=(1,), help="thread counts, e.g. 1,2")
    model.add_argument("--iterations", "-n", type=_positive, default=50)
    model.add_argument("--warmup", type=_non_negative, default=5)
    model.add_argument("--batch", type=_positive, default=1, help="batch size for free batch dimensions")
    model.add_argument("--profile", metavar="TRACE.json",
                       help="also profile xnorinfer's runs: write a Chrome trace (onnxruntime's format) and print "
                            "the time by op")
    model.set_defaults(func=cmd_bench_model)
    gemm = command(bench_sub, "gemm", help="binary GEMM against numpy float32 matmul, side by side")
    gemm.add_argument("--shape", dest="shapes", type=_shape, action="append",
                      help="MxNxK to measure (repeatable); default: a standard set")
    gemm.add_argument("--threads", type=_threads, default=(1, 2), help="thread counts, e.g. 1,2 (default)")
    gemm.add_argument("--repeat", type=_positive, default=7, help="interleaved repetitions per measurement")
    gemm.add_argument("--no-numba", action="store_true", help="skip the Numba-backend comparison")
    gemm.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    gemm.set_defaults(func=cmd_bench_gemm)
    conv = command(bench_sub, "conv", help="binary convolution against onnxruntime's float32 Conv")
    conv.add_argument("--threads", type=_threads, default=(1, 2), help="thread counts, e.g. 1,2 (default)")
    conv.add_argument("--repeat", type=_positive, default=7, help="interleaved repetitions per measurement")
    conv.set_defaults(func=cmd_bench_conv)
    return parser


def _load_inputs(specs, sess):
    import numpy as np
    names = [i.name for i in sess.get_inputs()]
    feed = {}
    for spec in specs:
        name, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            feed.update({k: data[k] for k in data.files})
        else:
            if not name:
                missing = [n for n in names if n not in feed]
                if not missing:
                    raise ValueError(f"{path}: every input already has a value; use NAME={path}")
                name = missing[0]
            feed[name] = data
    return feed


def cmd_run(args):
    import numpy as np
    from .session import InferenceSession
    sess = InferenceSession(args.model, num_threads=args.threads)
    outputs = sess.run(None, _load_inputs(args.input, sess))
    names = [o.name for o in sess.get_outputs()]
    if args.output:
        if len(outputs) == 1 and args.output.endswith(".npy"):
            np.save(args.output, outputs[0])
        else:
            np.savez(args.output, **dict(zip(names, outputs)))
    for name, value in zip(names, outputs):
        print(f"{name}: shape {value.shape} dtype {value.dtype}")
        if value.ndim == 2 and value.shape[1] > 1:
            print(f"  argmax: {value.argmax(axis=1).tolist()}")
    return 0


def cmd_convert(args):
    import os
    from .session import InferenceSession
    sess = InferenceSession(args.model)
    size = sess.save(args.output, batch=args.batch)
    before = os.path.getsize(args.model)
    print(f"{args.model} ({before} bytes) -> {args.output} ({size} bytes, {before / size:.1f}x smaller)")
    if sess.program_note:
        print(f"no C runtime program (the file runs in Python only): {sess.program_note}")
    else:
        print(f"with the C runtime's program for batch {args.batch} (runs from C: see examples/c)")
    return 0


def cmd_inspect(args):
    from .session import InferenceSession
    sess = InferenceSession(args.model)
    for i in sess.get_inputs():
        print(f"input  {i.name}: {i.type} {i.shape}")
    for o in sess.get_outputs():
        print(f"output {o.name}: {o.type} {o.shape}")
    print(sess.summary())
    return 0


def cmd_analyze(args):
    import numpy as np
    from .tools.analyze import analyze, format_report, load_pyplot, plot_report, to_json
    if args.plot:
        load_pyplot()  # a missing matplotlib fails now, not after the analysis
    data = np.load(args.data, allow_pickle=False) if args.data else None
    weights = dict(np.load(args.weights, allow_pickle=False)) if args.weights else None
    report = analyze(args.model, data=data, weights=weights)
    print(format_report(report))
    if args.json:
        with open(args.json, "w") as f:
            f.write(to_json(report))
    if args.plot:
        plot_report(report, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def cmd_demo(args):
    import os
    import numpy as np
    from .errors import MissingDependency
    from .session import InferenceSession
    from .tools.bench import best_time, onnxruntime_module
    here = os.path.join(os.path.dirname(__file__), "demo")
    model = os.path.join(here, "digits_bnn.onnx")
    data = np.load(os.path.join(here, "digits_test.npz"))
    images, labels, framework = data["images"], data["labels"], data["torch_logits"]
    sess = InferenceSession(model, num_threads=args.threads)
    name = sess.get_inputs()[0].name
    (logits,) = sess.run(None, {name: images})
    ours = float((logits.argmax(1) == labels).mean())
    theirs = float((framework.argmax(1) == labels).mean())
    agree = int((logits.argmax(1) == framework.argmax(1)).sum())
    print("Binary network trained on scikit-learn's handwritten digits (8x8), exported from PyTorch to ONNX")
    print(sess.summary())
    print(f"held-out images: {len(labels)}")
    print(f"xnorinfer accuracy: {100 * ours:.2f}%   PyTorch accuracy: {100 * theirs:.2f}%   "
          f"same prediction on {agree}/{len(labels)} images; max |logit difference| "
          f"{float(np.abs(logits - framework).max()):.2e}")
    one = images[:1]
    t_ours = best_time(lambda: sess.run(None, {name: one}), 7, 0.05)
    try:
        ort = onnxruntime_module("the speed comparison")
    except MissingDependency as exc:
        print(f"latency, batch 1, {args.threads} thread(s): xnorinfer {t_ours * 1e6:.0f} us ({exc})")
        return 0
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
    ref = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    t_ort = best_time(lambda: ref.run(None, {name: one}), 7, 0.05)
    t_ours_all = best_time(lambda: sess.run(None, {name: images}), 5, 0.05)
    t_ort_all = best_time(lambda: ref.run(None, {name: images}), 5, 0.05)
    print(f"all {len(labels)} images in one batch, {args.threads} thread(s): xnorinfer {t_ours_all * 1e3:.2f} ms, "
          f"onnxruntime {t_ort_all * 1e3:.2f} ms: xnorinfer {t_ort_all / t_ours_all:.1f}x faster")
    print(f"one image (batch 1): xnorinfer {t_ours * 1e6:.0f} us, onnxruntime {t_ort * 1e6:.0f} us "
          f"({t_ort / t_ours:.1f}x; at this size the Python executor's per-layer overhead dominates)")
    return 0


def cmd_info(args):
    from .kernels import backend_info
    for key, value in backend_info().items():
        print(f"{key}: {value}")
    return 0


def cmd_bench_gemm(args):
    from .tools.bench import run_gemm_report
    results = run_gemm_report(args.shapes, args.threads, args.repeat, numba=not args.no_numba)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([dict(vars(r), ratio=r.ratio, fraction_of_peak=r.fraction_of_peak) for r in results],
                      f, indent=2)
    return 0


def cmd_bench_model(args):
    from .tools.bench import run_model_bench
    run_model_bench(args.model, args.threads, args.iterations, args.warmup, args.batch, profile=args.profile)
    return 0


def cmd_bench_conv(args):
    from .tools.bench import run_conv_report
    run_conv_report(threads=args.threads, repeat=args.repeat)
    return 0


def _expand_bench(argv):
    """`xnorinfer bench MODEL` is short for `xnorinfer bench model MODEL` (--debug may come anywhere)."""
    words = [i for i, a in enumerate(argv) if a != "--debug"]
    if len(words) >= 2 and argv[words[0]] == "bench":
        j = words[1]
        if not argv[j].startswith("-") and argv[j] not in ("gemm", "conv", "model"):
            argv.insert(j, "model")
    return argv


def _failure_message(exc):
    """The one line an exception from a command prints."""
    from .errors import BackendError, MissingDependency, ModelError
    if isinstance(exc, OSError) and exc.filename is not None:  # a file named on the command line
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, (ModelError, BackendError, MissingDependency, OSError, ValueError, TypeError)):
        return str(exc) or type(exc).__name__  # a bad file or input: the message names the problem
    detail = f": {exc}" if str(exc) else ""
    return f"unexpected {type(exc).__name__}{detail} (run with --debug for the traceback)"


def main(argv=None):
    """Run the command line `argv` (default sys.argv[1:]); returns the exit status."""
    argv = _expand_bench(list(sys.argv[1:] if argv is None else argv))
    args = None
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except SystemExit as exc:  # argparse's exits (usage error, --help, --version), or raise SystemExit(...)
        if isinstance(exc.code, str):  # a message: the same one-line error as any failure
            if _debugging(args, argv):
                raise
            _print_error(exc.code)
            return 1
        return 0 if exc.code is None else exc.code
    except KeyboardInterrupt:
        if _debugging(args, argv):
            raise
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (`xnorinfer inspect m.onnx | head -1`): stop quietly, pointing
        # stdout at /dev/null so the interpreter's last flush does not complain either;
        # 141 = 128 + SIGPIPE, what a shell reports for a process a closed pipe stopped
        import os
        try:
            fd = sys.stdout.fileno()
        except (AttributeError, OSError, ValueError):  # not a real file (a test's capture): nothing to silence
            return 141
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
        return 141
    except Exception as exc:
        if _debugging(args, argv):
            raise
        _print_error(_failure_message(exc))
        return 1


def _debugging(args, argv):
    return getattr(args, "debug", False) if args is not None else "--debug" in argv

if __name__ == "__main__":
    sys.exit(main())
