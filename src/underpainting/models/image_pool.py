"""The history of generated images that CycleGAN's discriminators learn from (Shrivastava et al. 2017; Zhu et al.
2017 section 4): reduces oscillation by showing D older fakes as well as the newest."""

from __future__ import annotations

import torch


class ImagePool:
    """Holds up to `size` past fakes; once full, each query returns a stored image with p = 0.5 (swapping it for
    the new one) and the new image otherwise. Its own RNG and contents are checkpointed, so resume is exact.

    Stored images follow the incoming ones' device and dtype: a pool restored on the CPU and queried with CUDA (or
    bf16) fakes is moved as a whole, so it never holds a mixed list that cannot be stacked or checkpointed."""

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def _follow(self, like: torch.Tensor) -> None:
        if self.images and (self.images[0].device != like.device or self.images[0].dtype != like.dtype):
            self.images = [im.to(like.device, like.dtype) for im in self.images]

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        images = images.detach()
        self._follow(images)
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(1, generator=self.generator).item() < 0.5:
                i = int(torch.randint(0, self.size, (1,), generator=self.generator))
                out.append(self.images[i])
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict:
        images = torch.stack([im.cpu() for im in self.images]) if self.images else torch.empty(0)
        return {"size": self.size, "images": images, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict, device: torch.device | None = None) -> None:
        self.size = state["size"]
        self.images = [im.to(device) if device is not None else im for im in state["images"]]
        self.generator.set_state(state["rng"])
