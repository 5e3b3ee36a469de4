// metalcast dashboard: the CSRF header on htmx requests, row selection, and the live
// table (each node event redraws that node's row from the server).
(function () {
  "use strict";

  function csrf() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrf();
  });

  // a refused request (400, 409) answers with the reason to show in place: htmx swaps
  // only 2xx answers unless told
  document.addEventListener("htmx:beforeSwap", function (event) {
    const status = event.detail.xhr.status;
    if (status === 400 || status === 409) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // a changed filter starts again at the first page (capture: before htmx reads the form)
  function firstPage(event) {
    const field = event.target;
    if (field.form && field.form.id === "filters" && field.name !== "marker") {
      const marker = field.form.querySelector('input[name="marker"]');
      if (marker) { marker.value = ""; }
    }
  }
  document.addEventListener("change", firstPage, true);
  document.addEventListener("input", firstPage, true);

  // selection survives a row's redraw
  const picked = new Set();
  document.addEventListener("change", function (event) {
    const box = event.target;
    if (box.id === "pick-all") {
      document.querySelectorAll("#node-rows input.pick").forEach(function (each) {
        each.checked = box.checked;
        remember(each);
      });
    } else if (box.classList && box.classList.contains("pick")) {
      remember(box);
    }
  });
  function remember(box) {
    if (box.checked) { picked.add(box.value); } else { picked.delete(box.value); }
  }
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll("#node-rows input.pick").forEach(function (box) {
      box.checked = picked.has(box.value);
    });
  });

  // a row is fetched again while its last fetch runs only once more afterwards, so a
  // burst of events costs two requests and the last answer is the newest state
  const fetching = new Map();
  function redrawRow(uuid) {
    const running = fetching.get(uuid);
    if (running) { running.again = true; return; }
    if (!document.getElementById("node-" + uuid)) { return; }
    const mark = { again: false };
    fetching.set(uuid, mark);
    fetch("/dashboard/nodes/" + encodeURIComponent(uuid) + "/row",
          { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401) { window.location.assign("/dashboard/login"); }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        const row = document.getElementById("node-" + uuid);
        if (html === null || !row) { return; }
        const holder = document.createElement("tbody");
        holder.innerHTML = html;  // the server's HTML, every value escaped there
        const fresh = holder.querySelector("tr");
        if (!fresh) { row.remove(); return; }  // gone, or no longer visible to us
        const box = fresh.querySelector("input.pick");
        if (box) { box.checked = picked.has(uuid); }
        row.replaceWith(fresh);
      })
      .catch(function () { /* the next event or reload tries again */ })
      .finally(function () {
        fetching.delete(uuid);
        if (mark.again) { redrawRow(uuid); }
      });
  }
  let tableSoon = null;
  function redrawTable() {
    if (tableSoon) { return; }
    tableSoon = setTimeout(function () {
      tableSoon = null;
      const form = document.getElementById("filters");
      if (form) { htmx.trigger(form, "refresh"); }
    }, 200);
  }

  function live() {
    const badge = document.getElementById("live");
    if (!badge || !window.EventSource) { return; }
    const source = new EventSource("/dashboard/events");
    source.onopen = function () {
      badge.textContent = "live";
      badge.classList.add("on");
      document.body.dataset.live = "on";
    };
    source.onerror = function () {
      // the browser reconnects by itself unless the server refused the stream
      // (a session that ended): then only a reload helps
      const closed = source.readyState === EventSource.CLOSED;
      badge.textContent = closed ? "not live: reload the page" : "reconnecting";
      badge.classList.remove("on");
      document.body.dataset.live = "off";
    };
    source.onmessage = function (message) {
      let event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      if (event.type === "created") {
        redrawTable();
      } else if (typeof event.node_uuid === "string") {
        redrawRow(event.node_uuid);
      }
    };
  }
  document.addEventListener("DOMContentLoaded", live);

  // a node's page: its state and the agent's progress redrawn on each of its events
  function nodeLive() {
    const panel = document.getElementById("node-live");
    const badge = document.getElementById("node-live-badge");
    if (!panel || !badge || !window.EventSource) { return; }
    let again = false;
    let running = false;
    function redraw() {
      if (running) { again = true; return; }
      running = true;
      fetch(panel.dataset.panel, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
        .then(function (response) {
          if (response.status === 401) { window.location.assign("/dashboard/login"); }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html !== null) { panel.innerHTML = html; }  // the server's escaped HTML
        })
        .catch(function () { /* the next event tries again */ })
        .finally(function () {
          running = false;
          if (again) { again = false; redraw(); }
        });
    }
    const source = new EventSource("/dashboard/events?node=" + encodeURIComponent(panel.dataset.node));
    source.onopen = function () {
      badge.textContent = "live";
      badge.classList.add("on");
      document.body.dataset.live = "on";
      redraw();  // what changed while the stream was not open
    };
    source.onerror = function () {
      badge.textContent = source.readyState === EventSource.CLOSED ? "not live: reload the page" : "reconnecting";
      badge.classList.remove("on");
      document.body.dataset.live = "off";
    };
    source.onmessage = redraw;
  }
  document.addEventListener("DOMContentLoaded", nodeLive);
})();
