"""Gates are parsed before anything slow runs: forms, limits, and the errors that name the fix."""

import math

import pytest

from gen.errors import GenError
from gen.optimize.choose import choose, refusal, verdicts
from gen.optimize.gate import parse_gate, parse_gates


def test_forms_and_limits():
    g = parse_gate("fd:1.5x")
    assert g.limit(10.0) == 15.0 and g.passes(14.9, 10.0) and not g.passes(15.1, 10.0) and not g.passes(math.nan, 10.0)
    assert parse_gate("FD:15").limit(3.0) == 15.0  # absolute
    acc = parse_gate("accuracy:-2")
    assert acc.limit(0.98) == pytest.approx(0.96) and acc.passes(0.965, 0.98) and not acc.passes(0.95, 0.98)
    assert [g.text for g in parse_gates([], conditional=True)] == ["fd:1.5x", "accuracy:-2"]
    assert [g.text for g in parse_gates([], conditional=False)] == ["fd:1.5x"]
    few = parse_gate("psnr:+0")  # Stable Diffusion: dB from the teacher's own 4-step images, or a floor
    assert few.text == "psnr:+0" and few.limit(27.5) == 27.5 and few.passes(27.6, 27.5) and not few.passes(27.4, 27.5)
    assert parse_gate("psnr:-1.5").limit(27.5) == 26.0 and parse_gate("psnr:25").limit(27.5) == 25.0
    assert few.passes(math.inf, 27.5) and not few.passes(math.nan, 27.5)  # identical images; broken ones
    assert [g.text for g in parse_gates([], conditional=False, sd=True)] == ["psnr:+0", "features:+0"]
    near = parse_gate("features:+0")  # Stable Diffusion: feature distance from the teacher's own 4-step images' (lower passes)
    assert near.text == "features:+0" and near.passes(0.019, 0.0305) and not near.passes(0.0345, 0.0305)
    assert not few.passes(27.5, 27.5) and not near.passes(0.0305, 0.0305)  # "closer than": the bar's own images fail
    assert parse_gate("features:0.03").limit(0.5) == 0.03 and parse_gate("features:+0.01").limit(0.02) == pytest.approx(0.03)


@pytest.mark.parametrize("text, message", [
    ("ssim:0.9", "not a gate gen knows; metrics: fd, accuracy, psnr"),
    ("psnr:1.5x", "psnr takes dB, signed against the teacher's own 4-step images"),
    ("psnr:0", "psnr takes dB"),
    ("fd", "not a gate gen knows"),
    ("fd:0.5x", "below 1x asks for better than the teacher"),
    ("fd:-3", "an fd bound must be positive"),
    ("accuracy:2", "as a negative number"),
    ("features:0", "features takes a distance, signed against the teacher's own 4-step images"),
    ("features:2x", "features takes a distance"),
])
def test_bad_gates_are_refused_by_name(text, message):
    with pytest.raises(GenError, match=message) as e:
        parse_gate(text)
    assert e.value.argument == "gate"


def test_accuracy_on_an_unconditional_teacher_is_refused():
    with pytest.raises(GenError, match="needs a class-conditional teacher"):
        parse_gates(["accuracy:-2"], conditional=False)


def _q(fd, acc=None):
    return {"metrics": {"fd_digits": fd, **({"label_accuracy": acc} if acc is not None else {})}}


def test_the_fastest_passing_candidate_is_chosen_and_none_passing_names_the_closest():
    gates = parse_gates(["fd:1.5x"], conditional=False)
    quality = {"ref": _q(10.0), "fast bad": _q(30.0), "fast ok": _q(14.0), "faster ok": _q(12.0)}
    v = verdicts(gates, quality, "ref")
    assert [n for n in v if v[n]["passes"]] == ["ref", "fast ok", "faster ok"] and v["fast bad"]["gates"]["fd:1.5x"]["limit"] == 15.0
    latency = {"ref": {"baseline": True, "speedup": 1.0}, "fast bad": {"speedup": 50.0, "decision": "faster"},
               "fast ok": {"speedup": 20.0, "decision": "faster"}, "faster ok": {"speedup": 30.0, "decision": "faster"}}
    assert choose(v, latency) == ("faster ok", {})
    slow = {**latency, "fast ok": {"speedup": 0.9, "decision": "not faster"}, "faster ok": {"speedup": 1.0, "decision": "undecided"}}
    assert choose(v, slow)[0] == "ref"  # nothing that passes is decided faster: the teacher itself
    strict = verdicts(parse_gates(["fd:5"], conditional=False), quality, "ref")
    with pytest.raises(GenError, match=r"no candidate meets every gate, so nothing was written; fd:5: closest ref at 10 \(limit 5\)"):
        choose(strict, latency)
    assert "faster ok" not in refusal(strict)
