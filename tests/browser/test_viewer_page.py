"""The 3D view in Chromium (WebGL by SwiftShader) on the real stack: a finished local-cluster run of ubiquitin
(the test corpus's real PSF and PDB), its frames played with the slider and the energy plot's cursor following.

The job page loads none of the viewer's files until the member opens the view; then NGL draws the molecule
(the canvas is checked to hold a picture, not a blank), the frames move it, each frame's step moves the energy
plot's cursor, and the view follows the theme. Screenshots light and dark; nothing is fetched from outside the
server and the Content-Security-Policy is kept.
"""

from __future__ import annotations

import base64
import zlib

import pytest
from django.test import Client

from jobs.models import JobView
from tests.jobs.cluster_jobs import create_job, job, register, wait_for, wait_for_state, wait_until_finished
from tests.jobs.test_viewer_on_cluster import VALUES, upload_ubiquitin

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MEMBER = "np_ci_web_viewer"
STEPS = 3000  # with DCD frames every 500 steps: 6 frames
VIEWER_FILES = ("/ngl.js", "/viewer.js", "/viewer.css")


def distinct_bytes(png: bytes) -> int:
    """How varied a PNG's pixels are: distinct byte values of its decompressed image data (a blank has few)."""
    chunks, offset = [], 8
    while offset < len(png):
        size = int.from_bytes(png[offset : offset + 4], "big")
        if png[offset + 4 : offset + 8] == b"IDAT":
            chunks.append(png[offset + 8 : offset + 8 + size])
        offset += 12 + size
    return len(set(zlib.decompress(b"".join(chunks))))


def stage_picture(browser) -> bytes:
    return base64.b64decode(browser.find("#viewer-stage").screenshot_as_base64)


def test_a_member_sees_the_molecule_of_a_finished_run_and_plays_its_frames(browser, celery_worker) -> None:
    setup = register((MEMBER,))
    member = setup.members[0]
    client: Client = setup.client(member)
    job_id = create_job(client, setup.profile, values={**VALUES, "run_steps": STEPS}, title="ubiquitin")["id"]
    upload_ubiquitin(client, job_id)
    wait_for(lambda: job(client, job_id)["state"] == "READY", timeout_s=90, what="READY")
    assert client.post(f"/api/v1/jobs/{job_id}/submit").status_code == 202
    wait_for_state(client, job_id, {"COMPLETED"}, timeout_s=240)
    wait_until_finished(client, job_id, timeout_s=120)

    browser.login(member.username)
    browser.visit(f"/jobs/{job_id}/")
    browser.wait_for(lambda d: browser.find("#energy-plot").get_attribute("data-points") != "0", "the energy plot")
    assert not [url for url in browser.requested_urls() if url.endswith(VIEWER_FILES)]  # nothing of it loaded yet
    browser.screenshot("viewer-0-closed")

    browser.find("#viewer-open").click()
    browser.wait_for(lambda d: browser.find("#viewer").get_attribute("data-state") == "READY", "the view", 120)
    assert any(url.endswith("vendor/ngl/ngl.js") for url in browser.requested_urls())
    assert JobView.objects.get(job_id=job_id).state == JobView.State.READY
    frames = client.get(f"/api/v1/jobs/{job_id}/view").json()["frames"]
    assert len(frames) == 6
    assert "1,231 atoms" in browser.find("#viewer-status").text
    assert browser.find("#viewer-layers").is_displayed()
    assert not browser.find("#viewer-solvent").is_displayed()  # ubiquitin alone: no water or ions to show
    assert distinct_bytes(stage_picture(browser)) > 40  # a drawn molecule, not an empty canvas
    browser.assert_nothing_external()

    # The newest frame is shown first, and the energy plot's cursor stands at its step.
    last = frames[-1]
    browser.wait_for(lambda d: browser.find("#viewer").get_attribute("data-step") == str(last["step"]), "frame")
    browser.wait_for(
        lambda d: browser.find("#energy-plot").get_attribute("data-frame-step") == str(last["step"]), "the cursor"
    )
    browser.screenshot("viewer-1-light")

    # The slider moves the molecule and the cursor to the first frame.
    before = stage_picture(browser)
    browser.driver.execute_script(
        "var s = document.getElementById('viewer-frame'); s.value = '0'; s.dispatchEvent(new Event('input'));"
    )
    first = frames[0]
    browser.wait_for(lambda d: browser.find("#viewer").get_attribute("data-frame") == str(first["index"]), "frame 0")
    browser.wait_for(
        lambda d: browser.find("#energy-plot").get_attribute("data-frame-step") == str(first["step"]), "the cursor"
    )
    assert "step 500 (1 of 6)" in browser.find("#viewer-frame-label").text
    browser.wait_for(lambda d: stage_picture(browser) != before, "the molecule to move")

    # Play runs through the frames; pause stops.
    browser.find("#viewer-play").click()
    browser.wait_for(lambda d: browser.find("#viewer").get_attribute("data-frame") == str(frames[3]["index"]), "play")
    browser.find("#viewer-play").click()
    assert browser.find("#viewer-play").get_attribute("aria-pressed") == "false"

    # The dark theme: the page and the view's background follow.
    light = browser.driver.execute_script("return window.portalViewer.stage().parameters.backgroundColor")
    browser.find("[data-theme-toggle]").click()
    browser.wait_for(
        lambda d: d.execute_script("return window.portalViewer.stage().parameters.backgroundColor") != light, "dark"
    )
    browser.screenshot("viewer-2-dark")
    browser.find("[data-theme-toggle]").click()
    browser.assert_nothing_external()
