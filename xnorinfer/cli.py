"""The `xnorinfer` console script."""
import argparse
import json
import sys


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
    parser = argparse.ArgumentParser(prog="xnorinfer", description="Fast CPU inference for binary neural networks.")
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="show the backend, ISA path and threads in use")
    info.set_defaults(func=cmd_info)

    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="target", required=True)
    gemm = bench_sub.add_parser("gemm", help="binary GEMM against numpy float32 matmul, side by side")
    gemm.add_argument("--shape", dest="shapes", type=_shape, action="append",
                      help="MxNxK to measure (repeatable); default: a standard set")
    gemm.add_argument("--threads", type=_threads, default=(1, 2), help="thread counts, e.g. 1,2 (default)")
    gemm.add_argument("--repeat", type=int, default=7, help="interleaved repetitions per measurement")
    gemm.add_argument("--no-numba", action="store_true", help="skip the Numba-backend comparison")
    gemm.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    gemm.set_defaults(func=cmd_bench_gemm)
    conv = bench_sub.add_parser("conv", help="binary convolution against onnxruntime's float32 Conv")
    conv.add_argument("--threads", type=_threads, default=(1, 2), help="thread counts, e.g. 1,2 (default)")
    conv.add_argument("--repeat", type=int, default=7, help="interleaved repetitions per measurement")
    conv.set_defaults(func=cmd_bench_conv)
    return parser


def cmd_info(args):
    from ._native import backend_info
    for key, value in backend_info().items():
        print(f"{key}: {value}")
    return 0


def cmd_bench_gemm(args):
    from .bench import run_gemm_report
    if args.repeat < 1:
        print("xnorinfer: --repeat must be >= 1", file=sys.stderr)
        return 2
    results = run_gemm_report(args.shapes, args.threads, args.repeat, numba=not args.no_numba)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([dict(vars(r), ratio=r.ratio, fraction_of_peak=r.fraction_of_peak) for r in results],
                      f, indent=2)
    return 0


def cmd_bench_conv(args):
    from .bench import run_conv_report
    return 0 if run_conv_report(threads=args.threads, repeat=max(1, args.repeat)) else 1


def main(argv=None):
    args = build_parser().parse_args(argv)
    from ._native import BackendError
    try:
        return args.func(args)
    except BackendError as exc:
        print(f"xnorinfer: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
