"""Which family a recipe needs: tables, text or images, stated or inferred from the recipe and the seed."""

from pathlib import Path

from synthforge.errors import UserError
from synthforge.recipe.schema import IMAGE_FAMILIES, TABULAR_FAMILIES, TEXT_FAMILIES, Recipe

IMAGE_EXAMPLES = ("digits", "fashion_mnist")
_FAMILIES = {"tabular": TABULAR_FAMILIES, "text": TEXT_FAMILIES, "image": IMAGE_FAMILIES}


def resolve_modality(recipe: Recipe, base_dir: Path | None = None) -> str:
    modality = recipe.modality if recipe.modality != "auto" else _infer(recipe, base_dir)
    family = recipe.generator.family
    if family != "auto" and family not in _FAMILIES[modality]:
        raise UserError(f"generator.family: {family!r} does not generate {modality} data; for {modality} use one of "
                        f"auto, {', '.join(_FAMILIES[modality])}")
    return modality


def _infer(recipe: Recipe, base_dir: Path | None) -> str:
    family, seed = recipe.generator.family, recipe.seed
    for modality, families in _FAMILIES.items():
        if family in families:
            return modality
    if seed.text_column:
        return "text"
    if seed.image_size or seed.channels or seed.source.removeprefix("example://") in IMAGE_EXAMPLES:
        return "image"
    path = Path(seed.source)
    if not seed.source.startswith("example://"):
        path = path if path.is_absolute() or base_dir is None else base_dir / path
        if path.is_dir():
            return "image"
    return "tabular"
