// Patron back office: htmx settings and small helpers shared by the pages.
// htmx swaps error responses too: our 4xx answers are forms with their errors beside the
// fields, or an error fragment, in the user's language.
htmx.config.responseHandling = [
  { code: "204", swap: false },
  { code: "[23]..", swap: true },
  { code: "4..", swap: true, error: false },
  { code: "5..", swap: true, error: true },
];
htmx.config.historyCacheSize = 0;

// An ECharts chart that follows its container's size.
window.patronChart = function (el, option) {
  const chart = echarts.init(el, null, { renderer: "svg" });
  // The page's font (the bundled Noto Sans SC where the system has no Chinese font).
  const font = getComputedStyle(document.body).fontFamily;
  chart.setOption(Object.assign({ animation: false, textStyle: { fontFamily: font } }, option));
  new ResizeObserver(() => chart.resize()).observe(el);
  return chart;
};

// Keyboard: "/" focuses the page's search box (data-hotkey="/"), like most consoles.
document.addEventListener("keydown", (e) => {
  if (e.key !== "/" || e.target.closest("input, textarea, select")) return;
  const box = document.querySelector("[data-hotkey='/']");
  if (box) { e.preventDefault(); box.focus(); box.select && box.select(); }
});
