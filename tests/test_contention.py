"""The step-time watchdog on synthetic step times and run-queue waits: when it lowers torch's
thread count, by how much, probes, tells once, restores."""

import os

import pytest
import torch

from tinyreason import contention
from tinyreason.contention import StepWatchdog, cpu_limit, fewer_threads


@pytest.fixture(autouse=True)
def _threads(monkeypatch):
    """Each test sets its own starting thread count; the session's count comes back after it. The
    CPU limit is fixed above any count used here, so a 1-CPU test machine sees the same."""
    before = torch.get_num_threads()
    monkeypatch.setattr(contention, "cpu_limit", lambda: 64)
    yield
    torch.set_num_threads(before)


class Wait:
    """A stand-in for the schedstat counter: cumulative seconds of run-queue wait, advanced by
    the test (a step's wall time here is microseconds, so any advance reads as contention)."""

    def __init__(self):
        self.total = 0.0

    def __call__(self) -> float:
        return self.total


def watchdog(threads: int, monkeypatch, wait=None, **kw):
    torch.set_num_threads(threads)
    monkeypatch.setattr(contention, "runqueue_wait", wait or (lambda: None))
    said: list[str] = []
    return StepWatchdog(say=said.append, **kw), said


def test_quiet_steps_change_nothing(monkeypatch):
    dog, said = watchdog(4, monkeypatch)
    for t in [5.0] + [1.0, 1.2, 0.9, 1.1, 2.5, 1.0] * 5:  # a slow warm-up step, then ordinary jitter
        assert dog.observe(t) == {}
    assert torch.get_num_threads() == 4 and said == []


def test_steps_far_above_the_median_lower_threads_and_tell_once(monkeypatch):
    dog, said = watchdog(4, monkeypatch)
    for t in [3.0, 1.0, 1.0, 1.0, 1.0]:
        assert dog.observe(t) == {}
    assert dog.observe(3.5) == {}  # one slow step is patience, not contention
    assert dog.observe(3.5) == {"contention/threads": 2, "contention/slowdown": 3.5}
    assert torch.get_num_threads() == 2
    assert len(said) == 1 and "3.5x their median of 1.00 s" in said[0] and "4 -> 2" in said[0]
    dog.observe(4.0)
    assert dog.observe(4.0) == {"contention/threads": 1, "contention/slowdown": 4.0}  # halved again
    assert torch.get_num_threads() == 1 and len(said) == 1
    dog.close()
    assert torch.get_num_threads() == 4


def test_as_a_context_manager_it_restores_the_threads_when_the_loop_raises(monkeypatch):
    dog, _ = watchdog(4, monkeypatch)
    with pytest.raises(RuntimeError), dog:
        for t in [3.0, 1.0, 1.0, 1.0, 1.0, 3.5, 3.5]:
            dog.observe(t)
        assert torch.get_num_threads() == 2
        raise RuntimeError("a step failed")
    assert torch.get_num_threads() == 4


def test_a_slowdown_without_run_queue_wait_halves_the_threads(monkeypatch):
    wait = Wait()
    dog, said = watchdog(8, monkeypatch, wait)
    for t in [1.0] * 5:
        dog.observe(t)
    for _ in range(2):
        wait.total += 1e-10  # some wait, too little to say how many cores were taken
        out = dog.observe(4.0)
    assert out["contention/threads"] == 4 and "4.0x their median" in said[0]


def test_isolated_slow_steps_are_ignored(monkeypatch):
    dog, said = watchdog(2, monkeypatch)
    for t in [1.0] * 4 + [9.0, 1.0] * 5:
        assert dog.observe(t) == {}
    assert torch.get_num_threads() == 2 and said == []


def test_runqueue_wait_finds_a_competitor_present_from_the_start(monkeypatch):
    wait = Wait()
    dog, said = watchdog(2, monkeypatch, wait)
    out = []
    for _ in range(3):  # every step equally slow: the median alone would see nothing
        wait.total += 1.0
        out.append(dog.observe(9.0))
    assert out[0] == {} and out[1]["contention/threads"] == 1 and out[1]["contention/waiting"] > 0.5  # from step 1
    assert torch.get_num_threads() == 1 and "waited for a CPU" in said[0]


def test_probe_returns_to_the_full_count_once_the_cores_are_free(monkeypatch):
    wait = Wait()
    dog, said = watchdog(2, monkeypatch, wait, probe_every=3)
    for t in (1.0, 1.0, 1.0, 1.0):
        dog.observe(t)
    for _ in range(2):
        wait.total += 1.0
        dog.observe(5.0)
    assert torch.get_num_threads() == 1
    assert [dog.observe(1.4) for _ in range(3)] == [{}, {}, {"contention/threads": 2}]  # the probe starts
    assert torch.get_num_threads() == 2
    assert dog.observe(1.0) == {"contention/threads": 2}  # the probe step was quiet: stays
    assert [dog.observe(1.0) for _ in range(5)] == [{}] * 5 and torch.get_num_threads() == 2 and len(said) == 1


def test_a_contended_probe_goes_back_down_and_waits_twice_as_long(monkeypatch):
    wait = Wait()
    dog, _ = watchdog(2, monkeypatch, wait, probe_every=2)
    for t in (1.0, 1.0, 1.0, 1.0):
        dog.observe(t)
    for _ in range(2):
        wait.total += 1.0
        dog.observe(5.0)
    dog.observe(1.5), dog.observe(1.5)
    assert torch.get_num_threads() == 2  # probing
    wait.total += 1.0
    assert dog.observe(9.0)["contention/threads"] == 1
    assert torch.get_num_threads() == 1 and dog.probe_every == 4
    assert [dog.observe(1.5) for _ in range(4)][-1] == {"contention/threads": 2}


def test_at_one_thread_it_only_tells_once(monkeypatch):
    dog, said = watchdog(1, monkeypatch)
    for t in [1.0] * 4:
        dog.observe(t)
    assert [dog.observe(5.0) for _ in range(6)] == [{}] * 6  # no metrics: a run's records stay as without it
    assert len(said) == 1 and "already runs one thread" in said[0] and torch.get_num_threads() == 1


def test_more_threads_than_usable_cpus_are_lowered_on_the_first_step(monkeypatch):
    dog, said = watchdog(4, monkeypatch)
    monkeypatch.setattr(contention, "cpu_limit", lambda: 2)
    assert dog.observe(1.0) == {"contention/threads": 2}
    assert torch.get_num_threads() == 2 and "4 threads on 2 usable CPUs" in said[0]
    for _ in range(60):  # 2 is now the full count: nothing to probe
        assert dog.observe(1.0) == {}
    dog.close()
    assert torch.get_num_threads() == 4


def test_disabled_does_nothing(monkeypatch):
    dog, said = watchdog(2, monkeypatch, enabled=False)
    assert [dog.observe(t) for t in [1.0] * 4 + [50.0] * 4] == [{}] * 8
    assert torch.get_num_threads() == 2 and said == []


def test_fewer_threads_subtracts_the_cores_others_took():
    assert fewer_threads(2, 2 * 1 / 3) == 1  # one competitor beside 2 threads on 2 cores
    assert fewer_threads(8, 8 * 1 / 9) == 7
    assert fewer_threads(8, 8 * 2 / 10) == 6
    assert fewer_threads(8, None) == 4 and fewer_threads(8, 0.0) == 4
    assert fewer_threads(4, 9.0) == 1 and fewer_threads(1, 3.0) == 1


def test_cpu_limit_reads_affinity_and_cgroup_quota(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    quota = tmp_path / "cpu.max"
    quota.write_text("max 100000\n")
    assert cpu_limit(quota) == affinity
    quota.write_text("150000 100000\n")
    assert cpu_limit(quota) == min(affinity, 2)
    assert cpu_limit(tmp_path / "missing") == affinity


def test_runqueue_wait_reads_this_process_schedstat():
    if not os.path.exists("/proc/self/schedstat"):
        pytest.skip("no per-thread schedstat (not Linux)")
    a = contention.runqueue_wait()
    sum(i * i for i in range(200_000))
    b = contention.runqueue_wait()
    assert a is not None and 0.0 <= a <= b
