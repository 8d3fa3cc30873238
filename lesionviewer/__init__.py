"""lesionviewer: diffusion-based skin-lesion segmentation with uncertainty, for desktop review."""

__version__ = "0.1.0"
