"""manifest.json: what made this output (recipe, seed hash, versions, seed, device, timings). Written last; its
`complete: true` is what marks a folder as a finished dataset."""

import platform
import time
from contextlib import contextmanager
from importlib import metadata

PACKAGES = ("synthforge", "sdv", "torch", "pandas", "numpy", "pyarrow", "great-expectations", "scikit-learn",
            "pydantic", "ray", "transformers", "tokenizers", "peft", "sentence-transformers", "diffusers", "pillow",
            "safetensors", "opacus")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


class Timings:
    """Seconds per stage, in the order the stages ran."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 3)
