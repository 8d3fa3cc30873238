"""`lesionviewer train backbone`: the class-conditional DDPM on the train split, on CPU or GPU.

Labels (issue 3, and the lessons in shared/findings): whole images carry the lesion label, with
null-label dropout so the model also works unconditionally; in addition, patches at the
inference scale carry the lesion label (>= 30 % lesion pixels) or the healthy label (no lesion
pixel). Those patch labels are the only use of the expert masks in the backbone.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from lesionviewer.engine.checkpoint import save_model
from lesionviewer.engine.defaults import default_model_config
from lesionviewer.engine.schedule import NoiseSchedule
from lesionviewer.engine.unet import Label, build_unet
from lesionviewer.training import data as D
from lesionviewer.training.cases import read_cases, read_extra_cases
from lesionviewer.training.common import (STATE_FILE, add_resumable_run_arguments, hardware_description,
                                          load_training_state, pick_device,
                                          save_training_state, seed_everything)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="folder in the shared data format")
    p.add_argument("--out", required=True, help="model folder to write, e.g. models/NAME")
    p.add_argument("--name", help="model name (default: the --out folder's name)")
    p.add_argument("--extra-data", nargs="+", default=[], metavar="DIR",
                   help="extra folders of image-mask pairs (e.g. synthetic ones) trained on with the train split")
    p.add_argument("--minutes", type=float, default=60.0, help="wall-time budget for this run")
    p.add_argument("--steps", type=int, default=1_000_000, help="stop after this many steps in all")
    p.add_argument("--batch", type=int, default=12, help="whole images per step")
    p.add_argument("--patch-batch", type=int, default=32, help="labelled patches per step")
    p.add_argument("--patch", type=int, default=32, help="patch side at the working scale")
    p.add_argument("--size", type=int, default=96, help="working resolution")
    p.add_argument("--base-channels", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--ema", type=float, default=0.998)
    p.add_argument("--null-dropout", type=float, default=0.2)
    p.add_argument("--limit", type=int, help="use only the first N train cases (tests)")
    add_resumable_run_arguments(p)


def _sample_t(n: int, T: int, gen: torch.Generator) -> torch.Tensor:
    # 70 % in 0..400, where DiffSeg and the probe read the model; the rest anywhere.
    low = torch.randint(0, min(400, T), (n,), generator=gen)
    anywhere = torch.randint(0, T, (n,), generator=gen)
    return torch.where(torch.rand(n, generator=gen) < 0.7, low, anywhere)


def _eps_loss(model, schedule, x0, y, gen, device) -> torch.Tensor:
    t = _sample_t(x0.shape[0], schedule.num_timesteps, gen)
    noise = torch.randn(x0.shape, generator=gen)
    x_t = schedule.q_sample(x0, t, noise)
    eps = model(x_t.to(device), t.to(device), y.to(device))
    return F.mse_loss(eps, noise.to(device))


def run(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    seed_everything(args.seed, args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cases = read_cases(args.data, split="train")[: args.limit]
    extra_cases, left_out = read_extra_cases(args.extra_data, holdout=read_cases(args.data, split="val"))
    for note in left_out:
        print(f"  extra data: {note}", flush=True)
    n_real = len(cases)
    cases = cases + extra_cases
    print(f"backbone: {n_real} train cases from {args.data} (+{len(extra_cases)} extra), device {device}", flush=True)
    arrays = D.load_arrays(cases, args.size)
    lesion_idx, healthy_idx = D.patch_index(arrays.masks, args.patch, stride=8, min_lesion=0.3)
    print(f"patches at the working scale: {len(lesion_idx)} lesion, {len(healthy_idx)} healthy", flush=True)

    config = default_model_config(name=args.name or out.name, working_size=args.size,
                                  base_channels=args.base_channels)
    schedule = NoiseSchedule(**config["schedule"])
    model = build_unet(config["unet"]).to(device)
    ema = build_unet(config["unet"]).to(device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed)
    step, elapsed_before, history, commands = 0, 0.0, [], []
    state_path = out / STATE_FILE
    if args.resume and state_path.is_file():
        step, elapsed_before, history, commands = load_training_state(state_path, model, ema, opt, gen)
        print(f"resumed at step {step} ({elapsed_before / 60:.1f} min trained)", flush=True)

    def save(final: bool) -> None:
        save_training_state(state_path, model, ema, opt, gen, step, elapsed_before + time.time() - start,
                            history, commands)
        trained = {"steps": step, "minutes": round((elapsed_before + time.time() - start) / 60, 1),
                   "device": str(device), "hardware": hardware_description(device),
                   "torch_threads": torch.get_num_threads(), "train_cases": n_real,
                   **({"extra_data": list(args.extra_data), "extra_cases": len(extra_cases)} if args.extra_data else {}),
                   "batch": args.batch, "patch_batch": args.patch_batch, "lr": args.lr,
                   "ema": args.ema, "seed": args.seed, "final": final,
                   "commands": commands}
        cfg = dict(config, backbone_training=trained)
        save_model(out, cfg, {f"unet.{k}": v for k, v in ema.state_dict().items()})
        (out / "backbone_history.json").write_text(json.dumps(history) + "\n")

    images = D.to_model_range(arrays.images)
    commands.append(getattr(args, "command_line", "") or "lesionviewer train backbone (called from Python)")
    start = time.time()
    deadline = start + args.minutes * 60
    next_ckpt = start + args.checkpoint_minutes * 60
    bar = tqdm(total=args.steps, initial=step, desc="backbone", unit="step", dynamic_ncols=True)
    running = None
    model.train()
    while step < args.steps and time.time() < deadline:
        pick = torch.randint(0, len(images), (args.batch,), generator=gen)
        x0, _ = D.augment(images[pick], None, gen)
        y = torch.where(torch.rand(args.batch, generator=gen) < args.null_dropout, Label.NULL, Label.LESION)
        loss = _eps_loss(model, schedule, x0, y, gen, device)
        if len(lesion_idx) and len(healthy_idx):
            half = args.patch_batch // 2
            li = lesion_idx[torch.randint(0, len(lesion_idx), (half,), generator=gen).numpy()]
            hi = healthy_idx[torch.randint(0, len(healthy_idx), (half,), generator=gen).numpy()]
            patches = D.crop_patches(arrays.images, np.concatenate([li, hi]), args.patch)
            px, _ = D.augment(D.to_model_range(patches), None, gen)
            py = torch.cat([torch.full((half,), Label.LESION), torch.full((half,), Label.HEALTHY)])
            loss = loss + _eps_loss(model, schedule, px, py, gen, device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        for g in opt.param_groups:  # linear warm-up over the first 200 steps
            g["lr"] = args.lr * min(1.0, (step + 1) / 200)
        opt.step()
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - args.ema)
        step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0:
            history.append({"step": step, "loss": round(running, 5),
                            "minutes": round((elapsed_before + time.time() - start) / 60, 2)})
        left = max(0.0, deadline - time.time())
        bar.set_postfix(loss=f"{running:.4f}", budget_left=f"{left / 60:.1f}min")
        bar.update(1)
        if time.time() > next_ckpt:
            save(final=False)
            next_ckpt = time.time() + args.checkpoint_minutes * 60
    bar.close()
    save(final=True)
    print(f"backbone saved to {out} after {step} steps", flush=True)
    return 0
