"""Models written in plain torch (there is no CPU build of torchvision here)."""

__all__: list[str] = []
