"""Account pages in Chromium: log in, the token page with htmx, password change, the error pages, light and dark."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.keys import Keys

from accounts.models import ApiToken
from tests.factories import MEMBER_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_member_logs_in_creates_a_token_with_htmx_and_sees_it_once(browser, member) -> None:
    browser.visit("/account/tokens/")
    assert "/login/" in browser.driver.current_url
    browser.screenshot("login")
    browser.login(member.username)
    browser.visit("/account/tokens/")
    browser.find("input[name=name]").send_keys("laptop")
    browser.find("#tokens-panel button[type=submit]").click()
    secret = browser.wait_visible("#new-token").text
    assert secret.startswith("np_")
    assert ApiToken.objects.get(user=member, name="laptop").prefix == secret[:10]
    browser.assert_nothing_external()
    browser.screenshot("api-tokens")
    browser.visit("/account/tokens/")
    assert secret not in browser.driver.page_source
    assert "laptop" in browser.text()


def test_a_wrong_password_shows_the_error_and_keeps_the_member_out(browser, member) -> None:
    browser.visit("/login/")
    browser.find("input[name=username]").send_keys(member.username)
    browser.find("input[name=password]").send_keys("not the password")
    browser.find("form button[type=submit]").click()
    assert "did not match" in browser.wait_visible("[role=alert]").text
    assert "/login/" in browser.driver.current_url


def test_a_member_changes_the_password_and_the_new_one_works(browser, member) -> None:
    browser.login(member.username)
    browser.visit("/account/password/")
    browser.screenshot("password-change")
    browser.find("input[name=old_password]").send_keys(MEMBER_PASSWORD)
    browser.find("input[name=new_password1]").send_keys("short")
    browser.find("input[name=new_password2]").send_keys("short")
    browser.find("main form button[type=submit]").click()
    assert "too short" in browser.wait_visible(".field-error").text
    browser.find("input[name=old_password]").send_keys(MEMBER_PASSWORD)
    browser.find("input[name=new_password1]").send_keys("a much longer passphrase 42")
    browser.find("input[name=new_password2]").send_keys("a much longer passphrase 42")
    browser.find("main form button[type=submit]").click()
    browser.wait_for(lambda d: "/account/password/done/" in d.current_url, "the password change to finish")
    browser.logout()
    browser.login(member.username, "a much longer passphrase 42")
    assert "/login/" not in browser.driver.current_url


def test_the_404_page_has_the_portals_look(browser, member) -> None:
    browser.login(member.username)
    browser.visit("/jobs/999999/")
    assert "Not found" in browser.find("h1").text
    assert browser.find("nav[aria-label=Main]").is_displayed()
    browser.assert_nothing_external()
    browser.screenshot("error-404")


def test_the_theme_toggle_switches_to_dark_and_is_remembered(browser, member) -> None:
    browser.login(member.username)
    browser.visit("/account/tokens/")
    browser.driver.execute_script("localStorage.removeItem('portal-theme')")
    browser.visit("/account/tokens/")
    before = browser.driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    browser.find("[data-theme-toggle]").click()
    after = browser.driver.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert before != after
    browser.visit("/account/tokens/")
    assert browser.driver.execute_script("return getComputedStyle(document.body).backgroundColor") == after
    browser.screenshot("api-tokens-other-theme")
    browser.driver.execute_script("localStorage.removeItem('portal-theme')")


def test_the_keyboard_reaches_the_skip_link_first_and_the_menu_opens_with_enter(browser, member) -> None:
    browser.login(member.username)
    browser.visit("/account/tokens/")
    body = browser.find("body")
    body.send_keys(Keys.TAB)
    focused = browser.driver.switch_to.active_element
    assert focused.text == "Skip to content"
    focused.send_keys(Keys.ENTER)
    assert browser.driver.switch_to.active_element.get_attribute("id") == "main"
    menu = browser.find("details.menu summary")
    menu.send_keys(Keys.ENTER)
    assert browser.find("details.menu").get_attribute("open") is not None
    assert browser.find("details.menu a[href='/account/password/']").is_displayed()


def test_pages_fit_a_phone_screen_without_sideways_scrolling(browser, member) -> None:
    browser.login(member.username)
    browser.driver.set_window_size(400, 800)
    try:
        for path in ("/", "/jobs/", "/jobs/new/", "/templates/", "/clusters/", "/activity/", "/account/tokens/"):
            browser.visit(path)
            overflow = browser.driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 400px"
        browser.visit("/jobs/new/")
        browser.driver.save_screenshot(str(browser.screenshot_path("wizard-1-templates-phone")))
    finally:
        browser.driver.set_window_size(1280, 900)
