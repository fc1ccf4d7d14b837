"""Node types. Importing this package registers every built-in type in :data:`REGISTRY`."""

from flows.nodes import basic, external, inputs  # noqa: F401 - imported to register the types
from flows.nodes.base import REGISTRY, NodeType, Prompt

__all__ = ["REGISTRY", "NodeType", "Prompt"]
