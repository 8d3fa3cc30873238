"""MODEL_CARD.md of a synthesis model, written from its config.json (and the ablation's).

    python -m lesionviewer.training.synth.card --model models/lesionviewer-synth-s96 \
        [--ablation runs/synth-ablation]

Sections a person or another command writes (``## What the images look like``,
``## Measurements`` and everything after them) are kept when the card is re-written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lesionviewer.engine.checkpoint import read_config, sha256_file
from lesionviewer.training.synth.model import KIND

KEPT_SECTIONS = ("## What the images look like", "## Measurements")
DEVIATIONS = (
    "**Denoiser.** The paper fine-tunes Stable Diffusion 1.5 (a latent model at 512 px) through ControlNet, a "
    "trainable copy of its encoder. Here the denoiser is lesionviewer's own pixel-space UNet ({params:.2f} M "
    "parameters) at {size} px, initialised from the shipped analysis backbone ({origin}), a DDPM already trained "
    "on these photos; the whole UNet is fine-tuned at a low learning rate ({lr:g}) instead of freezing it and "
    "training a copy (there is no copy: too slow on a CPU).",
    "**Dense Hint Input only.** The mask enters through a small conv encoder (widths {hint}) whose zero-initialised "
    "1x1 convs add a residual to the input of every UNet level and of the middle block (learning rate {hint_lr:g}). "
    "The image branch has its own encoder of the same shape for the photo; its condition is "
    "stopgrad(hint(mask)) + (step / max_steps) x image_hint(photo), as in the paper.",
    "**No text prompt.** Instead, optional class labels added to the time embedding: the ITA skin-tone group "
    "measured on the photo around its mask (engine/skintone.py) and the ISIC 2017 diagnosis, each replaced by a "
    "null label in {cond_drop:.0%} of samples. Classifier-free guidance is over the mask (the unconditional "
    "model sees no hint and null labels; {mask_drop:.0%} of samples train it).",
    "**Budget.** {steps} steps of {batch} pairs ({seen} pairs seen, {epochs:.2f} epochs of the train split) in "
    "{minutes} min on {hardware}, {threads} torch thread(s); the paper trains for many epochs on GPUs. "
    "This is the mechanism at lesionviewer's scale, not the paper's image quality.",
    "**Loss weights.** w = {w:g} for the noise-consistency term (our choice); online augmentation from a third of "
    "the planned steps on, for samples at t <= 200 that saw their mask: the predicted x0 is re-noised at a fresh "
    "uniform t and the mask branch is trained on it (our reading of the paper's Online-Augmentation).",
    "**Sampling.** DDIM with {sample_steps} steps and guidance {guidance:g} by default (the paper: 50 steps, "
    "guidance 9). {sampling_why}",
    "**Ablation baseline.** The paper's baseline is the mask-only ControlNet; ours is the same denoiser trained "
    "with the mask branch only (no image branch, no consistency loss, no online augmentation), same data, seed, "
    "batch and number of steps.",
    "**Data and split.** ISIC 2018 Task 1 images of lesionviewer's fixed `train` split, at {size} px; the paper's "
    "ISIC 2018 split and resolution differ, so its figures are not directly comparable.",
)
SAMPLING_WHY = ("Each DDIM step costs two UNet passes with guidance: about 5-6 s per pair at 12 steps on one thread of "
                "the shared 2-core CPU, so 50 steps would have made a few hundred pairs take hours. On six `train` "
                "masks (the ablation at step 212, 15 steps) guidance 1 did not put the lesion inside the mask and "
                "guidance 3 did; higher guidance was not tried for lack of time. x0_hat is clipped to -1..1 at every "
                "step (guided-diffusion's clip_denoised; the paper samples in SD's latent space, where nothing is "
                "clipped): without it the briefly trained model's samples ran into saturated blue and black.")


def _planned_steps(commands: list[str]) -> list[int]:
    planned = []
    for command in commands:
        words = command.split()
        if "--steps" in words and words.index("--steps") + 1 < len(words):
            planned.append(int(words[words.index("--steps") + 1]))
    return planned


def _training_lines(config: dict) -> list[str]:
    tr = config.get("synthesis_training") or {}
    planned = _planned_steps(tr.get("commands") or [])
    shortened = ([f"The run was resumed {len(planned) - 1} time(s) with fewer planned steps ({', '.join(map(str, planned))}) "
                  "to fit the shared CPU, so the image-prior ramp (step / max_steps) and the start of online "
                  "augmentation used those totals in turn, from the step each resume started at.", ""]
                 if len(set(planned)) > 1 and tr.get("image_branch") else [])
    return ["```bash", *(tr.get("commands") or ["# command not recorded"]), "```", "", *shortened,
            f"{tr.get('steps')} steps of {tr.get('batch')} pairs in {tr.get('minutes')} min "
            f"({60 * float(tr.get('minutes') or 0) / max(1, int(tr.get('steps') or 1)):.1f} s/step) on "
            f"{tr.get('device')} ({str(tr.get('hardware', '')).strip()}, {tr.get('torch_threads')} thread), AdamW "
            f"(UNet lr {tr.get('lr')}, hint encoders and labels lr {tr.get('hint_lr')}), EMA {tr.get('ema')}, seed "
            f"{tr.get('seed')}; image branch {'on' if tr.get('image_branch') else 'off'}, consistency weight "
            f"{tr.get('consistency')}, online augmentation {'on' if tr.get('online_augmentation') else 'off'}."]


def _pair_set_lines(pair_dirs: list[Path]) -> list[str]:
    """A table of the synthetic sets made for the measurements, from their synth_info.json."""
    infos = [(d, json.loads((d / "synth_info.json").read_text())) for d in pair_dirs if (d / "synth_info.json").is_file()]
    if not infos:
        return []
    rows = ["| folder | model | pairs | masks | DDIM steps | guidance | s/pair |", "|---|---|---|---|---|---|---|"]
    rows += [f"| `{d}` | `{i['model_id']}` | {i['n']} | {i['masks']} ({i.get('split') or 'all'}), "
             f"{i['deformed_share']:.0%} deformed ({i['deform']}) | {i['steps']} | {i['guidance']:g} | "
             f"{i['seconds_per_pair']} |" for d, i in infos]
    return ["## Synthetic sets for the measurements", "",
            "Written by `lesionviewer synth` (not shipped: `runs/` is not in git); the evaluation reads them.", "",
            *rows, "", "```bash", *(i["command"] for _, i in infos), "```", ""]


def render(model_dir: Path, ablation_dir: Path | None = None, pair_dirs: list[Path] | None = None) -> str:
    config = read_config(model_dir, kind=KIND)
    tr = config.get("synthesis_training") or {}
    weights = model_dir / "model.safetensors"
    from lesionviewer.training.synth.model import build_denoiser

    params = sum(p.numel() for p in build_denoiser(config).unet.parameters()) / 1e6
    seen = int(tr.get("steps") or 0) * int(tr.get("batch") or 0)
    fill = dict(params=params, size=config["working_size"], origin=tr.get("initialised_from"), lr=tr.get("lr", 0),
                hint=config["control"]["hint_channels"], hint_lr=tr.get("hint_lr", 0), cond_drop=tr.get("cond_dropout", 0),
                mask_drop=tr.get("mask_dropout", 0), steps=tr.get("steps"), batch=tr.get("batch"), seen=seen,
                epochs=seen / max(1, int(tr.get("train_pairs") or 1)), minutes=tr.get("minutes"),
                hardware=str(tr.get("hardware", "")).strip(), threads=tr.get("torch_threads"),
                w=tr.get("consistency", 0), sample_steps=config["sampling"]["steps"],
                guidance=config["sampling"]["guidance"], sampling_why=SAMPLING_WHY)
    out = [f"# Model card: {config['name']} (synthesis)", "",
           f"- **Model id:** `{model_dir.name}@{config['config_sha256'][:8]}`",
           f"- **Weights:** `model.safetensors`, {weights.stat().st_size / 1e6:.1f} MB, SHA-256 `{sha256_file(weights)}` "
           "(checked at every load; safetensors, so loading runs no code)",
           "- **Kind:** `synthesis` in config.json. The app, `lesionviewer analyze` and `evaluate` refuse it; "
           "`lesionviewer synth` refuses an analysis model.", "",
           "A mask-to-image diffusion model after Siamese-Diffusion (Qiu et al., CVPR 2025, arXiv 2505.06068): "
           "it makes new dermoscopy-like photos for given lesion masks, so segmentation models can be trained on "
           "more image-mask pairs than experts drew.", "",
           "## Intended use", "",
           "Extra training pairs for lesion segmentation research (`lesionviewer synth`, then training on real + "
           "synthetic). **Not for diagnosis, not for display to patients, and not evidence about any person.** "
           "The images are synthetic and must stay marked as such (`labels.csv`: `source=synthetic`, "
           "`synthetic=1`). Research and non-commercial use only: the training data is CC BY-NC 4.0.", "",
           "## Training data", "",
           f"{tr.get('train_pairs')} image-mask pairs of the `{tr.get('split')}` split of `../shared/data/isic-train` "
           "(ISIC 2018 Task 1 photos with expert masks, ISIC 2017 diagnoses; fixed `splits.csv`; `val` only for "
           "evaluation, the test split never read). Licence: CC BY-NC 4.0; cite Codella et al. 2019 "
           "(arXiv:1902.03368) and Tschandl et al. 2018 (HAM10000, doi:10.1038/sdata.2018.161).", "",
           "ITA skin-tone groups of the training photos (measured, `unknown` = colour cast or too little skin): "
           + ", ".join(f"{k} {v}" for k, v in (tr.get("tone_counts") or {}).items()) + ". Darker groups are rare, so "
           "`--tone tan`/`brown`/`dark` rests on few examples.", "",
           "## How it was made", "", *_training_lines(config), ""]
    if ablation_dir is not None and (ablation_dir / "config.json").is_file():
        out += ["The ablation (mask-only baseline, not shipped) was trained by:", "",
                *_training_lines(read_config(ablation_dir, kind=KIND)), ""]
    out += ["## Deviations from the paper", "", *(f"- {d.format(**fill)}" for d in DEVIATIONS), "",
            "## Using it", "", "```bash",
            f"lesionviewer synth --model {model_dir} --masks ../shared/data/isic-train --split train --out DIR -n 100 "
            "[--tone GROUP|parent|none] [--deform both|affine|elastic|none] [--seed S] [--steps N] [--guidance G]",
            "```", "",
            "It writes `ID.jpg` + `ID_mask.png` at the model's working size, `labels.csv` (id, source=synthetic, "
            "diagnosis and malignant of the parent case, label_source, synthetic=1, tone, tone_condition, ita, "
            "mask_origin=real|deformed, deformation, parent_id, model_id), `splits.csv` (all `train`), "
            "`synth_info.json` and `contact_sheet.png`.", "",
            "![real vs synthetic](../../docs/synth-contact-sheet.png)", "",
            "`docs/synth-contact-sheet.png`: top row real `train` photos with their expert mask outlined; below, "
            "the synthetic photos this model and the ablation made for the same masks (same seeds).", ""]
    out += _pair_set_lines(pair_dirs or [])
    return "\n".join(out)


def write_card(model_dir: str | Path, ablation_dir: str | Path | None = None,
               pair_dirs: list[str | Path] | None = None) -> Path:
    """(Re)write MODEL_CARD.md, keeping the sections in KEPT_SECTIONS onward from an existing card."""
    model_dir = Path(model_dir)
    path = model_dir / "MODEL_CARD.md"
    kept = "## Measurements\n\n_To be filled by `lesionviewer evaluate-synth`._\n"
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        starts = [text.index(h) for h in KEPT_SECTIONS if h in text]
        if starts:
            kept = text[min(starts):]
    card = render(model_dir, Path(ablation_dir) if ablation_dir else None, [Path(d) for d in pair_dirs or []])
    path.write_text(card + "\n" + kept, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--ablation", help="the mask-only baseline's model folder")
    p.add_argument("--pairs", nargs="*", default=[], help="folders written by `lesionviewer synth` to list")
    args = p.parse_args(argv)
    print(f"wrote {write_card(args.model, args.ablation, args.pairs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
