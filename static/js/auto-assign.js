// Auto-assign on the task list: the preview arrives in a dialog (htmx swaps it in), which
// opens when it does; Cancel closes it.
(() => {
  document.addEventListener("htmx:afterSwap", () => {
    const dialog = document.getElementById("auto-assign-dialog");
    if (dialog && !dialog.open && dialog.querySelector("section#auto-assign-panel")) {
      dialog.showModal();
    }
  });
  document.addEventListener("click", (event) => {
    if (event.target.matches("[data-close-auto-assign]")) {
      document.getElementById("auto-assign-dialog")?.close();
    }
  });
})();
