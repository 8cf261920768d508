"""The one deadline rule (:func:`tether.engine.exchange.due_after`): what it says at each
stage, and the compiled path held to it, value for value."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.engine import compiled
from tether.engine.exchange import PHASES, STAGES, Phase, Stage, due_after


def test_a_sent_request_has_the_header_timeout_within_the_whole() -> None:
    assert due_after(Stage.SENT, 10.0, 0.0, 2.0, 5.0) == (12.0, Phase.HEADERS)
    assert due_after(Stage.SENT, 10.0, 11.0, 2.0, 5.0) == (11.0, Phase.WHOLE)
    assert due_after(Stage.SENT, 10.0, 30.0, 0.0, 5.0) == (30.0, Phase.WHOLE)


def test_a_body_that_goes_on_has_the_drain_timeout_within_the_whole() -> None:
    assert due_after(Stage.BODY, 10.0, 0.0, 2.0, 5.0) == (15.0, Phase.DRAIN)
    assert due_after(Stage.BODY, 10.0, 14.0, 2.0, 5.0) == (14.0, Phase.WHOLE)
    # No drain timeout: the header timeout is over all the same, the whole one holds.
    assert due_after(Stage.BODY, 10.0, 30.0, 2.0, 0.0) == (30.0, Phase.WHOLE)
    assert due_after(Stage.BODY, 10.0, 0.0, 2.0, 0.0) == (0.0, Phase.WHOLE)


def test_any_other_stage_has_the_whole_requests_deadline() -> None:
    assert due_after(Stage.HEAD, 10.0, 30.0, 2.0, 5.0) == (30.0, Phase.WHOLE)


ns = st.integers(0, 10**12)
timeout = st.one_of(st.just(0), st.integers(1, 10**11))


@pytest.mark.skipif(compiled.native is None, reason="the compiled path is not built here")
@given(st.sampled_from(STAGES), ns, st.one_of(st.just(0), ns), timeout, timeout)
def test_the_compiled_path_mirrors_the_rule(
    stage: Stage, now: int, deadline: int, header: int, drain: int
) -> None:
    # In nanoseconds, as integers, so that the two compare exactly.
    assert compiled.native is not None
    due, phase = compiled.native.due_after(STAGES.index(stage), now, deadline, header, drain)
    assert (due, PHASES[phase]) == due_after(stage, now, deadline, header, drain)
