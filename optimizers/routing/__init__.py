"""Learned routing between a strong and a cheap model: features, training, and the runtime policy.

``train.train_policy`` fits a policy from routing feedback and ``train.write_policy`` writes it;
``policy.RoutingPolicy.load(path).decide(prompt)`` routes one prompt. See ``bench/routing_quality.py`` for how
well it transfers to unseen subjects.
"""

from optimizers.routing.policy import OperatingPoint, PolicyFileError, RoutingDecision, RoutingPolicy
from optimizers.routing.train import feedback_from_routellm, train_policy, write_policy

__all__ = [
    "OperatingPoint",
    "PolicyFileError",
    "RoutingDecision",
    "RoutingPolicy",
    "feedback_from_routellm",
    "train_policy",
    "write_policy",
]
