"""Alerts with sustained windows and hysteresis; the thermal guard's hysteresis."""

from engine.supervisor.alerts import AlertEngine, Condition
from engine.supervisor.thermal import ThermalGuard


def hot(active: bool) -> list[Condition]:
    return [Condition("gpu_hot:1", active, message="GPU 1 hot" if active else "", subject="1",
                      raise_after_s=30.0, clear_after_s=20.0)]


def test_alert_raises_only_after_the_condition_held_for_its_window():
    eng = AlertEngine()
    assert eng.evaluate(hot(True), 0.0) == ()
    assert eng.evaluate(hot(True), 29.0) == ()
    (alert,) = eng.evaluate(hot(True), 30.0)
    assert alert.key == "gpu_hot:1" and alert.since == 30.0 and alert.message == "GPU 1 hot"


def test_a_blip_shorter_than_the_window_never_alerts():
    eng = AlertEngine()
    eng.evaluate(hot(True), 0.0)
    eng.evaluate(hot(False), 10.0)
    assert eng.evaluate(hot(True), 35.0) == ()  # the window starts again
    assert len(eng.evaluate(hot(True), 65.0)) == 1


def test_alert_clears_only_after_the_clear_window():
    eng = AlertEngine()
    eng.evaluate(hot(True), 0.0)
    eng.evaluate(hot(True), 30.0)
    assert len(eng.evaluate(hot(False), 40.0)) == 1
    assert len(eng.evaluate(hot(True), 45.0)) == 1  # back before clearing: same alert, same since
    assert eng.evaluate(hot(False), 50.0)[0].since == 30.0
    assert len(eng.evaluate(hot(False), 69.0)) == 1
    assert eng.evaluate(hot(False), 70.0) == ()


def test_zero_window_conditions_alert_at_once_and_vanished_subjects_clear():
    eng = AlertEngine()
    c = Condition("crash_loop:w1", True, severity="critical", message="w1 fatal", raise_after_s=0.0)
    (a,) = eng.evaluate([c], 5.0)
    assert a.severity == "critical"
    assert eng.evaluate([], 6.0) == ()


def test_thermal_guard_holds_at_hot_and_releases_only_at_resume():
    g = ThermalGuard(hot_c=83.0, resume_c=75.0)
    assert g.update({0: 70.0, 1: 83.0}) == ({1}, set())
    assert g.update({1: 80.0}) == (set(), set())  # between the two: still held
    assert g.holds_any((1,)) and not g.holds_any((0,))
    assert g.update({1: None}) == (set(), set())  # n/a keeps the hold
    assert g.update({1: 75.0}) == (set(), {1})
    assert not g.holds_any((1,))
