// Task list selection: the action bar appears with the number selected; "select all N
// matching" selects beyond the page; delete asks for confirmation with the count.
(() => {
  const form = () => document.getElementById("batch-form");
  const boxes = () => Array.from(document.querySelectorAll('#batch-form input[name="ids"]'));

  function refresh() {
    const f = form();
    if (!f) return;
    const bar = f.querySelector(".action-bar");
    if (!bar) return;
    const all = f.elements.all_matching.value === "1";
    const count = all ? Number(f.dataset.matching) : boxes().filter((b) => b.checked).length;
    // Beyond the exact count's threshold the number matching is PostgreSQL's estimate.
    const shown = all && "matchingAbout" in f.dataset ? `about ${count}` : `${count}`;
    bar.hidden = count === 0;
    bar.querySelector("[data-selected-count]").textContent = shown;
    bar.querySelector("[data-selected-text]").textContent = all
      ? "tasks selected: all matching this filter"
      : count === 1 ? "task selected" : "tasks selected";
    f.querySelector("[data-delete-count]").textContent = shown;
    f.querySelector("[data-delete-noun]").textContent = count === 1 ? "task" : "tasks";
    f.querySelector("[data-confirm-delete]").textContent = `Delete ${shown} task${count === 1 ? "" : "s"}`;
  }

  document.addEventListener("change", (event) => {
    const f = form();
    if (!f || !f.contains(event.target)) return;
    if (event.target.matches("[data-select-page]")) {
      boxes().forEach((b) => { b.checked = event.target.checked; });
    }
    if (event.target.matches('[name="ids"], [data-select-page]')) {
      f.elements.all_matching.value = "0";
      refresh();
    }
  });

  document.addEventListener("click", (event) => {
    const f = form();
    if (!f || !f.contains(event.target)) return;
    if (event.target.matches("[data-select-matching]")) {
      boxes().forEach((b) => { b.checked = true; });
      f.elements.all_matching.value = "1";
      refresh();
    } else if (event.target.matches("[data-open-delete]")) {
      refresh();
      document.getElementById("delete-dialog").showModal();
    } else if (event.target.matches("[data-close-delete]")) {
      document.getElementById("delete-dialog").close();
    }
  });

  document.addEventListener("htmx:beforeRequest", () => {
    const dialog = document.getElementById("delete-dialog");
    if (dialog && dialog.open) dialog.close();
  });
  document.addEventListener("htmx:afterSwap", refresh);
  document.addEventListener("DOMContentLoaded", refresh);

  // The filter form shows what the URL says. htmx restores a page from its history snapshot
  // (Back, Forward) as markup, which keeps no typed value or chosen option, and the browser
  // may restore a form as it was left: after either, the fields are set from the URL again.
  function showUrlFilters({ typed = true } = {}) {
    const filters = document.getElementById("task-filters");
    if (!filters) return;
    const params = new URLSearchParams(window.location.search);
    let status = filters.querySelector('input[type="hidden"][name="status"]');
    if (params.get("status") && !status) {
      status = Object.assign(document.createElement("input"), { type: "hidden", name: "status" });
      filters.prepend(status);
    }
    if (status && !params.get("status")) status.remove();
    else if (status) status.value = params.get("status");
    if (!typed) return;
    for (const field of filters.elements) {
      if (!field.name || field.type === "hidden") continue;
      const value = params.get(field.name) ?? "";
      if (field.type === "checkbox") field.checked = value !== "" && value === (field.value || "on");
      else if (field.tagName === "SELECT") {
        const option = Array.from(field.options).find((o) => o.value === value);
        field.selectedIndex = option ? option.index : 0;
      } else field.value = value;
    }
  }
  document.addEventListener("htmx:historyRestore", () => showUrlFilters());
  window.addEventListener("pageshow", () => showUrlFilters());
  // A status tab changes the URL but not the form: the next filter change keeps the tab.
  // (Typed fields are left alone here: the URL may lag behind what is being typed.)
  document.addEventListener("htmx:pushedIntoHistory", () => showUrlFilters({ typed: false }));
})();
