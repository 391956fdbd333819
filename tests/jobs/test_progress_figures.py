"""The figures a progress row keeps beside its log state (last step, ns/day, the last ENERGY line by title), read
by tables of many jobs instead of the whole series: derived from the recorded logs of tests/fixtures/namd/logs
(how they were made: tests/fixtures/namd/README.md), kept on every save, filled in for rows stored before."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from jobs.models import JobProgress
from jobs.namd_log import LogProgress, last_figures
from tests.factories import JobFactory
from tests.jobs.unit_jobs import FIXTURES

LOGS = FIXTURES / "logs"


def read(name: str) -> LogProgress:
    log = LogProgress()
    log.feed((LOGS / name).read_bytes())
    return log


@pytest.mark.parametrize("name", ["namd2_npt_pme.log", "namd2_minimize.log", "namd3_gpu_resident.log"])
def test_the_figures_are_the_logs_last_step_speed_and_last_energy_line(name: str) -> None:
    log = read(name)
    last_step, ns_per_day, energies = last_figures(log.to_state())
    assert (last_step, ns_per_day) == (log.last_step, log.ns_per_day)
    assert list(energies) == log.energy_titles
    for title in ("TS", "TOTAL", "TEMP"):
        assert energies[title] == log.energy_series(title)[-1][1]


def test_a_log_without_energies_has_none_and_a_short_last_row_leaves_its_missing_titles_none() -> None:
    assert last_figures({}) == (None, None, {})
    state = read("namd2_npt_pme.log").to_state()
    state["energy_titles"] = [*state["energy_titles"], "LATE"]  # a column named after the last row was kept
    assert last_figures(state)[2]["LATE"] is None


@pytest.mark.django_db
def test_every_save_keeps_the_figures_of_the_state_saved() -> None:
    job = JobFactory()
    progress = JobProgress.objects.create(job=job, log_state=read("namd2_minimize.log").to_state())
    stored = JobProgress.objects.get(pk=progress.pk)
    assert stored.last_step == read("namd2_minimize.log").last_step
    npt = read("namd2_npt_pme.log")
    progress.log_state = npt.to_state()
    progress.save(update_fields=["log_state"])  # the figures follow the state even when only it is named
    stored = JobProgress.objects.get(pk=progress.pk)
    assert (stored.last_step, stored.ns_per_day) == (npt.last_step, npt.ns_per_day)
    assert stored.final_energies["TOTAL"] == npt.energy_series("TOTAL")[-1][1]


@pytest.mark.django_db
def test_the_migration_fills_in_the_figures_of_rows_stored_before_them() -> None:
    npt = read("namd2_npt_pme.log")
    progresses = [JobProgress.objects.create(job=JobFactory(), log_state=npt.to_state()) for _ in range(3)]
    JobProgress.objects.update(last_step=None, ns_per_day=None, final_energies={})  # as 0005 left them
    migration = importlib.import_module("jobs.migrations.0006_progress_figures")
    migration.keep_figures(apps, None)
    for progress in JobProgress.objects.filter(pk__in=[p.pk for p in progresses]):
        assert (progress.last_step, progress.ns_per_day) == (npt.last_step, npt.ns_per_day)
        assert progress.final_energies["TEMP"] == npt.energy_series("TEMP")[-1][1]
