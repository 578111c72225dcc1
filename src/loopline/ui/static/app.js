// loopline dashboard: live charts and confirm dialogs. No dependencies; nothing leaves this server.
"use strict";

// Traffic bars take their width from data-share: the page's CSP allows no inline style.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-share]").forEach(function (bar) { bar.style.width = `${Number(bar.dataset.share)}%`; });
});

function confirmThen(form, text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  dialog.addEventListener("close", function onClose() {
    dialog.removeEventListener("close", onClose);
    if (dialog.returnValue === "ok") { form.dataset.confirmed = "yes"; form.requestSubmit(); }
  });
  dialog.showModal();
}

function describe(form) {
  const endpoint = form.dataset.endpoint, workspace = form.dataset.workspace;
  if (form.dataset.confirm === "rollback") {
    const choice = form.querySelector("select[name=commit]");
    const label = choice.options[choice.selectedIndex].textContent;
    return `Move 100% of the traffic of endpoint ${endpoint} (${workspace}) from ${form.dataset.live || "nothing"} ` +
      `to commit ${label}. The current deployment stays loaded for an instant way back.`;
  }
  if (form.dataset.confirm === "batch-default") {
    const choice = form.querySelector("select[name=deployment]");
    const label = choice.options[choice.selectedIndex].textContent;
    return `Make ${label} the default of batch endpoint ${endpoint} (${workspace}) in place of ` +
      `${form.dataset.current}: jobs invoked from now on without --deployment score with it; jobs already ` +
      `running keep theirs.` + (form.querySelector("input[name=breaking]").checked ?
      " Its answers may differ in form or labels from the current default's: what reads the predictions " +
      "must be ready for them." : "");
  }
  const changes = [];
  let total = 0;
  form.querySelectorAll("input[type=number]").forEach(function (input) {
    const now = Number(input.value), was = Number(input.dataset.was);
    total += now;
    if (now !== was) changes.push(`${input.name.replace("share:", "")} ${was}% → ${now}%`);
  });
  if (!changes.length) return null;
  return `Change the traffic of endpoint ${endpoint} (${workspace}): ${changes.join(", ")}` +
    (total !== 100 ? ` (these add up to ${total}%, which loopline will refuse)` : "") + ".";
}

document.addEventListener("submit", function (event) {
  const form = event.target;
  if (!form.dataset.confirm || form.dataset.confirmed === "yes") return;
  event.preventDefault();
  const text = describe(form);
  if (text === null) return;
  confirmThen(form, text);
});

function draw(svg, points, keys) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  if (!points.length) return;
  const now = Date.now() / 1000, since = now - 3600;
  let top = 0;
  keys.forEach(function (key) {
    points.forEach(function (p) { if (p[key] !== null && isFinite(p[key])) top = Math.max(top, p[key]); });
  });
  top = top || 1;
  keys.forEach(function (key, index) {
    const known = points.filter(function (p) { return p[key] !== null && isFinite(p[key]); });
    const xy = known.map(function (p) { return [300 * (p.at - since) / 3600, 78 - 74 * p[key] / top]; });
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", xy.map(function (c) { return c[0].toFixed(1) + "," + c[1].toFixed(1); }).join(" "));
    if (index) line.setAttribute("class", "second");
    svg.appendChild(line);
    xy.forEach(function (c) {  // a dot per bucket, so that a single busy half-minute shows too
      const dot = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      dot.setAttribute("x", (c[0] - 1.5).toFixed(1));
      dot.setAttribute("y", (c[1] - 1.5).toFixed(1));
      dot.setAttribute("width", "3");
      dot.setAttribute("height", "3");
      dot.setAttribute("class", index ? "dot second" : "dot");
      svg.appendChild(dot);
    });
  });
}

function refresh(box) {
  fetch(box.dataset.metrics, {credentials: "same-origin"})
    .then(function (answer) { return answer.ok ? answer.json() : null; })
    .then(function (data) {
      if (!data) return;
      box.querySelectorAll("svg[data-series]").forEach(function (svg) {
        draw(svg, data.points, svg.dataset.series.split(","));
      });
      const last = data.points[data.points.length - 1];
      box.querySelectorAll("[data-last]").forEach(function (span) {
        const value = last ? last[span.dataset.last] : null;
        if (!last) span.textContent = "no requests in the last hour";  // not an empty box that says nothing
        else span.textContent = value === null || value === undefined ? "" : String(Math.round(value * 1000) / 1000);
      });
      box.dataset.updated = String(Date.now());
    })
    .catch(function () { /* the next refresh tries again */ });
}

document.querySelectorAll("[data-metrics]").forEach(function (box) {
  refresh(box);
  setInterval(function () { refresh(box); }, 5000);
});
