/* Calm Line simulator: sends what the caller does to the simulator's API and
   shows (and reads aloud) what the line answers. The server plays the call
   through the real webhooks; this page only shows it. No build step. */
(function () {
  "use strict";

  var root = document.getElementById("simulator");
  if (!root) { return; }
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var api = root.dataset.api;
  var loginUrl = root.dataset.login;

  var el = function (id) { return document.getElementById(id); };
  var startForm = el("start-form"), startButton = el("start");
  var status = el("status"), transcript = el("transcript"), empty = el("empty");
  var keyed = el("keyed"), keyedWrap = el("keyed-wrap");
  var sayForm = el("say-form"), sayText = el("say-text"), sayButton = el("say");
  var mic = el("mic"), silenceButton = el("silence"), hangUpButton = el("hang-up");
  var readAloud = el("read-aloud"), stopReading = el("stop-reading"), voiceName = el("voice-name");
  var ended = el("ended"), endedHow = el("ended-how"), problem = el("problem");
  var textMeta = el("text-meta"), textBody = el("text-body"), textNote = el("text-note");
  var keys = Array.prototype.slice.call(document.querySelectorAll(".key"));

  var callId = null, state = null, shown = 0, busy = false;
  var answeredAt = null;  // when the line's last answer arrived (Date.now())
  var queue = Promise.resolve();

  var WAITING = {
    menu: "The line waits for a key or words.",
    digits: "The line waits for a number: key it in, then press hash."
  };

  /* -- speaking ------------------------------------------------------------ */
  var synth = window.speechSynthesis || null;
  var voice = null;

  function pickVoice() {
    if (!synth) { return; }
    var voices = synth.getVoices() || [];
    var british = voices.filter(function (v) {
      return (v.lang || "").replace("_", "-").toLowerCase() === "en-gb";
    });
    voice = british.filter(function (v) {
      return /female|amy|libby|sonia|serena|kate|hazel|susan/i.test(v.name);
    })[0] || british[0] || null;
    voiceName.textContent = voice
      ? "Reads with the voice " + voice.name + "."
      : "No English (UK) voice in this browser: it reads with its default voice.";
  }

  if (synth) {
    pickVoice();
    if (typeof synth.addEventListener === "function") {
      synth.addEventListener("voiceschanged", pickVoice);
    }
  } else {
    readAloud.checked = false;
    readAloud.disabled = true;
    stopReading.hidden = true;
    voiceName.textContent = "This browser cannot read aloud: the words are shown only.";
  }

  function speak(sentences) {
    if (!synth || !readAloud.checked) { return; }
    sentences.forEach(function (sentence) {
      if (!sentence || sentence.charAt(0) === "[") { return; }  // [dialling ...]
      var words = new SpeechSynthesisUtterance(sentence);
      words.lang = "en-GB";
      if (voice) { words.voice = voice; }
      words.rate = 0.95;
      synth.speak(words);
    });
  }

  function hush() { if (synth) { synth.cancel(); } }

  stopReading.addEventListener("click", hush);
  readAloud.addEventListener("change", function () { if (!readAloud.checked) { hush(); } });

  /* -- talking to the API ---------------------------------------------------- */
  function request(method, url, body) {
    var options = {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf }
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      if (response.status === 401) {
        window.location.assign(loginUrl);
        throw new Error("Please log in again.");
      }
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error(data.error || "The simulator answered " + response.status + ".");
          error.status = response.status;
          throw error;
        }
        return data;
      });
    });
  }

  function showProblem(message) {
    problem.textContent = message;
    problem.hidden = !message;
  }

  function enqueue(job) {
    queue = queue.then(job).catch(function (error) {
      showProblem(error.message || String(error));
      if (error.status === 404) { callId = null; state = null; update(); }
    });
    return queue;
  }

  function callUrl(suffix) { return api + "/" + encodeURIComponent(callId) + (suffix || ""); }

  function act(action, value) {
    if (!callId) { return; }
    hush();  // the caller speaks or presses over the line, as on a real call
    // How far into the line's last answer the caller acted: sooner than its end, the
    // answer is cut there, as a key cuts the line on a phone (the server keeps the clock).
    var after = answeredAt ? (Date.now() - answeredAt) / 1000 : null;
    enqueue(function () {
      busy = true;
      update();
      return request("POST", callUrl("/actions"), { "do": action, value: value || "", after: after })
        .then(function (data) { showProblem(""); render(data, true); })
        .finally(function () { busy = false; update(); });
    });
  }

  /* -- showing the call ----------------------------------------------------- */
  function make(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  // "understood as: removal, 0.82 (match)": how the line read the caller's words.
  function understoodLine(u) {
    var text = u.as === null ? "not understood (closest " + Number(u.score).toFixed(2) + ")"
      : "understood as: " + u.as + ", " + Number(u.score).toFixed(2) + " (" + u.layer + ")";
    if (u.confirm) { text += ", asked to confirm"; }
    return make("p", "turn__understood", text);
  }

  function turnItem(turn) {
    var item = make("li", "turn turn--" + turn.action);
    if (turn.error) { item.classList.add("turn--error"); }
    if (turn.refused) { item.classList.add("turn--refused"); }
    var did = make("p", "turn__did");
    did.appendChild(make("span", "turn__who", turn.action === "dial" ? "Start" : "Caller"));
    var words = turn.did;
    if (turn.action === "dial" && state && state.from) {
      words += " from " + (state.from.kind === "withheld" ? "a withheld number"
        : "a " + state.from.kind + " (" + state.from.number + ")");
    }
    did.appendChild(document.createTextNode(" " + words));
    item.appendChild(did);
    if (turn.understood) { item.appendChild(understoodLine(turn.understood)); }
    if (turn.refused) {
      item.appendChild(make("p", "turn__note", "Not sent: " + turn.refused + "."));
      return item;
    }
    if (turn.steps.length) {
      var steps = make("p", "turn__steps");
      steps.appendChild(make("span", "visually-hidden", "Steps: "));
      turn.steps.forEach(function (step) {
        steps.appendChild(make("code", "step", step));
        steps.appendChild(document.createTextNode(" "));
      });
      item.appendChild(steps);
    }
    if (turn.said.length) {
      var said = make("div", "turn__said");
      said.appendChild(make("span", "visually-hidden", "The line says: "));
      turn.said.forEach(function (sentence, index) {
        var line = make("p", "");
        if (turn.times && turn.times[index] !== undefined) {
          var time = make("span", "turn__time", clock(turn.times[index]));
          time.setAttribute("title", "Seconds into the call (estimated, as ivr check does)");
          line.appendChild(time);
          line.appendChild(document.createTextNode(" "));
        }
        line.appendChild(document.createTextNode(sentence));
        said.appendChild(line);
      });
      item.appendChild(said);
    }
    if (turn.gave_up) {
      item.appendChild(make("p", "turn__note", "The line gave up on that step after too many tries."));
    }
    if (turn.error) {
      item.appendChild(make("p", "turn__note turn__note--error", "Error: " + turn.error));
    }
    return item;
  }

  function linkify(container, text) {
    container.textContent = "";
    text.split("\n").forEach(function (line, index) {
      if (index) { container.appendChild(document.createElement("br")); }
      line.split(/(https?:\/\/[^\s]+)/).forEach(function (part, i) {
        if (i % 2 === 1) {
          var link = make("a", "", part);
          link.href = part;
          link.target = "_blank";
          link.rel = "noopener noreferrer";
          container.appendChild(link);
        } else if (part) {
          container.appendChild(document.createTextNode(part));
        }
      });
    });
  }

  function showEnd(data) {
    var endedNow = ended.hidden;
    ended.hidden = false;
    var how = data.ended.message;
    if (data.ended.node) { how += " Last step: " + data.ended.node + "."; }
    endedHow.textContent = how;
    var text = data.text;
    textBody.hidden = true;
    textMeta.textContent = "";
    if (data.text_error) {
      textNote.textContent = "The text could not be shown: " + data.text_error;
    } else if (!text) {
      textNote.textContent = "No text was arranged on this call.";
    } else if (!text.shown) {
      textNote.textContent = text.note;
    } else {
      textMeta.textContent = "To " + text.to + " \u00b7 " + text.segments + " segment" +
        (text.segments === 1 ? "" : "s") + " \u00b7 " + text.characters + " characters";
      linkify(textBody, text.body);
      textBody.hidden = false;
      textNote.textContent = text.note;
    }
    el("save-path").href = callUrl("/path");
    if (endedNow) { el("ended-title").focus({ preventScroll: false }); }
  }

  function clock(seconds) {
    var whole = Math.round(seconds);
    return Math.floor(whole / 60) + ":" + ("0" + (whole % 60)).slice(-2);
  }

  // Sentences the caller cut by answering early: struck through, and said so.
  function markCut(item, turn) {
    if (turn.cut_at === null || turn.cut_at === undefined || !turn.times) { return; }
    var lines = item.querySelectorAll(".turn__said p");
    turn.times.forEach(function (start, index) {
      var line = lines[index];
      if (!line || start < turn.cut_at || line.classList.contains("turn__cut")) { return; }
      line.classList.add("turn__cut");
      line.appendChild(make("span", "visually-hidden", " (not heard: the caller answered first)"));
    });
  }

  function render(data, speakNew) {
    if (!state || state.id !== data.id) {
      transcript.textContent = "";
      shown = 0;
      ended.hidden = true;
    }
    state = data;
    callId = data.id;
    var turns = data.turns || [];
    var last = null;
    for (; shown < turns.length; shown++) {
      last = turnItem(turns[shown]);
      transcript.appendChild(last);
      if (speakNew && !turns[shown].refused) { speak(turns[shown].said); }
      if (turns[shown].said && turns[shown].said.length) { answeredAt = Date.now(); }
    }
    Array.prototype.forEach.call(transcript.children, function (item, index) {
      if (turns[index]) { markCut(item, turns[index]); }
    });
    if (last && typeof last.scrollIntoView === "function") {
      var still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      last.scrollIntoView({ block: "nearest", behavior: still ? "auto" : "smooth" });
    }
    empty.hidden = turns.length > 0;
    if (data.ended) { showEnd(data); }
    update();
  }

  function update() {
    var live = !!(state && !state.ended);
    var accepts = (live && state.accepts) || [];
    // Not disabled while the line answers: keys typed quickly queue up, in order.
    var canKey = live && accepts.indexOf("keys") >= 0;
    var canSay = live && accepts.indexOf("words") >= 0;
    keys.forEach(function (key) { key.disabled = !canKey; });
    sayText.disabled = !canSay;
    sayButton.disabled = !canSay;
    mic.disabled = !canSay;
    silenceButton.disabled = !live;
    hangUpButton.disabled = !live;
    startButton.textContent = live ? "Start a new call" : "Start a call";
    var buffer = live ? state.buffer : "";
    keyedWrap.hidden = !buffer;
    keyed.textContent = buffer || "";
    if (!state) {
      status.textContent = "Not on a call. Choose a number and start a call.";
    } else if (state.ended) {
      status.textContent = "The call has ended. " + state.ended.message;
    } else if (busy) {
      status.textContent = "The line is answering\u2026";
    } else {
      status.textContent = "On the call, at step " + state.node + ". " +
        (WAITING[state.waiting] || "");
    }
  }

  /* -- what the member of staff does ------------------------------------------ */
  startForm.addEventListener("submit", function (event) {
    event.preventDefault();
    hush();
    var from = (startForm.querySelector('input[name="from"]:checked') || {}).value || "mobile";
    var at = (el("as-if-at") || {}).value || "";
    var lang = (el("language") || {}).value || "";
    answeredAt = null;
    enqueue(function () {
      busy = true;
      startButton.disabled = true;
      update();
      return request("POST", api, { from: from, at: at, lang: lang })
        .then(function (data) { showProblem(""); state = null; render(data, true); })
        .finally(function () { busy = false; startButton.disabled = false; update(); });
    });
  });

  function press(key) {
    var button = keys.filter(function (b) { return b.dataset.key === key; })[0];
    if (!button || button.disabled) { return; }
    button.classList.add("key--pressed");
    window.setTimeout(function () { button.classList.remove("key--pressed"); }, 160);
    act("key", key);
  }

  keys.forEach(function (button) {
    button.addEventListener("click", function () { press(button.dataset.key); });
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target || {};
    var tag = target.tagName;
    var typing = (tag === "INPUT" && !/^(radio|checkbox|button|submit)$/i.test(target.type)) ||
      tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
    if (typing) { return; }  // digits typed into a box are words, not keys
    if ("0123456789*#".indexOf(event.key) >= 0 && event.key.length === 1) {
      event.preventDefault();
      press(event.key);
    }
  });

  sayForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var words = sayText.value.trim();
    if (!words) { sayText.focus(); return; }
    sayText.value = "";
    act("say", words);
  });

  silenceButton.addEventListener("click", function () { act("silence"); });
  hangUpButton.addEventListener("click", function () { act("hang_up"); });

  /* The browser's microphone, where it has speech recognition (Chrome, Edge, Safari). */
  var Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
  if (Recognition) {
    var listening = null;
    mic.hidden = false;
    mic.addEventListener("click", function () {
      if (listening) { listening.stop(); return; }
      hush();
      var recogniser = new Recognition();
      recogniser.lang = "en-GB";
      recogniser.interimResults = false;
      recogniser.maxAlternatives = 1;
      recogniser.onresult = function (event) {
        var words = event.results[0][0].transcript;
        sayText.value = words;
        act("say", words);
        sayText.value = "";
      };
      recogniser.onerror = function (event) {
        showProblem("The microphone did not work (" + event.error + "). Type the words instead.");
      };
      recogniser.onend = function () {
        listening = null;
        mic.setAttribute("aria-pressed", "false");
        mic.textContent = "Speak into the microphone";
      };
      listening = recogniser;
      mic.setAttribute("aria-pressed", "true");
      mic.textContent = "Listening\u2026 press to stop";
      recogniser.start();
    });
  }

  /* A reload keeps the call this session was on. */
  if (root.dataset.current) {
    callId = root.dataset.current;
    enqueue(function () {
      return request("GET", callUrl()).then(function (data) { render(data, false); })
        .catch(function () { callId = null; state = null; update(); });
    });
  }
  update();
}());
