"""The web chat page in a real headless chromium (Debian's, driven by Playwright) against a real
uvicorn server: the list renders, "not this" removes an item, markup in titles and input stays text."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def chromium_path() -> str:
    path = os.environ.get("PROMPTREC_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("no chromium: apt-get install -y chromium (or set PROMPTREC_CHROMIUM to its path)")
    return path


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


def test_chat_page_renders_lists_excludes_and_keeps_markup_as_text(browser, tiny_server, payloads, tmp_path):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1100, "height": 760})
    dialogs, console_errors = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    page.set_default_timeout(20_000)

    page.goto(tiny_server + "/")
    expect(page.locator("#status")).to_contain_text("24 items · no model (evidence only)")

    page.fill("#line", "/user 1")
    page.press("#line", "Enter")
    items = page.locator("#items > li.item")
    expect(items).to_have_count(5)
    img_item = page.locator('li.item[data-item-id="101"]')
    expect(img_item.locator(".title")).to_have_text(payloads["101"])  # the markup, as literal text
    expect(page.locator('li.item[data-item-id="100"] .title')).to_have_text(payloads["100"])
    expect(page.locator(".msg.bot").last).to_have_text("Now recommending for user 1")

    img_item.get_by_role("button", name="not this").click()
    expect(page.locator('li.item[data-item-id="101"]')).to_have_count(0)
    expect(items).to_have_count(5)
    expect(page.locator(".msg.bot").last).to_have_text("Excluded " + payloads["101"])

    typed = "<img src=y onerror=alert(3)><script>alert(4)</script> space"
    page.fill("#line", typed)
    page.press("#line", "Enter")
    expect(page.locator(".msg.you").last).to_have_text(typed)
    expect(page.locator("#send")).to_be_enabled()
    expect(page.locator('li.item[data-item-id="101"]')).to_have_count(0)  # the exclusion holds

    first_title = items.first.locator(".title").inner_text()
    items.first.get_by_role("button", name="why").click()
    expect(page.locator(".msg.bot").last).to_contain_text(first_title + ": ")
    expect(page.locator("#send")).to_be_enabled()

    # nothing was injected: no dialog, no element made from data, only the page's own script
    assert dialogs == []
    assert page.locator("img").count() == 0 and page.locator("b").count() == 0
    assert page.eval_on_selector_all("script", "nodes => nodes.map(n => n.getAttribute('src'))") == ["/static/app.js"]
    assert not [e for e in console_errors if "Content Security Policy" in e or "Uncaught" in e], console_errors

    shot = Path(os.environ.get("PROMPTREC_WEB_CHAT_SCREENSHOT") or tmp_path / "web-chat.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page.close()


def test_more_like_this_steers_to_the_item(browser, tiny_server):
    from playwright.sync_api import expect

    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(tiny_server + "/")
    page.fill("#line", "/user 2")
    page.press("#line", "Enter")
    expect(page.locator("#items > li.item")).to_have_count(5)
    crime = page.locator("#items > li.item", has_text="Crime Thriller").first
    title = crime.locator(".title").inner_text()
    crime.get_by_role("button", name="more like this").click()
    expect(page.locator(".msg.bot").last).to_have_text("Noted that you like " + title)
    expect(page.locator(".msg.you").last).to_have_text("more like " + title)
    expect(page.locator("#send")).to_be_enabled()
    page.close()


def test_understood_intent_is_shown_as_text(browser, tiny_server):
    """Results gain an ``understood`` field (what a typed request was understood as); the page shows
    it as text. The chat answer is replayed here with that field, markup included."""
    import json

    from playwright.sync_api import expect

    item = {"item_id": "120", "title": "Crime Thriller 1 (1990)", "rank": 1, "score": 1.0, "cited_history": [],
            "explanation": "<i>close</i> to what you watched", "explained_by": "evidence"}
    base = {"user_id": None, "items": [item], "ordered_by": "fusion", "request": "dark thrillers"}

    def answer(understood) -> str:
        frames = [("reply", {"session": "s", "text": "", "quit": False}), ("list", {**base, "understood": understood}),
                  ("final", {**base, "understood": understood}), ("done", {})]
        return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in frames)

    answers = [answer({"genres": ["thriller", "crime"], "mood": "<i>dark</i>", "era": None}),
               answer("understood: <img src=z onerror=alert(5)> dark thrillers"), answer(None)]
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.set_default_timeout(20_000)
    page.route("**/chat/**", lambda route: route.fulfill(status=200, body=answers.pop(0),
                                                          headers={"content-type": "text/event-stream"}))
    page.goto(tiny_server + "/")
    understood = page.locator("#understood")
    for line, shown in (("dark thrillers", "Understood as: genres: thriller, crime · mood: <i>dark</i>"),
                        ("darker", "Understood as: <img src=z onerror=alert(5)> dark thrillers")):
        page.fill("#line", line)
        page.press("#line", "Enter")
        expect(understood).to_have_text(shown)
        expect(understood).to_be_visible()
        expect(page.locator("#send")).to_be_enabled()
    expect(page.locator("li.item .reason")).to_have_text("<i>close</i> to what you watched")
    page.fill("#line", "anything")
    page.press("#line", "Enter")
    expect(understood).to_be_hidden()  # a list without the field hides it
    assert page.locator("i").count() == 0 and page.locator("img").count() == 0 and dialogs == []
    page.close()
