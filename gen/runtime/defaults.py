"""Runtime defaults the CLI shows in --help, stated once (no heavy imports here)."""

BENCH_REPEATS = 5  # timed runs per configuration: enough for a median and a p95 on a quiet machine
BENCH_STEPS = (1, 10, 50)  # diffusion step counts gen bench sweeps when none are given: few-step to full
BENCH_WARMUP = 1  # untimed runs first: session creation and first-call allocation stay out of the figures
