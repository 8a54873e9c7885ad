"""The worker lifecycle as a pure function: restart backoff, fatal, pause/drain/restart, thermal."""

from engine.supervisor import states as S
from engine.supervisor.states import WState

POLICY = S.RestartPolicy(backoff_s=1.0, backoff_max_s=8.0, fast_crash_s=10.0, max_fast_crashes=3)


def run(r: S.WorkerRecord, *events: S.Event) -> S.Transition:
    t = S.Transition(r)
    for ev in events:
        t = S.transition(t.record, ev, POLICY)
    return t


def running() -> S.WorkerRecord:
    return run(S.WorkerRecord(), S.Start(), S.Spawned(100.0), S.HeartbeatSeen(101.0)).record


def test_start_spawns_and_first_heartbeat_makes_it_running():
    t = S.transition(S.WorkerRecord(), S.Start(), POLICY)
    assert t.actions == (S.SPAWN,) and t.record.state is WState.STARTING
    t = run(t.record, S.Spawned(100.0))
    assert t.record.state is WState.STARTING and t.record.spawned_at == 100.0
    assert run(t.record, S.HeartbeatSeen(100.5)).record.state is WState.RUNNING


def test_crash_backs_off_exponentially_then_goes_fatal_with_reason():
    r = running()
    t = run(r, S.Exited(-9, 2.0, 102.0))
    assert t.record.state is WState.BACKOFF and t.record.backoff_until == 103.0
    assert "code -9" in t.record.reason
    assert run(t.record, S.TimeReached(102.5)).actions == ()
    t = run(t.record, S.TimeReached(103.0))
    assert t.actions == (S.SPAWN,) and t.record.restarts == 1
    t = run(t.record, S.Spawned(103.0), S.Exited(1, 1.0, 104.0))
    assert t.record.state is WState.BACKOFF and t.record.backoff_until == 106.0  # 2 s: doubled
    t = run(t.record, S.TimeReached(106.0), S.Spawned(106.0), S.Exited(1, 1.0, 107.0))
    assert t.record.state is WState.FATAL
    assert "3 crashes in a row" in t.record.reason and "code 1" in t.record.reason
    assert run(t.record, S.TimeReached(10_000.0)).actions == ()  # fatal stays fatal


def test_a_crash_after_long_uptime_starts_the_count_again():
    t = run(running(), S.Exited(1, 1.0, 101.0), S.TimeReached(102.0), S.Spawned(102.0),
            S.Exited(1, 500.0, 602.0))
    assert t.record.state is WState.BACKOFF and t.record.consecutive_crashes == 1
    assert t.record.backoff_until == 603.0


def test_backoff_is_capped():
    assert POLICY.delay(10) == 8.0


def test_pause_and_resume_write_control_and_change_state():
    t = run(running(), S.OperatorCommand("pause"))
    assert t.record.state is WState.PAUSED and t.actions == (S.WRITE_CONTROL,)
    t = run(t.record, S.OperatorCommand("resume"))
    assert t.record.state is WState.RUNNING and t.record.mode == "run"


def test_drain_then_exit_is_stopped_not_restarted():
    t = run(running(), S.OperatorCommand("drain"))
    assert t.record.state is WState.DRAINING
    t = run(t.record, S.Exited(0, 50.0, 150.0))
    assert t.record.state is WState.STOPPED and t.actions == ()
    t = run(t.record, S.OperatorCommand("resume"))
    assert t.actions == (S.SPAWN,) and t.record.state is WState.STARTING


def test_restart_terminates_then_respawns_immediately_without_counting_a_crash():
    t = run(running(), S.OperatorCommand("restart"))
    assert S.TERMINATE in t.actions and t.record.state is WState.STOPPING
    t = run(t.record, S.Exited(0, 3.0, 103.0))
    assert t.actions == (S.SPAWN,) and t.record.consecutive_crashes == 0 and t.record.restarts == 1


def test_restart_and_resume_bring_back_a_fatal_worker():
    fatal = S.WorkerRecord(state=WState.FATAL, consecutive_crashes=3, reason="fatal: ...")
    assert run(fatal, S.OperatorCommand("restart")).actions == (S.SPAWN,)
    t = run(fatal, S.OperatorCommand("resume"))
    assert t.actions == (S.SPAWN,) and t.record.consecutive_crashes == 0


def test_commands_that_cannot_apply_are_refused_with_a_reason():
    fatal = S.WorkerRecord(state=WState.FATAL)
    assert "fatal" in run(fatal, S.OperatorCommand("pause")).refused
    assert "stopped" in run(S.WorkerRecord(), S.OperatorCommand("drain")).refused
    assert "unknown" in run(running(), S.OperatorCommand("explode")).refused


def test_thermal_hold_pauses_and_cooling_resumes_but_never_overrides_operator_pause():
    t = run(running(), S.ThermalHot("GPU 1 at 84 C"))
    assert t.record.state is WState.PAUSED and "GPU 1 at 84 C" in t.record.reason
    assert run(t.record, S.ThermalCool()).record.state is WState.RUNNING
    t = run(running(), S.OperatorCommand("pause"), S.ThermalHot("x"), S.ThermalCool())
    assert t.record.state is WState.PAUSED and t.record.reason == "paused by operator"


def test_shutdown_terminates_live_workers_and_stops_the_rest():
    t = run(running(), S.Shutdown())
    assert t.actions == (S.TERMINATE,) and t.record.state is WState.STOPPING
    t = run(t.record, S.Exited(0, 10.0, 110.0))
    assert t.record.state is WState.STOPPED and t.actions == ()
    backoff = run(running(), S.Exited(1, 1.0, 101.0)).record
    t = run(backoff, S.Shutdown(), S.TimeReached(1000.0))
    assert t.record.state is WState.STOPPED and t.actions == ()
    assert run(t.record, S.OperatorCommand("resume")).refused
