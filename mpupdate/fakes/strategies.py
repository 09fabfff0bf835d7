"""Hypothesis strategies for update notification sequences and scenarios.

``grammatical_scenarios()`` draws scenarios whose notifications follow the grammar of MPCLIENT.md
section 4 (what strict mode accepts); ``any_scenarios()`` draws scenarios in any order, with
unknown numbers and missing data (what lenient mode must survive). Requires ``hypothesis``
(the ``test`` extra).
"""

from __future__ import annotations

from hypothesis import strategies as st

from mpupdate.constants import E_ABORT, S_FALSE, S_OK, Notify, SigUpdateType, Stage

from .scenario import Scenario, ScenarioComplete, ScenarioNotification, SigUpdateData

__all__ = ["any_scenarios", "failure_hresults", "grammatical_scenarios", "sigupdate_data"]

N = Notify

#: Failure HRESULTs a COMPLETE may carry.
failure_hresults = st.sampled_from(
    [0x80070005, 0x800106BA, 0x80072EFD, 0x80070643, 0x8050A001, 0x80240022, E_ABORT]
)


def sigupdate_data(total: int, index: int, stage: Stage) -> st.SearchStrategy[SigUpdateData]:
    return st.builds(
        SigUpdateData,
        percent=st.integers(0, 100),
        total_updates=st.just(total),
        current_index=st.just(index),
        update_type=st.sampled_from([int(t) for t in SigUpdateType]),
        stage=st.just(int(stage)),
        path=st.one_of(st.none(), st.text(max_size=40).filter(lambda s: "\0" not in s)),
    )


@st.composite
def grammatical_scenarios(draw: st.DrawFn) -> Scenario:
    """A scenario the strict grammar accepts, ending in success, S_FALSE or a failure."""
    kinds: list[tuple[Notify, Stage, int, int]] = []
    packages = draw(st.integers(0, 3))
    kinds.append((N.SIGUPDATE_SEARCH_START, Stage.SEARCH, packages, 0))
    kinds.append((N.SIGUPDATE_SEARCH_COMPLETE, Stage.SEARCH, packages, 0))
    if packages and draw(st.booleans()):
        kinds.append((N.SIGUPDATE_SOFTWARE_UPDATE_AVAILABLE, Stage.SEARCH, packages, 0))
    for index in range(packages):
        kinds.append((N.SIGUPDATE_DOWNLOAD_START, Stage.DOWNLOAD, packages, index))
        kinds += [(N.SIGUPDATE_DOWNLOAD_PROGRESS, Stage.DOWNLOAD, packages, index)] * draw(
            st.integers(0, 4)
        )
        kinds.append((N.SIGUPDATE_DOWNLOAD_COMPLETE, Stage.DOWNLOAD, packages, index))
        kinds.append((N.SIGUPDATE_INSTALL_START, Stage.INSTALL, packages, index))
        kinds += [(N.SIGUPDATE_INSTALL_PROGRESS, Stage.INSTALL, packages, index)] * draw(
            st.integers(0, 3)
        )
        kinds.append((N.SIGUPDATE_INSTALL_COMPLETE, Stage.INSTALL, packages, index))
    if packages and draw(st.booleans()):
        kinds.append((N.SIGUPDATE_REBOOT_REQUIRED, Stage.INSTALL, packages, 0))
    if draw(st.booleans()):
        kinds.append((N.SIGUPDATE_REQUEST_PROCESSED, Stage.INSTALL, packages, 0))
    ending = draw(st.sampled_from(["success", "failure", "internal-failure"]))
    if ending != "success":
        kinds = kinds[: draw(st.integers(0, len(kinds)))]
    notifications = []
    at = 0.0
    percents: dict[tuple[Notify, int], int] = {}
    for notify, stage, total, index in kinds:
        at += draw(st.sampled_from([0.0, 0.1, 0.5, 2.0]))
        data = None
        if notify != N.SIGUPDATE_SEARCH_START and (
            notify in (N.SIGUPDATE_DOWNLOAD_PROGRESS, N.SIGUPDATE_INSTALL_PROGRESS)
            or draw(st.booleans())
        ):
            data = draw(sigupdate_data(total, index, stage))
            if notify in (N.SIGUPDATE_DOWNLOAD_PROGRESS, N.SIGUPDATE_INSTALL_PROGRESS):
                low = percents.get((notify, index), 0)
                percent = draw(st.integers(low, 100))
                percents[(notify, index)] = percent
                data = SigUpdateData(
                    percent,
                    data.total_updates,
                    data.current_index,
                    data.update_type,
                    data.stage,
                    data.path,
                )
        hresult = 0
        notifications.append(ScenarioNotification(round(at, 3), int(notify), hresult, data))
    if ending == "success":
        final = S_FALSE if packages == 0 and draw(st.booleans()) else S_OK
    else:
        final = draw(failure_hresults)
        if ending == "internal-failure":
            at += 0.5
            notifications.append(ScenarioNotification(round(at, 3), int(N.INTERNAL_FAILURE), final))
    complete = ScenarioComplete(round(at + 0.5, 3), final)
    return Scenario("drawn", "drawn by grammatical_scenarios()", tuple(notifications), complete)


_MIDDLE = [int(n) for n in Notify if n not in (N.SIGUPDATE_START, N.SIGUPDATE_COMPLETE)]


@st.composite
def any_scenarios(draw: st.DrawFn) -> Scenario:
    """Any order, unknown numbers, odd data and callback types: what lenient mode must survive."""
    count = draw(st.integers(0, 25))
    notifications = []
    at = 0.0
    for _ in range(count):
        at += draw(st.sampled_from([0.0, 0.25, 1.0]))
        notify = draw(
            st.one_of(
                st.sampled_from(_MIDDLE),
                st.integers(0, 0xFFFFFFFF).filter(
                    lambda n: n not in (int(N.SIGUPDATE_START), int(N.SIGUPDATE_COMPLETE))
                ),
            )
        )
        data = draw(
            st.one_of(
                st.none(),
                st.builds(
                    SigUpdateData,
                    percent=st.integers(0, 0xFFFFFFFF),
                    total_updates=st.integers(0, 0xFFFFFFFF),
                    current_index=st.integers(0, 0xFFFFFFFF),
                    update_type=st.integers(0, 0xFFFFFFFF),
                    stage=st.integers(0, 0xFFFFFFFF),
                    path=st.one_of(st.none(), st.text(max_size=20).filter(lambda s: "\0" not in s)),
                ),
            )
        )
        notifications.append(
            ScenarioNotification(
                round(at, 3),
                notify,
                draw(st.integers(0, 0xFFFFFFFF)),
                data,
                draw(st.sampled_from([6, 6, 6, 0, 15])),
            )
        )
    final = draw(st.one_of(st.sampled_from([S_OK, S_FALSE, E_ABORT]), st.integers(0, 0xFFFFFFFF)))
    complete = ScenarioComplete(round(at + 1.0, 3), final)
    return Scenario("drawn", "drawn by any_scenarios()", tuple(notifications), complete)
