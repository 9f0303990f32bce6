"""facelab: face generation and latent-space study (library; never imports gradio or accelerate)."""

__version__ = "0.1.0"
