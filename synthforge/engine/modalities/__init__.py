"""The modalities the pipeline knows, by name: an explicit registry (a fourth modality is one module + one line)."""

from synthforge.engine.modalities.image import IMAGE
from synthforge.engine.modalities.relational import RELATIONAL
from synthforge.engine.modalities.tabular import TABULAR
from synthforge.engine.modalities.text import TEXT

MODALITIES = {m.name: m for m in (TABULAR, TEXT, IMAGE, RELATIONAL)}


def resolve(recipe, base_dir=None) -> str:
    """The recipe's modality: stated, or inferred from its family and seed (a folder or an image example: images; a
    text column: text; otherwise a table). A family of another modality is one line naming the valid ones."""
    from pathlib import Path

    from synthforge.data.images import IMAGE_EXAMPLES
    from synthforge.errors import UserError
    from synthforge.recipe.schema import IMAGE_FAMILIES, TABULAR_FAMILIES, TEXT_FAMILIES

    families = {"tabular": TABULAR_FAMILIES, "text": TEXT_FAMILIES, "image": IMAGE_FAMILIES,
                "relational": ("autoregressive",)}
    family, seed = recipe.generator.family, recipe.seed
    modality = recipe.modality
    if seed.tables or modality == "relational":
        if modality not in ("auto", "relational") or not seed.tables:
            raise UserError("seed.tables: several tables are a relational seed; set modality: relational and give "
                            "seed.tables (not seed.source)")
        modality = "relational"
    if modality == "auto":
        modality = next((m for m, fams in families.items() if family in fams), None)
    if modality is None:
        source = seed.source.removeprefix("example://")
        path = Path(seed.source)
        path = path if path.is_absolute() or base_dir is None else Path(base_dir) / path
        if seed.text_column:
            modality = "text"
        elif seed.image_size or seed.channels or source in IMAGE_EXAMPLES or \
                (not seed.source.startswith("example://") and path.is_dir()):
            modality = "image"
        else:
            modality = "tabular"
    if family != "auto" and family not in families[modality]:
        raise UserError(f"generator.family: {family!r} does not generate {modality} data; for {modality} use one of "
                        f"auto, {', '.join(families[modality])}")
    return modality

