"""synthforge: synthetic data from a small seed, validated and graded.

    import synthforge
    result = synthforge.run("recipes/credit_tabular.yaml")
    more = synthforge.augment(df, n=1000, target="Status", balance=True)
    quality = synthforge.evaluate(real_df, synthetic_df)
"""

import os

__version__ = "0.1.0"

# torch's threads (GNU OpenMP) wait for work by spinning. Beside another CPU-bound job on 2 cores, a 2-thread training
# step of the drug recipe's GPT-2 cost 2.6 CPU-s spinning vs 1.5 sleeping (1.6 alone), so a CPU-second budget bound
# sooner and the run went slower (docs/scaling.md; alone, sleeping can cost some wall time). Read when OpenMP starts,
# i.e. only if synthforge is imported before torch (the CLI always is); the user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def __getattr__(name):
    # The API pulls in SDV, torch and pandas (seconds); import them only when used, so `synthforge --help` is fast.
    if name in ("run", "evaluate", "augment", "Recipe", "RunResult"):
        from synthforge import api

        return getattr(api, name)
    if name == "Client":  # the service's client (the `service` extra: httpx)
        from synthforge.service.client import Client

        return Client
    raise AttributeError(f"module 'synthforge' has no attribute {name!r}")


__all__ = ["run", "evaluate", "augment", "Recipe", "RunResult", "Client", "__version__"]
