"""benchmarks/gpu_smoke.py on a CUDA device: every modality's small recipe with `device: cuda` (bf16 where the family
uses it) passes the checks CI makes on the CPU. Marker `gpu`: `python -m pytest -q -m gpu` on a GPU machine."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
def test_every_modality_runs_on_cuda(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_smoke", ROOT / "benchmarks" / "gpu_smoke.py")
    smoke = sys.modules["gpu_smoke"] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
    spec.loader.exec_module(smoke)
    rows = [smoke.run_case(name, tmp_path / name, "cuda") for name in sorted(smoke.CASES)]
    assert all(r["status"] in ("passed", "skipped") for r in rows), rows
    assert sum(r["status"] == "passed" for r in rows) >= len(rows) - 1  # only LoRA may lack its packaged base
