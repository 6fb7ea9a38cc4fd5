"""Policies that sample solution continuations (see `base` for the extension point)."""

from prm_jax.policy.base import Policy, TemplatePolicy  # noqa: F401
