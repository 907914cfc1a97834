# Vendored: anonymeter 1.1.0 (https://github.com/statice/anonymeter), Copyright (c) 2022 Anonos IP LLC, released under
# the Clear BSD License (LICENSE.md in this folder, copied from the wheel's anonymeter-1.1.0.dist-info/licenses/).
#
# Why vendored: synthforge/quality/membership.py puts anonymeter's singling-out, linkability and inference risks in
# every tabular report, but anonymeter cannot be a dependency: its metadata pins numpy < 1.27 and pyarrow < 22, while
# synthforge needs numpy >= 2 (the code itself runs on numpy 2.4 and pyarrow 26). Installed apart with --no-deps, a
# plain `pip install -e '.[examples]'` went without the three risks, and so could no recipe gate them.
#
# Files: every module of the 1.1.0 wheel: __init__.py (was empty), evaluators/{__init__, inference_evaluator,
# inference_predictor, linkability_evaluator, singling_out_evaluator, sklearn_inference_predictor}.py,
# neighbors/{__init__, mixed_types_kneighbors}.py, preprocessing/{__init__, transformations, type_detection}.py,
# stats/{__init__, confidence}.py.
#
# Changed, and only this:
# * imports: `from anonymeter.X` -> `from synthforge.quality.vendor.anonymeter.X` (every file).
# * neighbors/mixed_types_kneighbors.py: numba is gone. `gower_distance` is plain Python (the reference), and
#   `_nearest_neighbors` computes the same distance with numpy broadcasting for a block of queries at a time
#   (kneighbors sends blocks instead of single rows); ties go to the lower candidate index. Why: numba pins numpy
#   below the next minor release (0.68: numpy < 2.6) and needs llvmlite, so it would hold numpy back as anonymeter
#   did, and it compiled for 10-20 s in every process. tests/test_anonymeter_vendored.py checks the numpy search
#   against gower_distance pair by pair.
# Everything else (polars in the singling-out evaluator, joblib, scipy, scikit-learn) is as released; polars is a
# base dependency in pyproject.toml.
