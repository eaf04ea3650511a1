/* The flow diagram page: fit to the width, zoom and pan, and a step's words when chosen.
   No library: the SVG is Graphviz's, each step a <g class="node"> whose <title> is its id. */
(function () {
  "use strict";
  var box = document.getElementById("diagram");
  var data = JSON.parse(document.getElementById("steps-data").textContent || "[]");
  var steps = {};
  data.forEach(function (step) { steps[step.id] = step; });
  var el = function (id) { return document.getElementById(id); };

  function fill(list, items) {
    list.textContent = "";
    items.forEach(function (text) {
      var li = document.createElement("li");
      li.textContent = text;
      list.appendChild(li);
    });
  }

  function show(id, focus) {
    var step = steps[id];
    if (!step) { return; }
    el("step-title").textContent = step.number + ". " + step.name;
    el("step-kind").textContent = "A " + step.kind + " step. " +
      (step.heard.length ? "The caller hears:" : "The line says nothing here.");
    fill(el("step-heard"), step.heard);
    fill(el("step-choices"), step.choices);
    el("step-links").textContent = step.links.length ? "Adds to the text: " + step.links.join("; ") + "." : "";
    if (box) {
      Array.prototype.forEach.call(box.querySelectorAll("g.node"), function (node) {
        node.classList.toggle("is-chosen", node.getAttribute("data-step") === id);
      });
    }
    if (focus) { el("step-title").focus(); }
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-step]"), function (button) {
    if (button.tagName === "BUTTON") {
      button.addEventListener("click", function () { show(button.dataset.step, true); });
    }
  });

  if (!box) { return; }
  var svg = box.querySelector("svg");
  if (!svg) { return; }
  // Graphviz sizes the SVG in points: keep its shape, and size it ourselves.
  var width = svg.viewBox && svg.viewBox.baseVal ? svg.viewBox.baseVal.width : svg.getBBox().width;
  svg.removeAttribute("width");
  svg.removeAttribute("height");
  svg.setAttribute("role", "group");  // not "img": its steps are buttons
  svg.setAttribute("aria-label", "The call flow: every step and where each key leads");
  var scale = 1;

  function fit() { return Math.max(0.1, (box.clientWidth - 4) / width); }
  function zoom(to) {
    scale = Math.min(4, Math.max(0.1, to));
    svg.style.width = Math.round(width * scale) + "px";
  }
  zoom(fit());
  el("zoom-in").addEventListener("click", function () { zoom(scale * 1.25); });
  el("zoom-out").addEventListener("click", function () { zoom(scale / 1.25); });
  el("zoom-fit").addEventListener("click", function () { zoom(fit()); });

  // Each step is a button: click it, or Tab to it and press Enter or Space.
  Array.prototype.forEach.call(svg.querySelectorAll("g.node"), function (node) {
    var title = node.querySelector("title");
    var id = title ? title.textContent : "";
    if (!steps[id]) { return; }
    node.setAttribute("data-step", id);
    node.setAttribute("tabindex", "0");
    node.setAttribute("role", "button");
    node.setAttribute("aria-label", steps[id].number + ". " + steps[id].name);
    if (title) { title.remove(); }  // the aria-label says it; no tooltip with the id
    node.addEventListener("click", function () { if (!moved) { show(id, false); } });
    node.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); show(id, true); }
    });
  });

  // Drag to pan (the box scrolls; the arrow keys scroll it too when it has focus).
  var start = null, moved = false;
  box.addEventListener("pointerdown", function (event) {
    start = { x: event.clientX, y: event.clientY, left: box.scrollLeft, top: box.scrollTop };
    moved = false;
  });
  box.addEventListener("pointermove", function (event) {
    if (!start) { return; }
    var dx = event.clientX - start.x, dy = event.clientY - start.y;
    if (Math.abs(dx) + Math.abs(dy) > 4) { moved = true; box.classList.add("is-panning"); }
    box.scrollLeft = start.left - dx;
    box.scrollTop = start.top - dy;
  });
  function stop() { start = null; box.classList.remove("is-panning"); }
  box.addEventListener("pointerup", stop);
  box.addEventListener("pointerleave", stop);
  window.addEventListener("resize", function () { if (scale > fit()) { zoom(fit()); } });
})();
