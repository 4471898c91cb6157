"""Three replicas behind Debian's nginx with the shipped config (deploy/nginx/): one is killed
with SIGKILL mid-run and restarted; no client request fails, and the replica takes traffic again
once it is ready. The bigger run, with figures: `python -m benchmarks.failover`."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.failover import parse_args, run_failover

pytestmark = pytest.mark.e2e


def test_killing_a_replica_fails_no_request_and_it_rejoins_once_ready(tmp_path: Path) -> None:
    args = parse_args(["--quick"])
    result = run_failover(args, tmp_path)
    summary = result.summary()

    # Every client request got its answer, and the right one, whichever replica gave it.
    assert summary["failed_client_requests"] == 0, summary
    assert summary["client_requests"] == args.requests + sum(r.requests for r in result.after)
    assert all(record.status == 200 for record in result.records), summary
    assert summary["max_abs_diff"] < 1e-5, summary

    # The kill was felt: nginx tried the dead (or not yet ready) replica, got no answer, and
    # passed the request on to another one, which answered.
    attempts = summary["attempts_on_killed_replica_since_kill"]
    assert sum(n for status, n in attempts.items() if status != "200") >= 1, summary
    retried = [record for record in result.records if record.retried]
    assert retried and summary["retried_requests"] == len(retried)
    assert all(record.upstream_statuses[-1] == "200" for record in retried)
    assert all(status in {"502", "503"} for r in retried for status in r.upstream_statuses[:-1])

    # The restarted replica rejoined: once ready, nginx sent it requests and it answered them.
    assert summary["answers_from_restarted_replica_after_ready"] >= args.min_rejoined, summary
