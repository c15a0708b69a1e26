"""`promptsynth dataset build`, `promptsynth train`, `promptsynth eval`: making a model.

``training`` is imported inside the handlers only, so `promptsynth --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["register"]

_REPRODUCE = (
    "promptsynth dataset build --nsynth ../shared/data/nsynth-test --per-instrument 20 "
    "--soundfonts all --out runs/v3-data && promptsynth train --data runs/v3-data "
    "--out model/checkpoints/default --max-minutes 10 --nll-weight 0.05 --threads 2 "
    "--eval-instruments default && promptsynth library --model model/checkpoints/default "
    "--data runs/v3-data --nsynth ../shared/data/nsynth-test && "
    "promptsynth eval --model model/checkpoints/default --data runs/v3-data"
)


def _int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _str_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _notes_args(parser: argparse.ArgumentParser, prefix: str, what: str, pitches: list[int]) -> None:
    """``--{prefix}-pitches`` and ``--{prefix}-velocities``: the notes to render."""
    for kind, metavar, default in (("pitches", "P,P", pitches), ("velocities", "V,V", [100])):
        parser.add_argument(
            f"--{prefix}-{kind}",
            type=_int_list,
            default=default,
            metavar=metavar,
            help=f"{what} {kind} (default {','.join(map(str, default))})",
        )


def _executor_args(parser: argparse.ArgumentParser, what: str) -> None:
    """``--executor``, ``--ray-address`` and ``--workers``: where ``what`` runs."""
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help=f"where {what} runs: local processes (default) or a Ray cluster "
        "(pip install -e '.[cluster]'; docs/training.md, \"On a cluster\")",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="the Ray cluster to use (e.g. ray://head:10001 or head:6379; default: the one "
        "RAY_ADDRESS names, else a Ray started here on --workers CPUs)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes (local; default: CPU count) or shards in flight at once (ray; "
        "default: twice the cluster's CPUs)",
    )


def _instrument_list(text: str) -> list[str]:
    """Comma-separated instrument ids; ``default``: the shipped model's ten."""
    if text.strip() == "default":
        from training.evaluate import EVAL_INSTRUMENTS

        return list(EVAL_INSTRUMENTS)
    return _str_list(text)


def register(sub: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    d = sub.add_parser(
        "dataset",
        help="build a training set (notes, captions, extracted theta)",
        description="Build a training set: read NSynth notes and/or render General MIDI notes "
        "from a SoundFont, caption them, extract theta by analysis-by-synthesis "
        "and write DIR/manifest.jsonl (+ DIR/extraction.json with the mean "
        "spectral distances of the seed-style, heuristic and fitted labels).\n\n"
        "Example (the default model's data: 880 NSynth notes and 4,798 renders of 964 "
        "SoundFont presets, about 25 minutes on 2 cores):\n"
        "  promptsynth dataset build --nsynth ../shared/data/nsynth-test "
        "--per-instrument 20 --soundfonts all --out runs/v3-data",
        formatter_class=fmt,
    )
    dsub = d.add_subparsers(dest="dataset_command", metavar="ACTION")
    dsub.required = True
    b = dsub.add_parser(
        "build", help="build DIR/manifest.jsonl", formatter_class=fmt, description=d.description
    )
    b.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    b.add_argument("--nsynth", metavar="DIR", help="an NSynth folder (examples.json + audio/)")
    b.add_argument(
        "--families", type=_str_list, metavar="A,B", help="NSynth families to keep (default all)"
    )
    b.add_argument(
        "--sources",
        type=_str_list,
        metavar="A,B",
        help="NSynth sources to keep: acoustic,electronic,synthetic (default all)",
    )
    b.add_argument(
        "--per-instrument",
        type=int,
        metavar="N",
        help="at most N notes per instrument (random draw)",
    )
    b.add_argument(
        "--per-combo",
        type=int,
        metavar="N",
        help="at most N notes per family/source, like the seed's",
    )
    b.add_argument("--gm", action="store_true", help="also render all 128 General MIDI programs")
    _notes_args(b, "gm", "GM", [48, 60, 72])
    b.add_argument(
        "--soundfont", metavar="SF2", help="SoundFont (default FluidR3_GM, else pretty_midi's)"
    )
    b.add_argument(
        "--soundfonts",
        nargs="+",
        metavar="all|KEY|PATH",
        help="render every melodic preset of these SoundFonts: all (every installed one of "
        "Debian's), keys among fluidr3_gm,fluidr3_gs,musescore_general,timgm6mb,sf_gmbank,"
        "opl3_fm (comma-separated or not), or your own .sf2/.sf3 files and folders of them",
    )
    _notes_args(b, "sf", "SoundFont preset", [36, 48, 60, 72, 84])
    _executor_args(b, "rendering and extraction")
    b.add_argument(
        "--no-fit", action="store_true", help="heuristic labels only (no analysis-by-synthesis)"
    )
    b.add_argument("--seed", type=int, default=0, help="random seed of the note draw (default 0)")
    b.set_defaults(func=_dataset_build)
    from server.cli import example

    example(d, "promptsynth dataset build --nsynth ../shared/data/nsynth-test --per-instrument 2 --out runs/tiny-data")
    example(b, "promptsynth dataset build --nsynth ../shared/data/nsynth-test --per-instrument 2 --out runs/tiny-data")
    r = dsub.add_parser(
        "refit",
        help="refit a dataset's labels with the differentiable render (theta v2)",
        formatter_class=fmt,
        description="Keep each note's modulator ratio (found by `dataset build`'s grid) and fit "
        "the continuous timbre values, v2's index envelope and noise included, by gradient "
        "descent on the spectral loss through the torch render of the engine's voice. Each "
        "new label is rendered by the numpy engine and kept only where it is closer to the "
        "real note than the old one. Writes OUT/manifest.jsonl (labels of the current theta schema) "
        "and OUT/refit.json (mean distances before and after).\n\n"
        "Runs in shards of 16 notes, each kept in OUT/shards/ as it is done: the same "
        "command again after a crash or Ctrl-C redoes no finished shard.\n\n"
        "Example (about 15 minutes on one core for the default data):\n"
        "  promptsynth dataset refit --data runs/default-data --out runs/v2-data",
    )
    r.add_argument("--data", required=True, metavar="DIR", help="dataset folder (with manifest.jsonl)")
    r.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    r.add_argument(
        "--free",
        default="v2",
        help="which values to fit: v1, v1+index-envelope, v1+noise, v2, v3 (with the third "
        "operator), v2+band (with the noise band), v4 (both), v2+spectra (the carrier's "
        "spectra, from the ones measured in the recording, and the envelope's curve) or v5 "
        "(v4 and the spectra) (default v2)",
    )
    r.add_argument("--steps", type=int, default=40, help="Adam steps per batch (default 40)")
    r.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    _executor_args(r, "the refit")
    r.add_argument(
        "--datasets",
        default=None,
        metavar="A,B",
        help="refit only the notes of these datasets (as in the manifest's dataset field, e.g. "
        "nsynth); the others keep their labels (default: all)",
    )
    r.set_defaults(func=_dataset_refit)
    example(r, "promptsynth dataset refit --data runs/tiny-data --out runs/tiny-v2 --steps 5")

    t = sub.add_parser(
        "train",
        help="train the text -> patch model on a dataset",
        description="Train the conditional Real-NVP on DIR/manifest.jsonl (from `promptsynth "
        "dataset build`). Validation instruments are held out whole. Writes the "
        "EMA-weight checkpoint to OUT with train_log.csv, curves.png and split.json.\n\n"
        "Reproduce the shipped default model (data, training, its sound library, "
        "evaluation; about 45 minutes on a 2-core CPU):\n  " + _REPRODUCE,
        formatter_class=fmt,
    )
    t.add_argument(
        "--data", required=True, metavar="DIR", help="dataset folder (with manifest.jsonl)"
    )
    t.add_argument("--out", required=True, metavar="DIR", help="checkpoint folder to write")
    t.add_argument("--encoder", default="minilm", help="text encoder: minilm (default) or clap")
    t.add_argument("--epochs", type=int, default=400, help="most epochs (default 400)")
    t.add_argument("--max-minutes", type=float, help="stop after this many minutes of training")
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument(
        "--nll-weight", type=float, default=0.0, help="weight of the exact NLL term (default 0)"
    )
    t.add_argument(
        "--text-noise",
        type=float,
        default=0.01,
        help="std of the noise added to the normalised text embedding (default 0.01)",
    )
    t.add_argument(
        "--ema", type=float, default=0.999, help="EMA decay of the saved weights (default 0.999)"
    )
    t.add_argument(
        "--early-stop", type=int, default=80, help="stop after N epochs without a better val loss"
    )
    t.add_argument("--hidden", type=int, default=256, help="coupling MLP width (default 256)")
    t.add_argument("--layers", type=int, default=8, help="coupling layers (default 8)")
    t.add_argument(
        "--val-fraction", type=float, default=0.2, help="share of instruments held out per family"
    )
    t.add_argument(
        "--eval-instruments",
        type=_instrument_list,
        default=[],
        metavar="A,B|default",
        help="instruments kept for `promptsynth eval`: neither trained on nor used for "
        "validation (recorded in the checkpoint); default: the shipped model's ten, one "
        "NSynth instrument of each family",
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    t.add_argument(
        "--flat",
        action="store_true",
        help="condition on the text alone: one patch for the whole keyboard (default: the "
        "model is also told each note's pitch and velocity, and its patches follow the key)",
    )
    t.set_defaults(func=_train)
    example(t, "promptsynth train --data runs/tiny-v2 --out runs/tiny-model --max-minutes 0.2 --threads 1")

    e = sub.add_parser(
        "eval",
        help="judge a checkpoint on real notes of instruments it never trained on",
        description="The yardstick, in one table: on the real notes of the checkpoint's "
        "evaluation instruments (never trained on), the family retrieval accuracy and "
        "the own-family log-mel distance of the model's patches (canonical prompts "
        "\"a {family} note\" and hand-written paraphrases, key-tracked and flat; with its "
        "sound library and the flow alone), beside no-model baselines (parameter "
        "median, closest in sound) and the ceiling fitted on the judged notes "
        "themselves; then the spread of the patches of diverse prompts against real "
        "notes'; then the sound library's choices for canonical prompts, paraphrases and "
        "plain instrument names on the ten and on every NSynth instrument, each left out "
        "(--nsynth; without --data, only these). Writes eval.json and eval.md.\n\n"
        "Example:\n  promptsynth eval --model model/checkpoints/default --data runs/v3-data",
        formatter_class=fmt,
    )
    e.add_argument("--model", required=True, metavar="DIR", help="checkpoint folder")
    e.add_argument(
        "--data", metavar="DIR",
        help="the dataset it was trained on (without it: only the rows each left out, which need no labels)",
    )
    e.add_argument(
        "--nsynth", metavar="DIR", default=None,
        help="NSynth folder for the rows each left out (default: ../shared/data/nsynth-test beside the "
        "project, where present)",
    )
    e.add_argument("--cache", metavar="FILE", help="an .npz file that keeps the library's renders between runs")
    e.add_argument(
        "--out", metavar="DIR", help="where to write eval.json/eval.md (default: --model)"
    )
    e.add_argument(
        "--eval-instruments",
        type=_instrument_list,
        metavar="A,B|default",
        help="judge these instruments (default: the checkpoint's evaluation instruments)",
    )
    e.set_defaults(func=_eval)
    example(e, "promptsynth eval --model runs/tiny-model --data runs/tiny-v2")

    lb = sub.add_parser(
        "library",
        help="give a checkpoint a sound library (choose patches in sound)",
        description="Build CKPT/library.npz: one candidate patch per training instrument of "
        "the dataset (a key table from its labels), the log-mel distance of each "
        "candidate's renders to every instrument's notes (real NSynth recordings, or "
        "SoundFont renders), and every instrument's captions embedded by the "
        "checkpoint's encoder. The checkpoint's evaluation instruments take no part. "
        "Once it is there, a prompt's patch is the candidate whose sound comes closest "
        "to the real notes of the instruments the prompt describes.\n\n"
        "Example:\n  promptsynth library --model model/checkpoints/default --data "
        "runs/v3-data --nsynth ../shared/data/nsynth-test",
        formatter_class=fmt,
    )
    lb.add_argument("--model", required=True, metavar="DIR", help="checkpoint folder")
    lb.add_argument("--data", required=True, metavar="DIR", help="the dataset it was trained on")
    lb.add_argument(
        "--nsynth",
        metavar="DIR",
        help="the NSynth folder the dataset's notes came from (targets: every note of an "
        "instrument at the slot pitches; without it, its labelled notes)",
    )
    lb.add_argument(
        "--exclude",
        type=_str_list,
        default=[],
        metavar="A,B",
        help="instruments to leave out as well as the evaluation's (e.g. to tune on them)",
    )
    lb.add_argument("--tau", type=float, help="text-similarity temperature (default 0.3)")
    lb.add_argument("--top-k", type=int, help="instruments the words describe (default 8)")
    lb.add_argument("--real-share", type=float, help="weight of real recordings (default 0.95)")
    lb.add_argument("--contrast", type=float, help="penalty on bland sounds (default 0)")
    lb.add_argument(
        "--pool",
        type=int,
        help="choose among the tables of this many instruments most like the words "
        "(default 8; 0: among all)",
    )
    lb.add_argument(
        "--margin",
        type=float,
        help="only instruments whose caption similarity lies within this of the most similar "
        "one's describe the words and are chosen among (default: no limit; the shipped "
        "library: 0.1)",
    )
    _executor_args(lb, "the candidates' renders")
    lb.set_defaults(func=_library)
    example(lb, "promptsynth library --model runs/tiny-model --data runs/tiny-v2")


def _cli_error(msg: str) -> Exception:
    from server.cli import CliError

    return CliError(msg)


def _manifest(data: str) -> Path:
    path = Path(data) / "manifest.jsonl"
    if not path.is_file():
        raise _cli_error(
            f"{path} does not exist; build it with `promptsynth dataset build --out {data} ...`"
        )
    return path


def _dataset_build(args: argparse.Namespace) -> int:
    if not args.nsynth and not args.gm and not args.soundfonts:
        raise _cli_error("give --nsynth DIR, --gm and/or --soundfonts")
    if args.nsynth and not (Path(args.nsynth) / "examples.json").is_file():
        raise _cli_error(f"{args.nsynth} has no examples.json (expected the NSynth layout)")
    from training.dataset import build_dataset
    from training.executor import ExecutorError

    try:
        summary = build_dataset(
            args.out,
            nsynth_root=args.nsynth,
            per_instrument=args.per_instrument,
            per_combo=args.per_combo,
            families=args.families,
            sources=args.sources,
            gm=args.gm,
            gm_pitches=args.gm_pitches,
            gm_velocities=args.gm_velocities,
            soundfont=args.soundfont,
            soundfonts=_font_items(args.soundfonts),
            sf_pitches=args.sf_pitches,
            sf_velocities=args.sf_velocities,
            executor=_executor(args),
            fit=not args.no_fit,
            seed=args.seed,
        )
    except (ValueError, FileNotFoundError, ExecutorError) as exc:
        raise _cli_error(str(exc)) from exc
    print(json.dumps(summary, indent=1))
    return 0


def _font_items(items: list[str] | None) -> list[str] | None:
    """``--soundfonts`` items: a path as given; anything else split at commas (``all``,
    ``fluidr3_gm,timgm6mb``)."""
    if not items:
        return items
    return [part for item in items for part in ([item] if Path(item).exists() else _str_list(item))]


def _executor(args: argparse.Namespace, threads: int = 1):
    """The executor the flags name, or a CLI error saying what is wrong."""
    from training.executor import Executor, ExecutorError

    try:
        return Executor(args.executor, workers=args.workers, address=args.ray_address, threads=threads)
    except (ValueError, ExecutorError) as exc:
        raise _cli_error(str(exc)) from None


def _dataset_refit(args: argparse.Namespace) -> int:
    _manifest(args.data)
    from training.executor import ExecutorError
    from training.refit import refit_dataset

    if args.threads < 1:
        raise _cli_error(f"--threads must be >= 1, got {args.threads}")
    executor = _executor(args, threads=args.threads)
    datasets = None if args.datasets is None else _str_list(args.datasets)
    try:
        summary = refit_dataset(args.data, args.out, free=args.free, steps=args.steps, datasets=datasets,
                                executor=executor)
    except (ValueError, FileNotFoundError, ExecutorError) as exc:
        raise _cli_error(str(exc)) from exc
    print(json.dumps(summary, indent=1))
    return 0


def _train(args: argparse.Namespace) -> int:
    manifest = _manifest(args.data)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from training.train import TrainConfig, train

    cfg = TrainConfig(
        encoder=args.encoder,
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        batch_size=args.batch_size,
        lr=args.lr,
        w_nll=args.nll_weight,
        early_stop=args.early_stop,
        text_noise=args.text_noise,
        ema=args.ema,
        hidden=args.hidden,
        n_layers=args.layers,
        val_fraction=args.val_fraction,
        seed=args.seed,
        key_tracked=not args.flat,
        eval_instruments=tuple(args.eval_instruments),
    )
    try:
        summary = train(manifest, args.out, cfg)
    except ValueError as exc:
        raise _cli_error(str(exc)) from exc
    print(json.dumps(summary, indent=1))
    return 0


def _eval(args: argparse.Namespace) -> int:
    manifest = _manifest(args.data) if args.data else None
    from training.evaluate import DEFAULT_NSYNTH, evaluate, report_markdown, write_report

    try:
        report = evaluate(args.model, manifest, eval_instruments=args.eval_instruments,
                          nsynth=args.nsynth or DEFAULT_NSYNTH, cache=args.cache)
    except ValueError as exc:
        raise _cli_error(str(exc)) from exc
    jp, mp = write_report(report, args.out or args.model)
    print(report_markdown(report))
    print(f"wrote {jp} and {mp}")
    return 0


def _library(args: argparse.Namespace) -> int:
    manifest = _manifest(args.data)
    from dataclasses import replace

    from model import LibraryParams, get_encoder, load_checkpoint
    from training.executor import ExecutorError
    from training.library import build_library

    executor = _executor(args)

    try:
        ckpt = load_checkpoint(args.model)
        held = list((ckpt.meta.get("data") or {}).get("eval_instruments") or [])
        params = LibraryParams()
        for name in ("tau", "top_k", "real_share", "contrast", "pool", "margin"):
            if getattr(args, name) is not None:
                params = replace(params, **{name: getattr(args, name)})
        library, summary = build_library(
            manifest,
            get_encoder(ckpt.encoder_name),
            nsynth_root=args.nsynth,
            exclude=held + list(args.exclude),
            params=params,
            executor=executor,
            store=Path(args.data) / "shards",
        )
    except (ValueError, FileNotFoundError, ExecutorError) as exc:
        raise _cli_error(str(exc)) from exc
    path = library.save(Path(args.model))
    print(json.dumps({**summary, "params": params.to_dict(), "file": str(path)}, indent=1))
    return 0
