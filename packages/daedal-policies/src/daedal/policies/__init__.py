"""daedal-policies: DAEDAL and the published decoders as composable policies.

Example::

    from daedal.core import Engine
    from daedal.core.testing import FakeAdapter
    from daedal.policies import Daedal

    engine = Engine(FakeAdapter(eos_bias=2.0), policies=[Daedal(initial_gen_length=16, max_gen_length=128)])
    result = engine.generate([[5, 6, 7]])
    print(result.tokens[0], result.stats.forward_passes)
"""

from daedal.policies.budget import Budget
from daedal.policies.bundle import Daedal
from daedal.policies.cache import BlockQuotaUnmask, CachedBlocks, KVCache
from daedal.policies.dream import DreamDecoding, DreamUnmask
from daedal.policies.eos import eos_confidence
from daedal.policies.expand import LowConfidenceExpand
from daedal.policies.fast_dllm import FastDllm, ParallelUnmask
from daedal.policies.length import EosConfidenceLength
from daedal.policies.llada import LLaDADecoding, LLaDASchedule
from daedal.policies.padding import LeftPaddedFixedLength
from daedal.policies.refine import Refine
from daedal.policies.sampling import ClassifierFreeGuidance, SuppressTokens, Temperature, TopPTopK
from daedal.policies.unmask import BlockPointer, ThresholdUnmask

__all__ = [
    "BlockPointer",
    "BlockQuotaUnmask",
    "Budget",
    "CachedBlocks",
    "ClassifierFreeGuidance",
    "Daedal",
    "DreamDecoding",
    "DreamUnmask",
    "EosConfidenceLength",
    "FastDllm",
    "KVCache",
    "LLaDADecoding",
    "LLaDASchedule",
    "LeftPaddedFixedLength",
    "LowConfidenceExpand",
    "ParallelUnmask",
    "Refine",
    "SuppressTokens",
    "Temperature",
    "ThresholdUnmask",
    "TopPTopK",
    "eos_confidence",
]
