import re

from playwright.sync_api import expect

from tests.blueprints.test_views import CYCLE


def test_manager_fixes_a_cycle_activates_and_sees_the_graph(login, live_server, tmp_path):
    document = tmp_path / "loop.yaml"
    document.write_text(CYCLE)
    page = login("manager")
    page.goto(f"{live_server.url}/projects/pick-and-place/")
    page.get_by_role("navigation", name="Project").get_by_role("link", name="Blueprints").click()
    # The demo project works with the pick-and-place example.
    expect(page.get_by_role("row", name=re.compile("pick-and-place"))).to_contain_text("active")

    page.get_by_label("Blueprint file (.yaml, .yml or .json)").set_input_files(str(document))
    page.get_by_role("button", name="Upload").click()

    problems = page.locator("#validation")
    expect(problems.get_by_role("heading")).to_have_text("1 problem")
    expect(problems.get_by_role("alert")).to_contain_text(
        "dependency cycle: first → second → first"
    )
    bad_line = page.locator("#line-8")
    expect(bad_line).to_have_class(re.compile("bad"))
    expect(bad_line).to_contain_text("depends_on: [second]")

    editor = page.get_by_label("Document (YAML or JSON)")
    editor.fill(CYCLE.replace("    depends_on: [second]\n", ""))
    expect(problems.get_by_role("heading")).to_have_text("Valid")  # checked as you type
    page.get_by_role("button", name="Save blueprint").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("loop")
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_role("status")).to_contain_text("loop v1 is now the active blueprint")
    graph = page.get_by_role("img", name=re.compile("^Pipeline of loop"))
    expect(graph).to_be_visible()
    expect(graph.locator("[data-stage=second]")).to_have_count(1)
    page.screenshot(path=str(tmp_path / "graph.png"))
