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
# `gen train vqvae-prior` (gen.trainkit.families.vqvae.prior): the VQ-VAE's transformer prior. Dropout and weight
# decay because ~1,260 digits give only ~20k code tokens to learn from.
PRIOR_DEFAULTS = {"steps": 3000, "batch_size": 64, "lr": 5e-4, "prior_dim": 128, "prior_layers": 4, "prior_heads": 4,
                  "prior_dropout": 0.1}
# `gen train noisy-classifier RUN` (gen.trainkit.families.ddpm.classifier): p(y | x_t, t) on the DDPM's own noise
# schedule. classifier_scale is the bundle's default guidance strength when labels are asked for: 2 gives
# 97.0% label accuracy on the digits with DDPM ancestral sampling (1: 86.1%), docs/RESULTS.md.
CLASSIFIER_DEFAULTS = {"steps": 3000, "batch_size": 128, "lr": 2e-3, "classifier_width": 32, "classifier_scale": 2.0}
