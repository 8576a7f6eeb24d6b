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
    bar.hidden = count === 0;
    bar.querySelector("[data-selected-count]").textContent = count;
    bar.querySelector("[data-selected-text]").textContent = all
      ? "tasks selected: all matching this filter"
      : count === 1 ? "task selected" : "tasks selected";
    f.querySelector("[data-delete-count]").textContent = count;
    f.querySelector("[data-delete-noun]").textContent = count === 1 ? "task" : "tasks";
    f.querySelector("[data-confirm-delete]").textContent = `Delete ${count} task${count === 1 ? "" : "s"}`;
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
})();
