"""The synthesis evaluation as Markdown (report.md and the card's ``## Measurements`` section),
and the shipping decision for an analysis model retrained with synthetic pairs."""

from __future__ import annotations

from pathlib import Path

SECTION = "## Measurements"
FULL, ABLATION = "synthetic (full)", "synthetic (ablation)"


def decision(rows: list[dict], arm: str = FULL) -> dict:
    """Issue 7's rule: ship an analysis model retrained with synthetic pairs only if, with all
    of `train`'s labels, it is at least as good on `val` overall and in every skin-tone group."""
    full = [r for r in rows if r["arm"] == arm]
    if not full:
        return {"qualifies": False, "why": f"no '{arm}' arm was measured"}
    top = max(full, key=lambda r: r["fraction"])
    worse = [g for g, gain in top["per_group_gain"].items() if gain < 0]
    qualifies = top["gain"] >= 0 and not worse
    return {"fraction": top["fraction"], "arm": arm, "overall_gain": top["gain"], "gain_interval": top["gain_interval"],
            "groups_worse": worse, "qualifies": qualifies,
            "shipped": False,
            "why": ("at least as good overall and in every tone group on val, but the shipped analysis model was "
                    "not retrained in this session (see the card)") if qualifies else
                   ("worse on val " + ("overall" if top["gain"] < 0 else "") + (" and " if top["gain"] < 0 and worse
                    else "") + (f"in the {', '.join(worse)} group(s)" if worse else "")
                    + ": the shipped analysis model stays trained on real pairs only")}


def _fmt(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _of(n) -> str:
    return "" if n is None else f" (of {n} asked for a group)"


def _gain(row: dict | None) -> str:
    if row is None:
        return "n/a"
    lo, hi = row["gain_interval"]
    seeds = "/".join(f"{g:+.3f}" for g in row.get("gain_per_seed", []))
    return f"{row['dice']:.3f} ({row['gain']:+.3f}, CI {lo:+.3f}..{hi:+.3f}; seeds {seeds})"


def _realism(part: dict) -> list[str]:
    lines = ["### Realism: KID against real `val`", "",
             f"Each set's first n = {part['n']} images (a seeded random choice) against all of `val`, in the shipped "
             "analysis model's own embedding: one pass of its denoiser at t = "
             f"{part['timestep']} under the lesion label, the channel mean and spread of every decoder block and the "
             "mid block (896 numbers an image), standardised with `val`'s spread. KID is the unbiased squared MMD "
             "under the cubic polynomial kernel (Bińkowski et al. 2018): 0 for two samples of one distribution, "
             "unbiased at this n, so it is the figure to read; ± is its spread over random halves. The Fréchet "
             "distance is given for reference only: with 896 dimensions and a few hundred images the covariances "
             "are rank-deficient and it is biased upwards by an amount that depends on n (same n in every row). The "
             "embedding is not independent of the generator: the synthesis model starts from the same backbone, so "
             "it may look more real to this network than to another; the full-vs-ablation comparison shares that "
             "start and stays fair.", "",
             "| set | n | KID | Fréchet (biased) |", "|---|---|---|---|"]
    lines += [f"| {r['set']} | {r['n']} | {r['kid']:.4f} ± {r['kid_std']:.4f} | {r['frechet']:.1f} |"
              for r in part["rows"]]
    return lines + [""]


def _fidelity(part: dict) -> list[str]:
    lines = ["### Fidelity to the mask", "",
             f"The shipped analysis model's default method (`{part['method']}`, as `lesionviewer analyze`) on "
             f"{part['n']} photos of each set; Dice of its mask against the pair's own mask, and against another "
             "pair's mask of the same set (the floor). On real `val` pairs the same figure is the ceiling.", "",
             "| set | n | Dice, own mask | Dice, another pair's mask | measured tone = asked tone |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['set']} | {r['n']} | {r['dice']:.3f} | {r['dice_random_mask']:.3f} | "
              f"{_fmt(r.get('tone_agreement'), 2)}{_of(r.get('tone_asked_n'))} |" for r in part["rows"]]
    return lines + [""]


def _probe(part: dict, verdict: dict | None) -> list[str]:
    rows = part["rows"]
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    by = {(r["fraction"], r["arm"]): r for r in rows}
    fractions = sorted({r["fraction"] for r in rows})
    synthetic_n = {a: next(r["synthetic_images"] for r in rows if r["arm"] == a) for a in arms if a != "real"}
    lines = ["### The real test: real vs real + synthetic pairs", "",
             f"The probe of the shipped design (blocks {'+'.join(part['blocks'])} + RGB at {part['feature_size']}^2, "
             f"{part['members']} member{'s' if part['members'] > 1 else ''}, {part['pixels_per_image']} class-balanced pixels per image at t = "
             f"{part['timesteps']}) on the shipped backbone's frozen features, trained on a share of `train`'s labels "
             "alone, and on the same real labels plus every pair of a synthetic set ("
             + ", ".join(f"{n} {a}" for a, n in synthetic_n.items()) + "). Within a fraction every arm trains as "
             f"many optimiser steps ({part['epochs']} epochs of the largest arm), on the same real images and "
             f"initialisation; each cell is the mean over {part.get('repeats', 1)} seeds (each seed draws other real "
             "images). Dice on all of real `val` at the working resolution, no DenseCRF (as `train heads` scores its "
             "probes; the shipped analysis with CRF scores higher). Gain: mean per-case difference to real only, "
             "with a paired bootstrap 95 % interval over `val` cases (of the seed-averaged Dice), and the gain of "
             "each seed alone. Cut to fit a shared 2-core CPU (same cut in every arm): `train heads` uses 4 "
             "timesteps, 5 members and 256 pixels per image.", "",
             "| label fraction | real images | real only | " + " | ".join(f"+ {a}" for a in arms[1:]) + " |",
             "|---|---|---|" + "---|" * (len(arms) - 1)]
    for f in fractions:
        real = by[(f, "real")]
        lines.append(f"| {f:g} | {real['train_images']} | {real['dice']:.3f} | "
                     + " | ".join(_gain(by.get((f, a))) for a in arms[1:]) + " |")
    lines += ["", *_reading(by, fractions, arms)]
    for f in (fractions[0], fractions[-1]) if len(fractions) > 1 else fractions:
        lines += ["", f"Per ITA skin-tone group of `val` (skin around the expert mask), label fraction {f:g}:", "",
                  "| group | n | real only | " + " | ".join(f"+ {a}" for a in arms[1:]) + " |",
                  "|---|---|---|" + "---|" * (len(arms) - 1)]
        real = by[(f, "real")]
        for g, figures in real["per_group"].items():
            cells = [f"{by[(f, a)]['per_group'][g]['dice']:.3f} ({by[(f, a)]['per_group_gain'][g]:+.3f})"
                     for a in arms[1:]]
            lines.append(f"| {g} | {figures['n']} | {figures['dice']:.3f} | " + " | ".join(cells) + " |")
    if verdict:
        small = [g for g, f in by[(verdict.get("fraction", 1.0), "real")]["per_group"].items() if f["n"] < 10]
        lines += ["", f"**Decision (issue 7's rule, label fraction {verdict.get('fraction', 1):g}):** "
                  + ("qualifies" if verdict["qualifies"] else "does not qualify")
                  + f" for shipping: {verdict['why']}."
                  + (f" (Groups under 10 `val` cases, {', '.join(small)}, count as the rule says, though one case "
                     "moves their mean by a lot.)" if small and not verdict["qualifies"] else "")]
    return lines + [""]


def _reading(by: dict, fractions: list[float], arms: list[str]) -> list[str]:
    """The sentences a reader needs beside the table: the paper's claim against the measured
    gain, and what the reference arm (real pairs in place of synthetic ones) says about the test."""
    top, low = fractions[-1], fractions[0]
    out = []
    if (top, FULL) in by:
        full, first = by[(top, FULL)], by.get((low, FULL))
        out.append(f"The paper reports +0.015 Dice (+1.52 mDice points on ISIC 2018) from adding synthetic pairs; "
                   f"measured here with label fraction {top:g}: {full['gain']:+.3f} (95 % CI "
                   f"{full['gain_interval'][0]:+.3f}..{full['gain_interval'][1]:+.3f})"
                   + (f", and {first['gain']:+.3f} at {low:g}." if first is not None and low != top else "."))
    oracle = [a for a in arms if "oracle" in a]
    if oracle:
        gains = ", ".join(f"{by[(f, oracle[0])]['gain']:+.3f} at {f:g}" for f in fractions if (f, oracle[0]) in by)
        out.append(f"The {oracle[0]} arm adds real `train` pairs (photos and expert masks, not in `val`) in place of "
                   f"synthetic ones: what perfect synthetic pairs could give under this test. Its gains ({gains}) bound "
                   "what any synthetic set can show here: where even real extra pairs do not help, this probe at this "
                   "budget is not short of pairs.")
    return out


def markdown(document: dict) -> str:
    lines = [SECTION, "",
             f"Measured with the shipped analysis model `{document['inputs']['model']}` on real data "
             f"`{document['inputs']['data']}` (`val` is only scored, never trained on). Sets: "
             + ", ".join(f"{k} `{v}`" for k, v in document["inputs"]["sets"].items()) + ". Commands:", ""]
    lines += ["```bash", *sorted(set(document.get("commands", {}).values())), "```", ""]
    if "realism" in document:
        lines += _realism(document["realism"])
    if "fidelity" in document:
        lines += _fidelity(document["fidelity"])
    if "probe" in document:
        lines += _probe(document["probe"], document.get("decision"))
    return "\n".join(lines).rstrip() + "\n"


def replace_section(card: Path, section: str) -> None:
    """Put ``section`` (starting with '## Measurements') in place of the card's section of that
    name (up to the next '## ' heading), or at the end when the card has none."""
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    start = text.find("\n" + SECTION + "\n") + 1 if ("\n" + SECTION + "\n") in text else (
        0 if text.startswith(SECTION + "\n") else -1)
    if start < 0:
        text = text.rstrip() + ("\n\n" if text else "") + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + ("\n" + text[end + 1:] if end >= 0 else "")
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text(text, encoding="utf-8")
