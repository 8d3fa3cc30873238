"""How many numbers a model config builds, counted without building it (pure Python, no torch),
so the config schema can refuse a config that would allocate gigabytes before anything is built.

Mirrors engine.unet.ConditionalUNet, engine.probe.PixelProbe and MalignancyHead layer by layer;
tests/engine/test_model_trust.py compares it with the built modules, so a change there that is
not made here fails a test.
"""

from __future__ import annotations


def _resblock(c_in: int, c_out: int, emb: int) -> int:
    skip = c_in * c_out + c_out if c_in != c_out else 0
    return 2 * c_in + 9 * c_in * c_out + c_out + emb * 2 * c_out + 2 * c_out + 2 * c_out + 9 * c_out**2 + c_out + skip


def _attention(c: int) -> int:
    return 2 * c + 3 * c * c + 3 * c + c * c + c


def parameter_count(config: dict) -> int:
    """Numbers in the state dict (weights and buffers) that ``config`` builds, counted without
    building it: engine.unet.ConditionalUNet, engine.probe.PixelProbe and MalignancyHead, layer
    by layer (tests compare this with the built modules)."""
    unet = config["unet"]
    base, n_in, blocks = unet["base_channels"], unet["in_channels"], unet["num_res_blocks"]
    chans = [base * m for m in unet["channel_mult"]]
    emb = 4 * base

    def level(c_in: int, c_out: int, i: int) -> int:
        n = _resblock(c_in, c_out, emb) + (blocks - 1) * _resblock(c_out, c_out, emb)
        return n + (_attention(c_out) if i in unet["attention_levels"] else 0)

    total = base * emb + emb + emb * emb + emb + unet["num_classes"] * emb + 9 * n_in * base + base
    ch = base
    for i, c in enumerate(chans):
        total += level(ch, c, i)
        ch = c
        if i < len(chans) - 1:
            total += 9 * ch * ch + ch
    total += 2 * _resblock(ch, ch, emb) + _attention(ch)
    for i in reversed(range(len(chans))):
        total += level(ch + chans[i], chans[i], i)
        ch = chans[i]
        if i > 0:
            total += 9 * ch * chans[i - 1] + chans[i - 1]
            ch = chans[i - 1]
    total += 2 * ch + 9 * ch * n_in + n_in
    probe = config.get("probe")
    if probe:
        taps = {f"dec{i}": c for i, c in enumerate(chans)} | {"mid": chans[-1]}
        k, hidden = probe.get("members", 5), probe.get("hidden", 32)
        classes = len(probe.get("classes", ("background", "lesion")))
        c_in = sum(taps[b] for b in probe.get("blocks", ("dec0", "dec1", "dec2", "dec3"))) \
            + (3 if probe.get("include_rgb", True) else 0)
        total += 2 * c_in + c_in * k * hidden + k * hidden + k * hidden * hidden + k * hidden \
            + k * classes * hidden + k * classes
        if config.get("malignancy"):
            pooled, m_hidden = 2 * c_in + 1, config["malignancy"].get("hidden", 64)
            total += 2 * pooled + 1 + pooled * m_hidden + m_hidden + m_hidden + 1
    return total
