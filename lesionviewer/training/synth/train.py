"""`lesionviewer train synth`: the Siamese-Diffusion synthesis model, on CPU or GPU.

Starts from the shipped analysis backbone's UNet (a DDPM already trained on these photos at
96 px), as ControlNet and Siamese-Diffusion start from a pre-trained denoiser, and trains the
Dense Hint Input encoders with it (the UNet fine-tuned at a lower learning rate). Writes a
separate model folder of kind "synthesis" (config.json + model.safetensors + MODEL_CARD.md),
which the analysis loader refuses.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from lesionviewer.engine.checkpoint import CONFIG_HASH_KEY, ModelError, load_weights, save_model
from lesionviewer.engine.defaults import default_model_config
from lesionviewer.engine.schedule import NoiseSchedule
from lesionviewer.engine.unet import UNetConfig
from lesionviewer.training import data as D
from lesionviewer.training.common import (STATE_FILE, add_resumable_run_arguments, hardware_description,
                                          load_training_state, pick_device,
                                          save_training_state, seed_everything)
from lesionviewer.training.synth.losses import LossWeights, siamese_losses
from lesionviewer.training.synth.model import (DIAGNOSES, HINT_CHANNELS, KIND, TONES, Conditions, SiameseDenoiser,
                                               synthesis_config)
from lesionviewer.training.synth.pairs import load_pairs, tone_counts

DEFAULT_INIT = Path(__file__).resolve().parents[3] / "models" / "lesionviewer-ddpm-s96"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="folder in the shared data format (its `train` split is used)")
    p.add_argument("--out", required=True, help="model folder to write, e.g. models/NAME-synth")
    p.add_argument("--name", help="model name (default: the --out folder's name)")
    p.add_argument("--init", default=str(DEFAULT_INIT),
                   help="analysis model whose UNet starts the denoiser, or 'none' for random weights")
    p.add_argument("--split", default="train", help="split of --data to train on ('all': every case)")
    p.add_argument("--minutes", type=float, default=60.0, help="wall-time budget for this run")
    p.add_argument("--steps", type=int, default=600, help="training steps in all (also sets the image-prior "
                   "ramp and the start of online augmentation at a third)")
    p.add_argument("--batch", type=int, default=6)
    p.add_argument("--size", type=int, default=96, help="working resolution (must match --init)")
    p.add_argument("--base-channels", type=int, default=32, help="UNet width with --init none")
    p.add_argument("--hint-channels", default=",".join(map(str, HINT_CHANNELS)), help="hint encoder widths per level")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate of the UNet")
    p.add_argument("--hint-lr", type=float, default=1e-3, help="learning rate of the hint encoders and embeddings")
    p.add_argument("--ema", type=float, default=0.99)
    p.add_argument("--consistency", type=float, default=1.0, help="weight w of the noise-consistency loss")
    p.add_argument("--no-consistency", action="store_true",
                   help="the mask-only baseline: no image branch, no consistency loss (the paper's ablation)")
    p.add_argument("--no-online-aug", action="store_true", help="no online augmentation")
    p.add_argument("--mask-dropout", type=float, default=0.1, help="share of samples trained unconditionally (CFG)")
    p.add_argument("--cond-dropout", type=float, default=0.1, help="share with the tone / diagnosis label nulled")
    p.add_argument("--no-tone", action="store_true", help="do not condition on the ITA skin-tone group")
    p.add_argument("--no-diagnosis", action="store_true", help="do not condition on the diagnosis")
    p.add_argument("--limit", type=int, help="use only the first N cases (tests)")
    add_resumable_run_arguments(p)


def _base_config(args: argparse.Namespace) -> tuple[dict, dict | None, str]:
    """(the UNet + schedule config, the UNet's state or None, what it was initialised from)."""
    if args.init and args.init.lower() != "none":
        try:
            config, state = load_weights(args.init)  # an analysis model: refused if it is not one
        except ModelError as e:
            raise SystemExit(f"lesionviewer train synth --init: {e}") from None
        if int(config["working_size"]) != args.size:
            raise SystemExit(f"--size {args.size} differs from {args.init}'s working size {config['working_size']}")
        unet_state = {k[5:]: v for k, v in state.items() if k.startswith("unet.")}
        return config, unet_state, f"{Path(args.init).name}@{config[CONFIG_HASH_KEY][:8]}"
    return default_model_config("random", args.size, args.base_channels), None, "random initialisation"


def _conditions(pairs, pick: torch.Tensor, args, gen: torch.Generator) -> Conditions:
    def dropped(labels: torch.Tensor, null: int) -> torch.Tensor:
        return torch.where(torch.rand(len(labels), generator=gen) < args.cond_dropout, null, labels)

    return Conditions(None if args.no_tone else dropped(pairs.tones[pick], len(TONES)),
                      None if args.no_diagnosis else dropped(pairs.diagnoses[pick], len(DIAGNOSES)))


def run(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    seed_everything(args.seed, args.threads)
    out = Path(args.out)
    base, unet_state, origin = _base_config(args)
    pairs = load_pairs(args.data, args.size, split=None if args.split == "all" else args.split, limit=args.limit)
    print(f"synth: {len(pairs.ids)} {args.split} pairs from {args.data}, tones {tone_counts(pairs)}, "
          f"UNet from {origin}, device {device}", flush=True)
    hint = tuple(int(c) for c in args.hint_channels.split(","))
    config = synthesis_config(args.name or out.name, base["unet"], base["schedule"], args.size,
                              tone=not args.no_tone, diagnosis=not args.no_diagnosis, hint_channels=hint)
    schedule = NoiseSchedule(**config["schedule"])
    image_branch = not args.no_consistency

    def build() -> SiameseDenoiser:
        m = SiameseDenoiser(UNetConfig.from_dict(config["unet"]), hint, tone=not args.no_tone,
                            diagnosis=not args.no_diagnosis, image_branch=image_branch)
        if unet_state is not None:
            m.unet.load_state_dict(unet_state)
        return m.to(device)

    model, ema = build(), build()
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    unet_params = list(model.unet.parameters())
    other = [p for n, p in model.named_parameters() if not n.startswith("unet.")]
    opt = torch.optim.AdamW([{"params": unet_params, "lr": args.lr, "base_lr": args.lr},
                             {"params": other, "lr": args.hint_lr, "base_lr": args.hint_lr}], weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed)
    step, elapsed_before, history, commands = 0, 0.0, [], []
    state_path = out / STATE_FILE
    if args.resume and state_path.is_file():
        step, elapsed_before, history, commands = load_training_state(state_path, model, ema, opt, gen)
        print(f"resumed at step {step} ({elapsed_before / 60:.1f} min trained)", flush=True)
    commands.append(getattr(args, "command_line", "") or "lesionviewer train synth (called from Python)")
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()

    def save(final: bool) -> None:
        minutes = round((elapsed_before + time.time() - start) / 60, 1)
        save_training_state(state_path, model, ema, opt, gen, step, elapsed_before + time.time() - start,
                            history, commands)
        trained = {"steps": step, "planned_steps": args.steps, "minutes": minutes, "device": str(device),
                   "hardware": hardware_description(device), "torch_threads": torch.get_num_threads(),
                   "train_pairs": len(pairs.ids), "split": args.split, "tone_counts": tone_counts(pairs),
                   "batch": args.batch, "lr": args.lr, "hint_lr": args.hint_lr, "ema": args.ema,
                   "consistency": 0.0 if args.no_consistency else args.consistency, "image_branch": image_branch,
                   "online_augmentation": not args.no_online_aug, "mask_dropout": args.mask_dropout,
                   "cond_dropout": args.cond_dropout, "seed": args.seed, "initialised_from": origin,
                   "final": final, "commands": commands}
        save_model(out, dict(config, synthesis_training=trained), ema.sampling_state_dict(), kind=KIND)
        (out / "synth_history.json").write_text(json.dumps(history) + "\n")

    deadline = start + args.minutes * 60
    next_ckpt = start + args.checkpoint_minutes * 60
    bar = tqdm(total=args.steps, initial=step, desc="synth", unit="step", dynamic_ncols=True)
    running: dict[str, float] = {}
    model.train()
    while step < args.steps and time.time() < deadline:
        pick = torch.randint(0, len(pairs.ids), (args.batch,), generator=gen)
        x0, masks = D.augment(pairs.images[pick], pairs.masks[pick], gen, jitter=0.05)
        weights = LossWeights(consistency=0.0 if args.no_consistency else args.consistency,
                              image_branch=image_branch, mask_dropout=args.mask_dropout,
                              online_augmentation=not args.no_online_aug and step >= args.steps // 3)
        terms = siamese_losses(model, schedule, x0.to(device), masks[:, None].float().to(device) * 2 - 1,
                               _conditions(pairs, pick, args, gen), weights, ramp=step / args.steps, gen=gen)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for g in opt.param_groups:  # linear warm-up over the first 50 steps
            g["lr"] = g["base_lr"] * min(1.0, (step + 1) / 50)
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))  # EMA warm-up: early steps are not frozen in
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - decay)
        step += 1
        for k, v in terms.items():
            running[k] = v.item() if k not in running else 0.95 * running[k] + 0.05 * v.item()
        if step % 10 == 0:
            history.append({"step": step, **{k: round(v, 5) for k, v in running.items()},
                            "minutes": round((elapsed_before + time.time() - start) / 60, 2)})
        bar.set_postfix(loss=f"{running['total']:.4f}", budget_left=f"{max(0.0, deadline - time.time()) / 60:.1f}min")
        bar.update(1)
        if time.time() > next_ckpt:
            save(final=False)
            next_ckpt = time.time() + args.checkpoint_minutes * 60
    bar.close()
    save(final=step >= args.steps)
    from lesionviewer.training.synth.card import write_card

    write_card(out)
    print(f"synthesis model saved to {out} after {step} steps", flush=True)
    return 0
