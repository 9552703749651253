// The loyalty pages: add and remove rows of the level and top-up tables before saving.
// A new row is the page's <template> with "__i__" replaced by the next free row number.
document.addEventListener("click", (e) => {
  const add = e.target.closest("[data-add-row]");
  if (add) {
    const tpl = document.getElementById(add.dataset.addRow);
    const body = document.getElementById(add.dataset.into);
    if (!tpl || !body) return;
    const n = Number(body.dataset.next || body.children.length);
    body.dataset.next = String(n + 1);
    body.insertAdjacentHTML("beforeend", tpl.innerHTML.replaceAll("__i__", String(n)));
    const first = body.lastElementChild && body.lastElementChild.querySelector("input:not([type=hidden])");
    if (first) first.focus();
    return;
  }
  const rm = e.target.closest("[data-remove-row]");
  if (rm) rm.closest("tr")?.remove();
});
