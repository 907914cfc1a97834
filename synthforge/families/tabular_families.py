"""The table families by name: their licence, their parameter check, and how to make or load one.

`autoregressive` (tabular_ar.py) is ours, Apache-2.0 like its dependencies. The SDV families are under the Business
Source License 1.1, which bars a hosted synthetic-data service from using them (docs/licences.md); they are
imported only when one of them is fitted or loaded, so a run under `licence: permissive` never loads a BSL module.
"""

import json
from pathlib import Path
from typing import Any

from synthforge.data.profile import Profile
from synthforge.errors import UserError

PERMISSIVE = ("autoregressive",)
BSL = ("gaussian_copula", "tvae", "ctgan", "copulagan")
NEURAL = ("autoregressive", "ctgan", "tvae", "copulagan")  # trained by epochs: a time budget shortens them


def licence_of(family: str) -> str:
    return "permissive" if family in PERMISSIVE else "BSL-1.1"


def check_licence(family: str, licence: str, field: str = "generator.family") -> None:
    if licence == "permissive" and family not in PERMISSIVE:
        raise UserError(f"{field}: {family!r} is SDV, under the Business Source License 1.1, and the recipe says "
                        f"licence: permissive; use {', '.join(PERMISSIVE)} or set licence: any")


def check_params(family: str, params: dict[str, Any]) -> None:
    if family == "autoregressive":
        from synthforge.families.tabular_ar import check_params as check

        check(params)
    else:
        from synthforge.families.sdv_tabular import check_params as check

        check(family, params)


def make(family: str, profile: Profile, params: dict[str, Any] | None = None, *, device: str = "cpu",
         time_budget: float | None = None, random_state: int = 0):
    if family == "autoregressive":
        from synthforge.families.tabular_ar import ARGenerator

        return ARGenerator(profile, params, device, time_budget=time_budget, random_state=random_state)
    from synthforge.families.sdv_tabular import SDVGenerator

    return SDVGenerator(family, profile, params, device, time_budget=time_budget, random_state=random_state)


def load(folder: Path, *, trusted: bool = False, device: str = "cpu"):
    """The generator saved in `folder`, by the family its generator.json names."""
    family = json.loads((Path(folder) / "generator.json").read_text())["family"]
    if family == "autoregressive":
        from synthforge.families.tabular_ar import ARGenerator

        return ARGenerator.load(folder, trusted=trusted, device=device)
    from synthforge.families.sdv_tabular import SDVGenerator

    return SDVGenerator.load(folder, trusted=trusted)
