"""The training loop's defaults, stated once: `gen train` and Python callers both read them here.

Kept free of heavy imports so the CLI can show them in --help without loading torch.
"""

LOOP = {
    "seed": 0,
    "sample_every": 500,  # a sample grid in RUN/samples/ this often
    "checkpoint_every": 500,  # a resumable state.safetensors this often (about 2 min of DDPM training here)
    "log_every": 50,  # a metrics.jsonl record this often
}
EVAL_N = 1000  # images `gen eval` scores: fewer make the Frechet distance's covariance noisy
