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
    """Seconds per stage, in the order the stages ran: wall clock, and this process's CPU seconds (steadier on a
    shared machine; work done in Ray workers is not in them)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        started, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 3)
            self.cpu_seconds[name] = round(self.cpu_seconds.get(name, 0.0) + time.process_time() - cpu, 3)
