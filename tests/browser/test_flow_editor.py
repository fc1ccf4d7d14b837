"""The flow editor in a real browser (Debian chromium via Playwright) against a real console
server on loopback: a flow drawn from an empty canvas with real mouse drags from the palette and
real port-to-port connections, a validator problem painted and fixed, publishing refused with its
reasons then accepted, the flow's test cases run, the simulator walked with the path lit, and the
same screens in Chinese with no untranslated key. Screenshots in both languages are kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.harness import browser_page, login, shot, untranslated
from tests.console_harness import PASSWORD, running_console

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.timeout(180)]

CASES = """{"cases": [{"name": "sales", "steps": [
  {"expect_prompt": "Press 1"}, {"send_dtmf": "1"}, {"expect_node": "hangup_1"},
  {"expect_end": "hangup"}]}]}"""


def node(page: Any, spec_id: str) -> Any:
    return page.locator("#canvas g.x6-node", has=page.locator("text", has_text=spec_id)).first


async def centre(locator: Any) -> tuple[float, float]:
    """The element's centre on screen. X6 rebuilds a port's DOM when its paint changes (the
    validator answers 300 ms after an edit), so a port found a moment ago may be gone: look
    again until the element holds still."""
    for _ in range(20):
        box = await locator.bounding_box()
        if box is not None:
            return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        await locator.page.wait_for_timeout(50)
    raise AssertionError(f"{locator} is not on screen")


async def drag_from_palette(page: Any, node_type: str, x: float, y: float) -> None:
    """Press on the palette item, move over the canvas, release: real mouse events."""
    sx, sy = await centre(page.locator(f".palette-item[data-type={node_type}]"))
    await page.mouse.move(sx, sy)
    await page.mouse.down()
    await page.mouse.move(x, y, steps=10)
    await page.mouse.up()


async def connect(page: Any, src: str, port: str, dst: str) -> None:
    """Drag from an output port's circle to another node's input port's circle, as a user
    would: once the editor has settled. The validator answers 300 ms after each edit and X6
    then repaints the ports; a drag made while that repaint lands loses its port (a CI run on a
    busy box drew 2 of 3 edges), and no user drags that fast."""
    await settled(page)
    sx, sy = await centre(node(page, src).locator(f'circle[port="out:{port}"]'))
    tx, ty = await centre(node(page, dst).locator('circle[port="in"]'))
    await page.mouse.move(sx, sy)
    await page.mouse.down()
    await page.mouse.move((sx + tx) / 2, (sy + ty) / 2, steps=6)
    await page.mouse.move(tx, ty, steps=6)
    await page.mouse.up()


async def edge_count(page: Any) -> int:
    await page.wait_for_timeout(100)  # X6 renders on the next animation frame
    return int(await page.locator("#canvas g.x6-edge").count())


async def settled(page: Any) -> None:
    await page.wait_for_timeout(450)  # the editor validates 300 ms after the last change
    await page.wait_for_load_state("networkidle")


async def problems(page: Any) -> int:
    await settled(page)
    return int(await page.get_attribute("#editor-status", "data-problems") or "-1")


async def test_draw_validate_publish_test_and_simulate(tmp_path: Path) -> None:
    async with running_console(tmp_path) as con:
        con.add_user("dana", "designer")
        async with browser_page() as (page, watch):
            await login(page, con.url, "dana", PASSWORD)
            await shot(page, "en-flows")
            await page.fill("input[name=flow_id]", "main")
            await page.fill("input[name=flow_name]", "Main menu")
            await page.click("#new-flow button[type=submit]")
            await page.wait_for_selector("#canvas svg")

            await drag_from_palette(page, "start", 300, 200)
            await drag_from_palette(page, "menu", 560, 220)
            await drag_from_palette(page, "hangup", 780, 160)
            await drag_from_palette(page, "hangup", 780, 400)
            await expect(page.locator("#canvas g.x6-node")).to_have_count(4)

            # the menu has no prompt: painted on the node (badge) before anything is connected
            await problems(page)
            assert "⚠" in (await node(page, "menu_1").text_content())

            await node(page, "menu_1").click()
            await page.fill("#node-form fieldset:has(legend:text('Prompt')) input[name=text]",
                            "Press 1 for sales.")
            await page.click("#node-form fieldset.list:has(legend:text('Options')) button.small")
            await page.fill("#node-form .list-item input[name=port]", "sales")
            await page.fill("#node-form .list-item [name=digits]", "1")
            await page.wait_for_selector('#canvas circle[port="out:sales"]')

            await connect(page, "start_1", "next", "menu_1")
            await connect(page, "menu_1", "sales", "hangup_1")
            await connect(page, "menu_1", "no_input", "hangup_2")
            assert await edge_count(page) == 3
            # one edge per output port: a second drag from 'next' re-wires it (and moves no node)
            before = await node(page, "start_1").get_attribute("transform")
            await connect(page, "start_1", "next", "hangup_2")
            assert await edge_count(page) == 3
            assert await node(page, "start_1").get_attribute("transform") == before
            await connect(page, "start_1", "next", "menu_1")
            assert await edge_count(page) == 3
            # an output cannot land on another output
            sx, sy = await centre(node(page, "menu_1").locator('circle[port="out:no_match"]'))
            tx, ty = await centre(node(page, "start_1").locator('circle[port="out:error"]'))
            await page.mouse.move(sx, sy)
            await page.mouse.down()
            await page.mouse.move(tx, ty, steps=8)
            await page.mouse.up()
            assert await edge_count(page) == 3

            # no_match still dangles: a port problem, painted on that port
            assert await problems(page) >= 1
            port = node(page, "menu_1").locator('circle[port="out:no_match"]')
            # painted by class (X6 may re-render the port's own attributes at any time)
            await expect(port).to_have_css("fill", "rgb(255, 205, 210)")
            await shot(page, "en-editor-problem")

            # publishing is refused with the reasons, each naming its node and port
            watch.expected.add(("/api/flows/main/publish", 422))
            await page.click("#publish")
            refusal = page.locator("#publish-refusal")
            await refusal.locator("li").first.wait_for()
            assert "menu_1 · no_match" in await refusal.inner_text()
            await shot(page, "en-publish-refused")
            watch.expected.clear()

            await connect(page, "menu_1", "no_match", "hangup_2")
            assert await edge_count(page) == 4
            assert await problems(page) == 0
            assert await node(page, "menu_1").locator("text", has_text="⚠").count() == 0
            async with page.expect_response(lambda r: r.url.endswith("/api/flows/main/draft")
                                            and r.request.method == "PUT") as saved:
                await page.click("#save-draft")
            assert (await saved.value).status == 200
            await page.click("#publish")
            await expect(page.locator("#editor-status")).to_contain_text("version 1")

            # undo takes the last edge away, redo brings it back
            await page.click("#undo")
            assert await edge_count(page) == 3
            await page.click("#redo")
            assert await edge_count(page) == 4

            # the flow's own test cases, run from the canvas
            watch.expected.add(("/api/flows/main/tests", 404))  # no cases stored yet
            await page.click("#tab-tests")
            await page.fill("#tests-json", CASES)
            await page.click("#tests-save")
            watch.expected.clear()
            await page.click("#tests-run")
            await page.wait_for_selector("#tests-summary")
            assert "1 passed, 0 failed" in await page.inner_text("#tests-summary")
            await shot(page, "en-tests")

            # the simulator: the prompt shows, a key press walks the path, visited nodes light up
            await page.click("#tab-simulator")
            await page.click("#sim-start")
            await expect(page.locator("#sim-log")).to_contain_text(
                "Press 1 for sales.")
            # hear it: the prompt in the engine's voice loads into the page's audio element
            await page.click("#sim-log .play-prompt")
            await page.wait_for_function(
                "() => { const a = document.querySelector('#sim-audio');"
                " return a.readyState >= 1 && a.duration > 0.5; }", timeout=30000)
            assert "/prompts/" in await page.eval_on_selector("#sim-audio", "a => a.src")
            await page.click(".keypad button[data-digit='1']")
            await page.wait_for_selector("#sim-status[data-state=ended]")
            # X6 paints attribute changes on its next animation frame(s), after the status
            # says ended: wait for the paint as an eye would (a busy CI box read #fff once)
            for visited in ("start_1", "menu_1", "hangup_1"):
                body = node(page, visited).locator("rect").first
                await expect(body).to_have_attribute("fill", "#e3f0ff")
            body = node(page, "hangup_2").locator("rect").first
            assert await body.get_attribute("fill") == "#fff"
            await shot(page, "en-simulator")

            # Chinese: the same editor, every label from the catalog
            await page.select_option("#lang", "zh-CN")
            await page.wait_for_selector("#canvas g.x6-node")
            await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
            assert await untranslated(page) == []
            assert "保存草稿" in await page.inner_text(".toolbar")
            assert "按键菜单" in await node(page, "menu_1").text_content()
            await shot(page, "zh-editor")
            await page.click("#tab-simulator")
            await shot(page, "zh-simulator")
            await page.click("a[data-page=flows]")
            await page.wait_for_selector("#new-flow")
            assert await untranslated(page) == []
            await shot(page, "zh-flows")
            # remembered: a new page load comes up in Chinese
            await page.reload()
            await page.wait_for_selector("header.top")
            assert "退出登录" in await page.inner_text("header.top")
            watch.check()
    stored = con.services.flows.version("default", "main", 1).document
    assert {(e["from"], e["port"], e["to"]) for e in stored["edges"]} == {
        ("start_1", "next", "menu_1"), ("menu_1", "sales", "hangup_1"),
        ("menu_1", "no_input", "hangup_2"), ("menu_1", "no_match", "hangup_2")}
    assert all("position" in n for n in stored["nodes"])
