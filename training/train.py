"""The training loop: caption embeddings -> conditional Real-NVP over theta.

Losses (x: z-scored theta in learning space, c: z-scored text embedding + noise):

- reconstruction ``Huber_beta(g(0|c), x)``                    weight ``w_rec``   (1.0)
- cycle          ``Huber_beta(g(f(x|c)|c), x)``               weight ``w_cycle`` (0.5)
- prior          ``mean(f(x|c)^2)``                           weight ``w_prior`` (0.15)
- NLL            ``-log p(x|c) / dim`` (exact, with log-det)  weight ``w_nll``   (0, optional)

AdamW, gradient clipping, EMA weights (those are validated, selected and saved),
ReduceLROnPlateau on the validation loss (without the NLL term), early stopping, fixed seeds, a CSV log and a
PNG of the curves. Under ``torchrun`` (``WORLD_SIZE`` > 1) it runs DistributedDataParallel
(gloo), each rank on its shard of every epoch; rank 0 logs and saves.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.manifest import cached_embeddings, manifest_thetas, read_manifest
from training.split import split_by_instrument

__all__ = ["TrainConfig", "train", "FlowLoss"]


@dataclass
class TrainConfig:
    encoder: str = "minilm"
    epochs: int = 400
    batch_size: int = 128
    lr: float = 3e-4
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    ema: float = 0.999
    text_noise: float = 0.01
    huber_beta: float = 0.02
    w_rec: float = 1.0
    w_cycle: float = 0.5
    w_prior: float = 0.15
    w_nll: float = 0.0
    lr_factor: float = 0.5
    lr_patience: int = 30
    min_lr: float = 2e-5
    early_stop: int = 80
    max_minutes: float | None = None
    n_layers: int = 8
    hidden: int = 256
    n_blocks: int = 2
    dropout: float = 0.05
    mixing: str = "permutation"
    val_fraction: float = 0.2
    seed: int = 0
    #: Condition the flow on each note's pitch and velocity as well as the text (the
    #: model then predicts a timbre per key: a key-tracked patch); False: text alone.
    key_tracked: bool = True
    #: Instruments kept for evaluation: neither trained on nor used for validation (early
    #: stopping), recorded in the checkpoint for `promptsynth eval`.
    eval_instruments: tuple[str, ...] = ()


class FlowLoss(nn.Module):
    """All loss terms in one ``forward`` (so DistributedDataParallel sees one call)."""

    def __init__(self, flow: nn.Module, cfg: TrainConfig) -> None:
        super().__init__()
        self.flow, self.cfg = flow, cfg

    def forward(
        self, x: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        huber = nn.functional.smooth_l1_loss
        rec = huber(self.flow.inverse(torch.zeros_like(x), c), x, beta=cfg.huber_beta)
        z, logdet = self.flow(x, c)
        cyc = huber(self.flow.inverse(z, c), x, beta=cfg.huber_beta)
        prior = (z * z).mean()
        nll = (
            0.5 * (z * z).sum(-1) + 0.5 * x.shape[-1] * math.log(2 * math.pi) - logdet
        ).mean() / x.shape[-1]
        total = cfg.w_rec * rec + cfg.w_cycle * cyc + cfg.w_prior * prior
        if cfg.w_nll:
            total = total + cfg.w_nll * nll
        return total, {"loss": total, "rec": rec, "cycle": cyc, "prior": prior, "nll": nll}


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return rank, world


def modelled_names(thetas: np.ndarray) -> tuple[str, ...]:
    """The timbre values a flow trained on labels ``thetas [n, n_params]`` models: all of
    them, but the third operator's (schema 3) only where some label uses it, and the
    noise band's (schema 4) likewise. Labels made before a schema leave its additions off
    everywhere, and a constant dimension is no distribution to learn; the model's patches
    then take their defaults (off). The spectra (schema 5) are never modelled: a patch
    takes those of the sound library's instrument for the words (``Predictor``), so that
    the flow's variations change the envelope and the operators of that instrument, not
    64 harmonic levels at random."""
    from engine import PARAM_NAMES, TIMBRE_NAMES
    from engine.schema import HELD_NAMES, ONSET_NAMES

    left_out: tuple[str, ...] = ONSET_NAMES + HELD_NAMES
    for prefix, switches in (("op3_", ("op3_index", "op3_peak")), ("band_", ("band_level",))):
        used = thetas[:, [PARAM_NAMES.index(n) for n in switches]]
        if not np.any(used > 0.0):
            left_out += tuple(n for n in TIMBRE_NAMES if n.startswith(prefix))
    # The spectra's times, darkening and the envelope's curve, where some label uses them.
    schema5 = ("onset_s", "darken_db", "darken_s", "env_curve")
    darken, curve = (thetas[:, PARAM_NAMES.index(n)] for n in ("darken_db", "env_curve"))
    moving = thetas[:, [PARAM_NAMES.index(n) for n in ONSET_NAMES]] != thetas[:, [PARAM_NAMES.index(n) for n in HELD_NAMES]]
    if not (np.any(darken > 0.0) or np.any(curve > 0.0) or np.any(moving)):
        left_out += schema5
    return tuple(n for n in TIMBRE_NAMES if n not in left_out)


def train(
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    cfg: TrainConfig | None = None,
    progress: bool = True,
) -> dict:
    """Train on a manifest; write the EMA checkpoint to ``out_dir`` with ``train_log.csv``,
    ``curves.png`` and ``split.json``. Returns a summary dict."""
    from engine import PARAM_NAMES
    from model import Normaliser, ThetaNormaliser, get_encoder, save_checkpoint
    from model.checkpoint import KEY_FEATURES, key_features
    from model.flow import ConditionalRealNVP

    cfg = cfg or TrainConfig()
    rank, world = _dist_info()
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo")
    _seed_all(cfg.seed)
    out = Path(out_dir)
    manifest = Path(manifest)
    held_out = set(cfg.eval_instruments)
    all_records = read_manifest(manifest)
    missing = held_out - {r["instrument"] for r in all_records}
    if missing:
        raise ValueError(f"evaluation instruments not in {manifest}: {sorted(missing)}")
    records = [r for r in all_records if r["instrument"] not in held_out]
    train_idx, val_idx, val_insts = split_by_instrument(records, cfg.val_fraction, cfg.seed)
    if not train_idx:
        raise ValueError("the split left no training notes")

    # One (note, caption) pair per caption; validation pairs come from unseen instruments.
    def pairs(idx):
        return [(i, cap) for i in idx for cap in records[i]["captions"]]

    tr_pairs, va_pairs = pairs(train_idx), pairs(val_idx)
    encoder = get_encoder(cfg.encoder)
    texts = sorted({cap for r in records for cap in r["captions"]})
    emb = cached_embeddings(texts, encoder, manifest.parent / f"embeddings-{cfg.encoder}.npz")
    emb_of = {t: e for t, e in zip(texts, emb)}
    # The flow models the timbre values; pitch and velocity are given (key_tracked) or
    # left out (the patch is then one for the whole keyboard).
    thetas = manifest_thetas(records)
    names = modelled_names(thetas[train_idx])
    cols = [PARAM_NAMES.index(n) for n in names]
    theta_norm = ThetaNormaliser.fit(thetas[train_idx][:, cols], names)
    x_all = theta_norm.encode(thetas[:, cols]).astype(np.float32)
    keys_all = key_features(thetas[:, 0], thetas[:, 1]).astype(np.float32)
    n_key = KEY_FEATURES if cfg.key_tracked else 0

    def tensors(ps):
        if not ps:
            return None, None, None
        x = torch.from_numpy(np.stack([x_all[i] for i, _ in ps]))
        e = np.stack([emb_of[c] for _, c in ps]).astype(np.float32)
        k = np.stack([keys_all[i] for i, _ in ps])
        return x, e, k

    def context(e, k):
        c = emb_norm.transform(e).astype(np.float32)
        if n_key:
            c = np.concatenate([c, k], axis=1)
        return torch.from_numpy(c)

    x_tr, e_tr, k_tr = tensors(tr_pairs)
    emb_norm = Normaliser.fit(e_tr)
    c_tr = context(e_tr, k_tr)
    x_va, e_va, k_va = tensors(va_pairs)
    c_va = context(e_va, k_va) if e_va is not None else None

    flow = ConditionalRealNVP(
        dim=x_tr.shape[1],
        context_dim=c_tr.shape[1],
        n_layers=cfg.n_layers,
        hidden=cfg.hidden,
        n_blocks=cfg.n_blocks,
        dropout=cfg.dropout,
        mixing=cfg.mixing,
        seed=cfg.seed,
    )
    model: nn.Module = FlowLoss(flow, cfg)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)
    ema = copy.deepcopy(flow).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(flow.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr
    )
    is_main = rank == 0
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
    log_path = out / "train_log.csv"
    fields = [
        "epoch",
        "seconds",
        "lr",
        "loss",
        "rec",
        "cycle",
        "prior",
        "nll",
        "val_loss",
        "val_rec",
        "val_nll",
    ]
    logf = open(log_path, "w", newline="") if is_main else None
    writer = csv.DictWriter(logf, fieldnames=fields) if logf else None
    if writer:
        writer.writeheader()
    bar = None
    if progress and is_main:
        from tqdm import tqdm

        bar = tqdm(total=cfg.epochs, desc="train", unit="epoch")
    gen = torch.Generator().manual_seed(cfg.seed)
    best, best_state, best_epoch, bad = math.inf, None, -1, 0
    t0 = time.time()
    n = x_tr.shape[0]
    epoch = 0
    try:
        for epoch in range(1, cfg.epochs + 1):
            flow.train()
            perm = torch.randperm(n, generator=gen)[rank::world]
            sums: dict[str, float] = {}
            steps = 0
            for s in range(0, perm.numel(), max(1, cfg.batch_size // world)):
                b = perm[s : s + max(1, cfg.batch_size // world)]
                c = c_tr[b] + cfg.text_noise * torch.randn(len(b), c_tr.shape[1], generator=gen)
                loss, parts = model(x_tr[b], c)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(flow.parameters(), cfg.grad_clip)
                opt.step()
                with torch.no_grad():
                    for pe, pf in zip(ema.parameters(), flow.parameters()):
                        pe.mul_(cfg.ema).add_(pf.detach(), alpha=1.0 - cfg.ema)
                    for be, bf in zip(ema.buffers(), flow.buffers()):
                        be.copy_(bf)
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
                steps += 1
            row = {k: sums[k] / max(steps, 1) for k in sums}
            val = (
                _validate(ema, x_va, c_va, cfg)
                if x_va is not None
                else {"loss": row["loss"], "rec": row["rec"], "nll": row["nll"]}
            )
            sched.step(val["loss"])
            row.update(
                epoch=epoch,
                seconds=round(time.time() - t0, 2),
                lr=opt.param_groups[0]["lr"],
                val_loss=val["loss"],
                val_rec=val["rec"],
                val_nll=val["nll"],
            )
            if writer:
                writer.writerow({k: row[k] for k in fields})
                logf.flush()
            if val["loss"] < best - 1e-5:
                best, best_epoch, bad = val["loss"], epoch, 0
                best_state = copy.deepcopy(ema.state_dict())
            else:
                bad += 1
            if bar:
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.4f}", val=f"{val['loss']:.4f}")
            if bad >= cfg.early_stop:
                break
            if cfg.max_minutes is not None and time.time() - t0 > 60 * cfg.max_minutes:
                break
    finally:
        if bar:
            bar.close()
        if logf:
            logf.close()
    if best_state is not None:
        ema.load_state_dict(best_state)
    summary = {
        "epochs_run": epoch,
        "best_epoch": best_epoch,
        "best_val_loss": best,
        "seconds": round(time.time() - t0, 1),
        "world_size": world,
        "train_pairs": len(tr_pairs),
        "val_pairs": len(va_pairs),
        "train_notes": len(train_idx),
        "val_notes": len(val_idx),
    }
    if is_main:
        data = {
            "manifest": str(manifest),
            "notes": len(records),
            "captions": len(texts),
            "val_instruments": val_insts,
            "eval_instruments": sorted(held_out),
            "datasets": sorted({r["dataset"] for r in records}),
            "attribution": _attribution(records),
        }
        save_checkpoint(
            out,
            ema,
            theta_norm,
            emb_norm,
            encoder,
            data=data,
            training={"config": asdict(cfg), **summary},
            key_features=n_key,
        )
        with open(out / "split.json", "w") as f:
            json.dump(
                {
                    "val_instruments": val_insts,
                    "eval_instruments": sorted(held_out),
                    "train_instruments": sorted({records[i]["instrument"] for i in train_idx}),
                },
                f,
                indent=1,
            )
        plot_curves(log_path, out / "curves.png")
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    return summary


def _validate(
    flow: nn.Module, x: torch.Tensor, c: torch.Tensor, cfg: TrainConfig
) -> dict[str, float]:
    """Validation losses; ``loss`` leaves out the NLL term, which grows without bound on
    unseen instruments (their density is not what is being selected for): the seed's
    terms (reconstruction, cycle, prior) pick the checkpoint and drive the LR schedule."""
    with torch.no_grad():
        _, parts = FlowLoss(flow, cfg)(x, c)
    out = {k: float(v) for k, v in parts.items()}
    out["loss"] = cfg.w_rec * out["rec"] + cfg.w_cycle * out["cycle"] + cfg.w_prior * out["prior"]
    return out


def plot_curves(log_csv: str | os.PathLike, png: str | os.PathLike) -> None:
    """PNG of the training and validation losses from ``train_log.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_csv) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    ep = [int(r["epoch"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "val_loss", "rec", "val_rec"):
        axes[0].plot(ep, [float(r[key]) for r in rows], label=key)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("epoch")
    axes[0].legend()
    axes[0].set_title("losses (EMA weights for val)")
    axes[1].plot(ep, [float(r["lr"]) for r in rows])
    axes[1].set_yscale("log")
    axes[1].set_xlabel("epoch")
    axes[1].set_title("learning rate")
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)


def _attribution(records: Sequence[dict]) -> str:
    """Where the training notes came from, and their licences."""
    parts = []
    datasets = {r["dataset"] for r in records}
    if "nsynth" in datasets:
        parts.append("NSynth (Engel et al. 2017), CC BY 4.0")
    if "gm" in datasets:
        parts.append("FluidR3_GM SoundFont (Frank Wen), MIT")
    if "soundfont" in datasets:
        from training.presets import SOUNDFONTS

        # A SoundFont instrument's id is sf-<font>-<bank>-<program>.
        ids = [r["instrument"].split("-") for r in records if r["dataset"] == "soundfont"]
        fonts = {i[1] for i in ids if len(i) == 4 and i[0] == "sf"}
        parts += [f"{f.path.rsplit('/', 1)[-1]} ({f.author}), {f.licence}" for f in SOUNDFONTS if f.key in fonts]
        known = {f.key for f in SOUNDFONTS}
        # A user's own font (`--soundfonts PATH`): its licence is the font's, not ours to state.
        parts += [f"SoundFont {k!r} (a user's font: its own licence applies)" for k in sorted(fonts - known)]
        if not fonts:  # ids of another layout: say what they are, if not whose
            parts.append("SoundFont renders")
    return "; ".join(parts)
