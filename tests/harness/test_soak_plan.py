"""The soak's plans: the order given, or a random one that always holds the hard cases."""

from __future__ import annotations

import pytest

from tts_sentinel.harness.soak.plan import WEIGHTS, Injection, expectation, parse_faults, random_plan


def test_faults_are_parsed_in_order_with_their_components_and_the_during_mark():
    plan = parse_faults("hang, error500:inference,oom@during,crash:web,weights")
    assert plan == [Injection("hang", "web"), Injection("error500", "inference"),
                    Injection("oom", "inference", during=True), Injection("crash", "web"),
                    Injection(WEIGHTS, "inference")]
    assert plan[2].label == "oom:inference@during"


@pytest.mark.parametrize("text, says", [
    ("hang,nosuch", "unknown fault 'nosuch'"),
    ("oom:web", "applies to inference, not to web"),
    ("none", "not a fault"),
    ("hang@during", "first fault"),
    ("", "no faults given"),
    (",".join(["hang"] * 51), "at most 50"),
])
def test_a_bad_plan_says_what_is_wrong(text, says):
    with pytest.raises(ValueError, match=says):
        parse_faults(text)


@pytest.mark.parametrize("seed", range(25))
def test_a_random_plan_holds_a_recurrence_a_fault_during_a_remediation_and_an_unhealable_fault(seed):
    plan = random_plan(8, seed)
    assert len(plan) == 8 and not plan[0].during
    assert any((a.fault, a.component) == (b.fault, b.component) for a, b in zip(plan, plan[1:], strict=False))
    assert sum(i.fault == WEIGHTS for i in plan) == 1
    during = [i for i, inj in enumerate(plan) if inj.during]
    assert len(during) == 1
    assert plan[during[0]].component != plan[during[0] - 1].component
    assert random_plan(8, seed) == plan, "the same seed gives the same plan"


def test_random_plans_are_bounded():
    with pytest.raises(ValueError, match="1 to 50"):
        random_plan(51, 0)
    assert len(random_plan(1, 0)) == 1


def test_expected_outcomes_follow_the_seeds_table():
    web = expectation("hang", "web")
    assert (web.component, web.ladder, web.healable) == ("web", ("light", "medium", "heavy"), True)
    engine = expectation("hang", "inference")
    assert (engine.component, engine.ladder) == ("inference", ("medium", "heavy"))
    assert expectation("oom", "inference").family != expectation("silent", "inference").family
    assert not expectation(WEIGHTS, "inference").healable
    assert expectation("segfault", "inference").healable
    assert not expectation("segfault", "inference", heavy_refused=True).healable
    assert not expectation("crash", "web").action_required


def test_the_third_crash_of_a_component_in_ten_minutes_is_a_restart_loop_that_wants_heavy():
    from tts_sentinel.harness.soak.plan import in_restart_loop, loop_expectation

    earlier = [("crash", "web", 0.0), ("hang", "web", 100.0), ("crash", "web", 300.0), ("crash", "inference", 350.0)]
    assert in_restart_loop("crash", "web", 590.0, earlier)
    assert not in_restart_loop("crash", "web", 610.0, earlier), "the first crash is out of the window"
    assert not in_restart_loop("crash", "inference", 400.0, earlier)
    assert not in_restart_loop("hang", "web", 400.0, earlier)
    assert loop_expectation("web").ladder == ("heavy",) and loop_expectation("web").healable
