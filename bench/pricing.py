"""The one Lambda pricing model of the benchmark report: run.py's tables, charts.py's cost chart
and scale.py's capacity plan all price requests here (a module of its own, so none of them
imports another and there is no import circle)."""

ARM64_PRICE_GB_S = 0.0000133334  # AWS Lambda arm64, us-east-1, per GB-second
REQUEST_PRICE = 0.20  # per million requests


def lambda_cost(cpu_ms, wall_ms, memory_mb):
    """Cost of one million requests: the CPU part stretches with Lambda's CPU share (a full vCPU
    at 1769 MB), the rest (waiting on the database) does not; billed per 1 ms."""
    share = min(1.0, memory_mb / 1769)
    duration = cpu_ms / share + max(0.0, wall_ms - cpu_ms)
    billed_ms = max(1, int(-(-duration // 1)))
    return 1e6 * billed_ms / 1000 * memory_mb / 1024 * ARM64_PRICE_GB_S + REQUEST_PRICE, duration
