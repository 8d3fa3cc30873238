"""Siamese-Diffusion (Qiu et al., CVPR 2025, arXiv 2505.06068) at lesionviewer's scale: a
mask-to-image synthesis model that makes new ``ID.jpg`` + ``ID_mask.png`` training pairs.

model.py (the Siamese denoiser: the engine UNet + Dense Hint Input encoders) · losses.py (the
two eps losses, the noise-consistency loss, online augmentation) · sampling.py (DDIM with the
mask-only branch and classifier-free guidance) · masks.py (elastic / affine mask deformations)
· contact_sheet.py · train.py (`lesionviewer train synth`) · generate.py (`lesionviewer synth`)
· card.py (the synthesis model's MODEL_CARD.md). The synthesis model is a separate kind of
model folder (``"kind": "synthesis"``) that the analysis loader refuses.
"""
