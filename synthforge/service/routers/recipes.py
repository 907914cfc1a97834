"""The shipped recipes a job may name (what `synthforge recipes` lists)."""

import yaml
from fastapi import APIRouter, Depends

from synthforge.recipe.load import shipped_recipes
from synthforge.service.deps import scope
from synthforge.service.schemas import RecipeOut

router = APIRouter(prefix="/recipes", tags=["recipes"], dependencies=[Depends(scope("read"))])


def shipped() -> list[RecipeOut]:
    out = []
    for name, path in shipped_recipes().items():
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
        first = next((ln[1:].strip() for ln in text.splitlines() if ln.startswith("#")), "")
        out.append(RecipeOut(name=name, vertical=str(data.get("vertical", "")),
                             modality=str(data.get("modality", "auto")), description=first))
    return out


@router.get("", response_model=list[RecipeOut])
def list_recipes():
    return shipped()
