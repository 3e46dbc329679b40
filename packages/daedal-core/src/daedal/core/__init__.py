"""daedal-core: the denoising engine over a token canvas, with pluggy hooks.

Example::

    from daedal.core import Engine
    from daedal.core.testing import FakeAdapter

    result = Engine(FakeAdapter()).generate([[5, 6, 7]])
    print(result.tokens[0], result.stats.forward_passes)
"""

from daedal.core.adapter import Messages, ModelAdapter, PromptText
from daedal.core.canvas import Canvas, Expand, Remask, Unmask
from daedal.core.config import EngineConfig
from daedal.core.defaults import FixedLength, GumbelTemperature, ModelPredict, NoMasksLeft, SemiAutoregressive
from daedal.core.engine import Engine
from daedal.core.errors import (
    AdapterError,
    CanvasError,
    ConfigError,
    DaedalError,
    DaedalWarning,
    NoDecisionError,
    PluginError,
    PolicyError,
    PolicyNotFoundError,
)
from daedal.core.events import (
    CanvasInitialized,
    Event,
    Frame,
    LengthChanged,
    RunFinished,
    RunStarted,
    StepFinished,
    Trace,
)
from daedal.core.hookspecs import hookimpl, hookspec
from daedal.core.prediction import Prediction
from daedal.core.result import Result, Stats
from daedal.core.state import Stash, StashKey, State
from daedal.core.window import Window

__version__ = "0.1.0"

__all__ = [
    "AdapterError",
    "Canvas",
    "CanvasError",
    "CanvasInitialized",
    "ConfigError",
    "DaedalError",
    "DaedalWarning",
    "Engine",
    "EngineConfig",
    "Event",
    "Expand",
    "FixedLength",
    "Frame",
    "GumbelTemperature",
    "LengthChanged",
    "Messages",
    "ModelAdapter",
    "ModelPredict",
    "NoDecisionError",
    "NoMasksLeft",
    "PluginError",
    "PolicyError",
    "PolicyNotFoundError",
    "Prediction",
    "PromptText",
    "Remask",
    "Result",
    "RunFinished",
    "RunStarted",
    "SemiAutoregressive",
    "Stash",
    "StashKey",
    "State",
    "Stats",
    "StepFinished",
    "Trace",
    "Unmask",
    "Window",
    "hookimpl",
    "hookspec",
]
