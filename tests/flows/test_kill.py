"""Issue #9: a SIGKILL at each stage boundary (and once inside ingest), then the next run converges.

Each trial copies the template warehouse, drops the same inbox
(bench.kill.write_kill_inputs) and runs a command with HMO_KILL_AFTER=<stage>,
which SIGKILLs it there; `hmo run` (the Prefect flow with its temporary
server) is killed after ingest, `hmo build` after each later stage, and
`hmo ingest` once as its third file has been received (bench.kill.arm_kill_at:
the harness wraps ingest.submissions.receive in the child; the power cut a
random kill lands on). Then flows.stages.run runs once more and
bench.kill.check_converged compares with a run that was never interrupted.
The commands are children of a forkserver that has imported dbt and Great
Expectations once (bench.kill.Forkserver), two trials at a time, so six
trials fit in make test; bench/kill.py runs 50 with fresh interpreters and
random kills.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `bench` is the project's package, not tests/bench
    sys.path.insert(0, str(ROOT))

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench import fuzz, kill

SEED = 3
# (command, HMO_KILL_AFTER stage or None, kill_at)
TRIALS = [("run", "ingest", None), ("build", "validate", None), ("build", "audit", None),
          ("build", "publish", None), ("build", "receipts", None),
          ("ingest", None, "ingest.submissions:receive:3")]
IDS = [f"{command}-after-{stage}" if stage else f"{command}-at-{kill_at.split(':', 1)[1]}"
       for command, stage, kill_at in TRIALS]


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    work = tmp_path_factory.mktemp("kill")
    executor = kill.Forkserver()
    warming = threading.Thread(target=executor.warm)
    warming.start()  # the forkserver imports dbt and GX on one core while the reference runs on the other
    fuzz.template()
    ref = kill.reference(work, SEED, cli=False)
    warming.join()
    planned = [kill.Trial(number, "boundary" if stage else "inside", command, stage=stage, kill_at=kill_at)
               for number, (command, stage, kill_at) in enumerate(TRIALS)]

    def one(trial: kill.Trial) -> kill.Trial:
        return kill.run_trial(trial, ref, work, SEED, recover="stages", executor=executor)

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(one, planned))
    return ref, dict(zip(IDS, done))


def _explain(trial: kill.Trial) -> str:
    runs = ", ".join(f"{r.command}: status {r.returncode} in {r.seconds:.1f} s" for r in trial.runs)
    return f"{trial.label()} ({runs})\n" + "\n".join(trial.problems)


def test_the_reference_has_every_verdict(trials):
    ref, _ = trials
    assert set(ref.outcome.verdicts().values()) == {"accepted", "rejected", "duplicate"}
    assert ref.outcome.marts


@pytest.mark.parametrize("trial_id", IDS)
def test_a_kill_is_a_kill_and_the_next_run_converges(trials, trial_id):
    _, done = trials
    trial = done[trial_id]
    assert trial.killed, _explain(trial)
    assert trial.converged and not trial.problems, _explain(trial)


def test_no_process_of_a_killed_run_is_left_behind(trials):
    _, done = trials
    left = {trial.label(): trial.left_after_kill + trial.left_after_recovery
            for trial in done.values() if trial.left_after_kill or trial.left_after_recovery}
    assert not left
