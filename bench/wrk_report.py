"""Reading wrk's output, for the benchmark scripts that run it
(bench_http.sh, bench_edge.sh): they put bench/ on PYTHONPATH."""
import re
import statistics


def ms(text):
    """A wrk latency ("812.00us", "1.20ms", "2.01s") in milliseconds."""
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 3)


def parse(text):
    """Throughput, median and 99th percentile latency, non-2xx answers and
    socket errors of one `wrk --latency` run's output."""
    r = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
         "p50_ms": ms(re.search(r"\s50%\s+(\S+)", text).group(1)),
         "p99_ms": ms(re.search(r"\s99%\s+(\S+)", text).group(1))}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    r["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", text)
    r["socket_errors"] = m.group(1).strip() if m else "none"
    return r


def summary(runs):
    """The medians of several rounds of one run, with the rounds."""
    return {"requests_per_s": round(statistics.median(r["requests_per_s"] for r in runs), 1),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "non_2xx": sum(r["non_2xx"] for r in runs),
            "rounds": runs}
