"""synthforge: synthetic data from a small seed, validated and graded.

    import synthforge
    result = synthforge.run("recipes/credit_tabular.yaml")
    more = synthforge.augment(df, n=1000, target="Status", balance=True)
    quality = synthforge.evaluate(real_df, synthetic_df)
"""

__version__ = "0.1.0"


def __getattr__(name):
    # The API pulls in SDV, torch and pandas (seconds); import them only when used, so `synthforge --help` is fast.
    if name in ("run", "evaluate", "augment", "Recipe", "RunResult"):
        from synthforge import api

        return getattr(api, name)
    raise AttributeError(f"module 'synthforge' has no attribute {name!r}")


__all__ = ["run", "evaluate", "augment", "Recipe", "RunResult", "__version__"]
