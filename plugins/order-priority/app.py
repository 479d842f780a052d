"""The order-priority component: waystation:plugin/scorer, built with componentize-py.

The logic is in priority.py (plain Python, unit-tested with CPython); this file only
parses the JSON, maps the result onto the WIT types and logs one line.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import types

import priority


class WitWorld(wit_world.WitWorld):
    def score(self, input: str) -> types.Assessment:
        try:
            doc = json.loads(input)
        except ValueError as e:
            raise Err(f"input is not valid JSON: {e}")
        try:
            result = priority.assess(doc)
        except priority.InputError as e:
            wit_world.log(types.Level.WARN, f"order-priority: {e}")
            raise Err(str(e))
        labels = dict(result.labels)
        wit_world.log(
            types.Level.INFO,
            f"order-priority: {labels['priority']} (score {result.score:.0f}, respond within {labels['response_sla']})",
        )
        return types.Assessment(
            score=result.score,
            reasons=result.reasons,
            labels=[types.Label(key=k, value=v) for k, v in result.labels],
        )
