/* Push to talk: MediaRecorder -> POST /voice (same session and token as the typed messages); the
 * transcript is shown as the customer's message, the bot's replies as its turn. Hold the button
 * (or Space/Enter on it) and release to send; a short press (or a screen reader's click) toggles. */
"use strict";

(function () {
  const { el, appUrl } = window.smartmktChat.page;
  const { freshAuth } = window.smartmktChat.identity;
  const { renderBotTurn, renderCustomer, notice, typing } = window.smartmktChat.render;
  const { speak } = window.smartmktChat.sound;
  const HOLD_MS = 400; // held longer than this: release sends; a short press toggles instead
  let recorder = null;
  let chunks = [];
  let pressedAt = 0;
  const canRecord = Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder);
  if (!canRecord) {
    el.mic.disabled = true;
    el.micLabel.textContent = "Voice not available";
  }

  function micState(recording) {
    el.mic.setAttribute("aria-pressed", recording ? "true" : "false");
    el.mic.classList.toggle("recording", recording);
    el.micLabel.textContent = recording ? "Recording… release or press to send" : "Hold to talk";
  }

  let starting = false;
  let stopWhenStarted = false; // released before the microphone was granted
  async function startRecording() {
    if (recorder || starting) return;
    starting = true;
    stopWhenStarted = false;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (_err) {
      notice("The microphone is not available (permission denied or no device). You can type instead.");
      return;
    } finally {
      starting = false;
    }
    chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (e) => {
      if (e.data && e.data.size) chunks.push(e.data);
    });
    recorder.addEventListener("stop", () => {
      stream.getTracks().forEach((t) => t.stop());
      const type = recorder.mimeType || "audio/webm";
      recorder = null;
      micState(false);
      sendVoice(new Blob(chunks, { type: type }));
    });
    recorder.start();
    micState(true);
    if (stopWhenStarted) stopRecording();
  }

  function stopRecording() {
    if (starting) stopWhenStarted = true;
    else if (recorder && recorder.state === "recording") recorder.stop();
  }

  async function sendVoice(blob) {
    if (!blob.size) {
      notice("Nothing was recorded. Hold the button while you speak.");
      return;
    }
    const form = new FormData();
    const ext = blob.type.includes("ogg") ? "ogg" : blob.type.includes("mp4") ? "m4a" : "webm";
    form.append("audio", blob, "speech." + ext);
    typing(true, "Listening to your message…");
    let body = null;
    let status = 0;
    try {
      const current = await freshAuth();
      form.append("sender", current.session);
      if (current.token) form.append("customer_token", current.token); // none: a guest
      const response = await fetch(appUrl + "/voice", { method: "POST", body: form, credentials: "same-origin" });
      status = response.status;
      body = await response.json();
    } catch (_err) {
      body = null;
    }
    typing(false);
    if (!body || status !== 200) {
      const reason = body && body.error ? " (" + body.error + ")" : "";
      notice("Sorry, the voice message didn't go through" + reason + ". You can type instead.");
      return;
    }
    if (body.transcript) renderCustomer(String(body.transcript));
    const messages = (Array.isArray(body.responses) ? body.responses : [])
      .map((r) => {
        const m = {};
        if (r && typeof r.text === "string") m.text = r.text;
        if (r && Array.isArray(r.buttons)) m.buttons = r.buttons;
        if (r && r.custom && typeof r.custom === "object") m.custom = r.custom;
        return m;
      })
      .filter((m) => Object.keys(m).length);
    if (messages.length) speak(renderBotTurn(messages, true));
  }

  function press() {
    if (el.mic.disabled) return;
    if (recorder || starting) {
      stopRecording(); // second press in toggle mode
      pressedAt = 0;
      return;
    }
    pressedAt = Date.now();
    startRecording();
  }
  function release() {
    if (pressedAt && Date.now() - pressedAt > HOLD_MS) stopRecording(); // push-to-talk: held, let go
    pressedAt = 0;
  }
  let gesture = false; // a pointer or key press already handled the click that follows it
  el.mic.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    el.mic.setPointerCapture(e.pointerId); // the release counts even off the button
    gesture = true;
    press();
  });
  el.mic.addEventListener("pointerup", release);
  el.mic.addEventListener("pointercancel", release);
  el.mic.addEventListener("keydown", (e) => {
    if (e.key !== " " && e.key !== "Enter") return;
    e.preventDefault(); // no click: the key itself talks
    if (!e.repeat) press();
  });
  el.mic.addEventListener("keyup", (e) => {
    if (e.key !== " " && e.key !== "Enter") return;
    e.preventDefault();
    release();
  });
  el.mic.addEventListener("click", (e) => {
    e.preventDefault();
    if (!gesture) press(); // a screen reader's "activate" is a bare click: it toggles
    gesture = false;
  });
})();
