// The till: the menu's search box and category buttons filter the dishes in the page
// (Enter adds the first one shown); receipts print from their frame; the till's network
// printer is remembered by this browser (the printer belongs to the device).
(function () {
  function filter() {
    const box = document.getElementById("dish-q");
    if (!box) return;
    const q = box.value.trim().toLowerCase();
    const pressed = document.querySelector(".cats button[aria-pressed='true']");
    const cat = pressed ? pressed.dataset.cat : "";
    let shown = 0;
    document.querySelectorAll(".dish").forEach((b) => {
      const ok = (!cat || b.dataset.cat === cat) && (!q || b.dataset.search.includes(q));
      b.hidden = !ok;
      if (ok) shown++;
    });
    const none = document.getElementById("dish-none");
    if (none) none.hidden = shown > 0;
  }
  document.addEventListener("input", (e) => { if (e.target.id === "dish-q") filter(); });
  document.addEventListener("click", (e) => {
    const c = e.target.closest(".cats button");
    if (c) {
      document.querySelectorAll(".cats button").forEach((b) => b.setAttribute("aria-pressed", String(b === c)));
      filter();
    }
    const p = e.target.closest("#print");
    if (p) {
      const frame = document.getElementById(p.dataset.frame);
      if (frame && frame.contentWindow) frame.contentWindow.print();
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.target.id !== "dish-q") return;
    if (e.key === "Enter") {
      e.preventDefault();
      const first = Array.from(document.querySelectorAll(".dish")).find((b) => !b.hidden);
      if (first) first.click();
      e.target.select();
    } else if (e.key === "Escape") {
      e.target.value = "";
      filter();
    }
  });
  // Remembered fields (the printer's address and paper width).
  function remember() {
    document.querySelectorAll("[data-remember]").forEach((el) => {
      const v = localStorage.getItem(el.dataset.remember);
      if (v && !el.value) el.value = v;
      if (v && el.tagName === "SELECT") el.value = v;
      el.addEventListener("change", () => localStorage.setItem(el.dataset.remember, el.value));
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", remember);
  else remember();
})();
