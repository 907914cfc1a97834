# This file is part of Anonymeter and is released under BSD 3-Clause Clear License.
# Copyright (c) 2022 Anonos IP LLC.
# See https://github.com/statice/anonymeter/blob/main/LICENSE.md for details.
"""Tools to evaluate privacy risks along the directives of the Article 29 WGP."""
from synthforge.quality.vendor.anonymeter.evaluators.inference_evaluator import InferenceEvaluator
from synthforge.quality.vendor.anonymeter.evaluators.linkability_evaluator import LinkabilityEvaluator
from synthforge.quality.vendor.anonymeter.evaluators.singling_out_evaluator import SinglingOutEvaluator

__all__ = ["InferenceEvaluator", "LinkabilityEvaluator", "SinglingOutEvaluator"]
