"""The chat page in a real browser: Debian's headless Chromium driven by Selenium against a live
`llamactypes serve` on a tiny generated model. Load the page, send a message, watch the streamed reply
appear, stop a long reply, reload and find the conversation again. Nothing is downloaded: the driver is
/usr/bin/chromedriver and Selenium Manager is made to fail if anything calls it.

CI installs the browser with `apt-get install chromium chromium-driver` (.ci/run); where neither is
installed the test is skipped with that reason.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from tests.fixtures.live_server import LiveServer
from tests.fixtures.tiny_gguf import write_tiny_model

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1100,900"]
PROMPT = "Why?"  # greedy on the tiny model: 2,000 tokens without the end token (checked below)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, native_lock: None) -> Iterator[LiveServer]:
    path = write_tiny_model(tmp_path_factory.mktemp("web") / "tiny-web.gguf", n_ctx=4096)
    live = LiveServer([str(path), "--n-ctx", "4096", "--threads", "1"])
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver; .ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common import selenium_manager

    def no_downloads(*args: object, **kwargs: object) -> None:
        raise AssertionError("Selenium Manager was called: it would download a driver")

    monkeypatch.setattr(selenium_manager.SeleniumManager, "binary_paths", no_downloads)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def assistant_texts(driver: Any) -> list[str]:
    """Read in one script: the page replaces a streaming message's node on every chunk."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('.msg.assistant .content')).map(n => n.textContent)")


def send(driver: Any, text: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, "input")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.ID, "send").click()


def set_field(driver: Any, element_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "settings").click()  # open <details>
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(value)
    driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", field)


def test_chat_page_streams_stops_and_remembers(server: LiveServer, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    # the premise of the stop step, checked through the API: this reply (alone in its conversation,
    # as the page sends it below) runs to max_tokens
    body = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 200, "temperature": 0}
    answer = requests.post(server.url + "/v1/chat/completions", json=body, timeout=60).json()
    assert answer["choices"][0]["finish_reason"] == "length", answer

    browser.get(server.url + "/")
    assert browser.title == "llamactypes chat"
    wait_for(lambda: browser.find_element(By.ID, "model").text == "tiny-web", what="the model name from /v1/models")

    set_field(browser, "max-tokens", "12")
    send(browser, "Hello there")
    wait_for(lambda: browser.find_element(By.ID, "send").is_displayed(), what="the reply to finish")
    texts = assistant_texts(browser)
    assert len(texts) == 1 and texts[0].strip(), texts
    stats = browser.find_element(By.ID, "stats").text
    assert "tokens/s" in stats and "/ 4096 tokens" in stats, stats

    # a long reply, in a new conversation so its prompt is the one checked above: it streams (the
    # text grows), Stop ends it, the server is free again at once
    browser.find_element(By.ID, "new-chat").click()
    wait_for(lambda: assistant_texts(browser) == [], what="an empty new conversation")
    set_field(browser, "max-tokens", "3000")
    set_field(browser, "temperature", "0")
    send(browser, PROMPT)
    first = wait_for(lambda: len(assistant_texts(browser)) == 1 and len(assistant_texts(browser)[0]) > 20 and
                     assistant_texts(browser)[0], what="streamed text")
    wait_for(lambda: len(assistant_texts(browser)[0]) > len(first), what="more streamed text")
    assert browser.find_element(By.ID, "stop").is_displayed()
    browser.find_element(By.ID, "stop").click()
    wait_for(lambda: "[stopped]" in browser.execute_script("return document.getElementById('messages').textContent"),
             what="[stopped]")
    stopped = assistant_texts(browser)[0]
    time.sleep(0.5)
    assert assistant_texts(browser)[0] == stopped  # nothing more arrives
    assert browser.find_element(By.ID, "send").is_displayed()
    health = requests.post(server.url + "/v1/chat/completions", timeout=20,
                           json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    assert health.status_code == 200  # the cancelled generation does not hold the model

    # a reload keeps the conversations (localStorage), the current one open, both titles in the sidebar
    browser.refresh()
    wait_for(lambda: len(assistant_texts(browser)) == 1, what="the conversation after a reload")
    assert assistant_texts(browser)[0] == stopped
    titles = browser.find_element(By.ID, "conversations").text
    assert "Hello there" in titles and PROMPT in titles, titles
    shot = tmp_path / "chat-page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 5000


def test_markdown_is_rendered_and_model_html_is_not_executed(server: LiveServer, browser: Any) -> None:
    """The page's renderer on hostile text: Markdown becomes elements, raw HTML never runs."""
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    wait_for(lambda: browser.find_element(By.ID, "model").text == "tiny-web", what="the page")
    hostile = ("# Title\n\n```python\nprint('hi')\n```\n\n<img src=x onerror=\"window.pwned=1\">"
               "<script>window.pwned=2</script>[link](javascript:window.pwned=3)")
    messages = [{"role": "user", "content": "x"}, {"role": "assistant", "content": hostile},
                {"role": "assistant", "content": "", "reasoning": "let me think <b>hard</b>",
                 "tool_calls": [{"name": "get_weather", "arguments": '{"city": "Paris"}'}]}]
    conversation = [{"id": "c1", "title": "t", "messages": messages}]
    browser.execute_script("localStorage.setItem('llamactypes.conversations', arguments[0]);"
                           "localStorage.setItem('llamactypes.current', 'c1');", json.dumps(conversation))
    browser.refresh()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".msg.assistant h1"), what="rendered Markdown")
    assert browser.find_element(By.CSS_SELECTOR, ".msg.assistant pre code").text == "print('hi')"
    for link in browser.find_elements(By.CSS_SELECTOR, ".msg.assistant a"):
        link.click()
    time.sleep(0.3)
    assert browser.execute_script("return window.pwned === undefined")
    assert not browser.find_elements(By.CSS_SELECTOR, ".msg.assistant script")
    reasoning = browser.find_element(By.CSS_SELECTOR, "details.reasoning")
    assert reasoning.get_attribute("open") is None  # collapsed
    assert browser.execute_script("return document.querySelector('.reasoning-text').textContent") == \
        "let me think <b>hard</b>"  # as text, not markup
    call = browser.find_element(By.CSS_SELECTOR, "details.tool-call").text
    assert "Tool call: get_weather" in call and '{"city": "Paris"}' in call


def test_a_server_with_an_api_key_makes_the_page_ask_for_it(tmp_path: Path, browser: Any, native_lock: None) -> None:
    from selenium.webdriver.common.by import By

    path = write_tiny_model(tmp_path / "tiny-key.gguf")
    server = LiveServer([str(path), "--n-ctx", "256", "--threads", "1", "--api-key", "sekrit"])
    try:
        browser.get(server.url + "/")  # the page itself needs no key
        wait_for(lambda: browser.find_element(By.ID, "key-box").is_displayed(), what="the API-key field after a 401")
        assert "API key" in browser.find_element(By.ID, "error").text
        browser.find_element(By.ID, "api-key").send_keys("sekrit")
        browser.find_element(By.ID, "save-key").click()
        wait_for(lambda: browser.find_element(By.ID, "model").text == "tiny-key", what="the model name with the key")
        assert not browser.find_element(By.ID, "error").is_displayed()
        set_field(browser, "max-tokens", "4")
        send(browser, "Hello")
        wait_for(lambda: browser.find_element(By.ID, "send").is_displayed() and assistant_texts(browser),
                 what="a reply sent with the key")
        assert "[error]" not in browser.execute_script("return document.getElementById('messages').textContent")
    finally:
        server.stop()
