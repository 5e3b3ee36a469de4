// metalcast dashboard: a node's serial console in xterm.js, on the API's websocket
// proxy.  The URL (with its token) comes from console_info, read through the
// dashboard as the logged-in user; while the console is disabled or closes, the page
// looks again every second or two and reconnects once it is enabled.
(function () {
  "use strict";

  function start() {
    const holder = document.getElementById("terminal");
    if (!holder || !window.Terminal) { return; }
    const status = document.getElementById("console-status");
    const term = new window.Terminal({ cursorBlink: true, rows: 30, cols: 110, scrollback: 5000 });
    term.open(holder);
    let socket = null;

    function say(text, on) {
      status.textContent = text;
      status.classList.toggle("on", on);
      document.body.dataset.console = on ? "connected" : "off";
      // "enabling the console…" (or "disabling…") answered a click; once the
      // console shows the outcome it is stale.  A refusal stays.
      const result = document.getElementById("console-result");
      if (result && result.querySelector(".ok") && (on || text === "console disabled")) {
        result.textContent = "";
      }
    }

    function later() { setTimeout(connect, 1500); }

    function connect() {
      if (socket) { return; }
      fetch(holder.dataset.info, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
        .then(function (response) {
          if (response.status === 401) { window.location.assign("/dashboard/login"); return null; }
          return response.json();
        })
        .then(function (doc) {
          if (!doc) { return; }
          const info = doc.console_info || {};
          if (!doc.console_enabled || typeof info.url !== "string") {
            let text = "console disabled";
            if (doc.error) { text = "refused: " + doc.error; }
            else if (doc.console_enabled) { text = "enabled, but this console has no websocket"; }
            say(text, false);
            later();
            return;
          }
          open(info.url);
        })
        .catch(later);
    }

    function open(url) {
      const ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      socket = ws;
      say("connecting", false);
      ws.onopen = function () { say("connected", true); term.focus(); };
      ws.onmessage = function (message) {
        term.write(typeof message.data === "string" ? message.data : new Uint8Array(message.data));
      };
      ws.onclose = function () {
        socket = null;
        say("closed", false);
        later();
      };
    }

    const encoder = new TextEncoder();
    term.onData(function (data) {
      if (socket && socket.readyState === WebSocket.OPEN) { socket.send(encoder.encode(data)); }
    });
    connect();
  }
  document.addEventListener("DOMContentLoaded", start);
})();
