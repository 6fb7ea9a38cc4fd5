"""Policies that sample solution continuations (see `base` for the extension point)."""

from prm_jax.policy.base import Completion, Policy, TemplatePolicy  # noqa: F401
