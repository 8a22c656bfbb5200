"""One registry of models: name -> (pydantic config class, builder). Recipes name models here."""
from typing import Callable, Dict, Tuple, Type

from pydantic import BaseModel

MODELS: Dict[str, Tuple[Type[BaseModel], Callable]] = {}


def register_model(name: str, config_cls: Type[BaseModel]):
    def wrap(builder):
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        MODELS[name] = (config_cls, builder)
        return builder
    return wrap


def model_config(name: str, fields: dict) -> BaseModel:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name][0](**fields)


def build_model(name: str, config: BaseModel, quant=None):
    """Build the registered model; quant is a QuantSpec for the QAT build, None for float."""
    return MODELS[name][1](config, quant)
