"""Which torch device a run uses: CUDA, then MPS, then CPU for `auto`."""

from synthforge.errors import UserError


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("generator.device: 'cuda' asked for, but torch sees no CUDA GPU here; use auto or cpu")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise UserError("generator.device: 'mps' asked for, but this machine has no MPS device; use auto or cpu")
    return requested
