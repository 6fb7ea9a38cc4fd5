"""OmegaPRM collection: the search, the Math-Shepherd baselines, their shared tree and driver.

    from prm_jax.omegaprm import OmegaPRMConfig, run_omegaprm
    records, stats = run_omegaprm(question, gold, policy, is_correct, OmegaPRMConfig(), seed=0)
"""

from prm_jax.omegaprm.search import OmegaPRMConfig, omegaprm_search, run_omegaprm  # noqa: F401
from prm_jax.omegaprm.shepherd import ShepherdConfig, run_math_shepherd, shepherd_search  # noqa: F401
