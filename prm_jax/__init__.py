"""OmegaPRM process supervision and process reward models (built on `mode_jax`).

Nothing here yet: the OmegaPRM and PRM issues add envs, policies, the search, PRM heads and
verification. `mode_jax` never imports this package.
"""
