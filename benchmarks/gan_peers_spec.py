"""benchmarks/bench_gan_peers.py's contestants: facelab's presets and the PyPI GAN trainers, pinned.

What each peer installs and which Trainer arguments its own command line uses by default (the
module docstring of bench_gan_peers.py says why each one is as it is).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = Path.home() / ".cache" / "facelab-peers"
FACELAB_PRESETS = {"facelab-dcgan": "training/configs/dcgan_synthfaces32_cpu.yaml",
                   "facelab-stylegan": "training/configs/stylegan_synthfaces32_cpu.yaml"}
EMA_START_STEP = 20_000  # both peers: `if steps % 10 == 0 and steps > 20000: EMA()`, before that GE is a copy
SAMPLE_CHUNK = 100
PROGRESS_EVERY_S = 60.0


class BenchError(RuntimeError):
    """A contestant cannot be set up or run; the message says what to do."""


@dataclass(frozen=True)
class Peer:
    """A PyPI GAN trainer: what to install, which module to import, its command line's Trainer defaults."""

    name: str
    version: str
    module: str
    deps: tuple[str, ...]
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)
    stubs: tuple[str, ...] = ()

    @property
    def requirement(self) -> str:
        """The pinned pip requirement of the peer itself."""
        return f"{self.name}=={self.version}"


PEERS = {
    "stylegan2-pytorch": Peer(
        "stylegan2-pytorch", "1.9.0", "stylegan2_pytorch",
        ("kornia==0.9.0", "kornia-rs==0.2.0", "einops==0.8.2", "vector-quantize-pytorch==0.1.0", "fire==0.7.1",
         "termcolor==3.3.0"),
        # `stylegan2_pytorch` command line defaults (cli.py train_from_folder)
        dict(batch_size=5, gradient_accumulate_every=6, network_capacity=16, fmap_max=512, lr=2e-4,
             lr_mlp=0.1, ttur_mult=1.5, save_every=1000, evaluate_every=1000, num_image_tiles=8,
             trunc_psi=0.75, mixed_prob=0.9, aug_prob=0.0, aug_types=["translation", "cutout"],
             num_workers=0, log=False),
        stubs=("torchvision", "aim")),
    "lightweight-gan": Peer(
        "lightweight-gan", "1.2.1", "lightweight_gan",
        ("kornia==0.9.0", "kornia-rs==0.2.0", "einops==0.8.2", "adabelief-pytorch==0.2.1",
         "colorama==0.4.6", "tabulate==0.10.0"),
        # `lightweight_gan` command line defaults (cli.py train_from_folder)
        dict(batch_size=10, gradient_accumulate_every=4, attn_res_layers=[32], disc_output_size=1,
             fmap_max=512, lr=2e-4, optimizer="adam", save_every=1000, evaluate_every=1000,
             num_image_tiles=8, aug_prob=None, aug_types=["cutout", "translation"], num_workers=0,
             use_aim=False),
        stubs=("torchvision",)),
}
CONTESTANTS = (*FACELAB_PRESETS, *PEERS)
