"""Scenario parameters, the params codec of tokens, and the engine limits a scenario declares."""

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blkrace.engine import ModelError
from blkrace.engine.campaign import run_once
from blkrace.engine.params import ParamsError, decode_params, encode_params
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios.base import ENGINE_LIMITS, Param, ParamError, Scenario, Variant

_text = st.text(alphabet=st.characters(blacklist_characters=",=", blacklist_categories=("Cs", "Zs", "Cc")), min_size=1)


@given(st.dictionaries(_text, _text, max_size=6))
def test_params_round_trip_and_are_canonical(params):
    text = encode_params(params)
    assert decode_params(text) == params
    assert encode_params(dict(reversed(list(params.items())))) == text  # one string per set of params


def test_the_preemption_model_alone_reads_as_before():
    assert encode_params({"preempt": "full"}) == "preempt=full"
    assert decode_params("preempt=none") == {"preempt": "none"}
    assert decode_params("") == {}


@pytest.mark.parametrize("params", [{"a": "x,y"}, {"a=b": "c"}, {"a": ""}, {"a": " x"}])
def test_what_cannot_be_recorded_is_refused(params):
    with pytest.raises(ParamsError):
        encode_params(params)


@pytest.mark.parametrize("text", ["a", "a=", "=b", "a=1,a=2"])
def test_a_malformed_params_string_is_refused(text):
    with pytest.raises(ParamsError):
        decode_params(text)


class Recorder(Scenario):
    def build(self, execution, variant):
        execution.seen = (
            dict(variant.params),
            execution.max_delay_ns,
            execution.max_starve_steps,
            execution.spin_steps,
        )


def _scenario(**kw):
    return Recorder(
        "rec",
        "records what it is built with",
        "-",
        variants={
            "plain": Variant("plain", frozenset(), frozenset(), ""),
            "eight": Variant("eight", frozenset(), frozenset(), "", params={"nr_cpus": 8}, limits={"spin_steps": 5}),
        },
        params={"nr_cpus": Param(4), "fast": Param(False), "mode": Param("a", choices=("a", "b"))},
        **kw,
    )


def _built(scenario, variant, params=None):
    _, ex = run_once(scenario.builder(scenario.variants[variant], params=params), make_strategy("random", 0))
    return ex.seen


def test_parameters_resolve_default_then_variant_then_command_line():
    s = _scenario()
    assert _built(s, "plain")[0] == {"nr_cpus": 4, "fast": False, "mode": "a"}
    assert _built(s, "eight")[0]["nr_cpus"] == 8
    assert _built(s, "eight", {"nr_cpus": "2", "fast": "yes", "mode": "b"})[0] == {
        "nr_cpus": 2,
        "fast": True,
        "mode": "b",
    }


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"cpus": "2"}, "unknown parameter 'cpus' of rec (valid: nr_cpus, fast, mode)"),
        ({"nr_cpus": "two"}, "takes an integer"),
        ({"fast": "maybe"}, "takes true or false"),
        ({"mode": "c"}, "takes one of a, b"),
    ],
)
def test_bad_parameters_name_what_is_valid(params, needle):
    s = _scenario()
    with pytest.raises(ParamError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        s.resolve(s.variants["plain"], params)


def test_engine_limits_come_from_the_scenario_then_the_variant():
    assert _built(_scenario(), "plain")[1:] == tuple(ENGINE_LIMITS.values())
    s = _scenario(max_delay_ns=1000, max_starve_steps=None)
    assert _built(s, "plain")[1:] == (1000, None, 20)
    assert _built(s, "eight")[1:] == (1000, None, 5)
    bad = replace(s.variants["plain"], limits={"max_dely_ns": 1})
    with pytest.raises(ParamError, match="unknown engine limit 'max_dely_ns'"):
        s.builder(bad)


def test_limits_cannot_change_once_the_run_has_started():
    def build(ex):
        ex.steps = 1  # as if a step had run
        ex.set_limits(max_delay_ns=1, max_starve_steps=1, spin_steps=1)

    with pytest.raises(ModelError, match="set_limits"):
        run_once(build, make_strategy("random", 0))


def test_param_goes_with_a_scenario_not_with_all(capsys):
    from blkrace import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["check", "--all", "--param", "nr_cpus=2"])
    assert exit_info.value.code == 2
    assert "--param goes with a scenario, not with --all" in capsys.readouterr().err


def test_a_built_in_scenario_without_parameters_refuses_one(capsys):
    from blkrace import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["check", "budget-rerun", "--variant", "buggy", "--param", "nr_cpus=2"])
    assert exit_info.value.code == 2
    assert "unknown parameter 'nr_cpus' of budget-rerun (valid: none)" in capsys.readouterr().err
