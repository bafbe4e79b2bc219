/* The widget's shell on a shop's page (the start of GET /widget.js): a launcher button and a chat
 * panel in a shadow root, so the shop's CSS cannot reach them and theirs cannot reach the shop.
 * It gives the chat's parts (static/chat/*.js, bundled after it) the elements page.js gives them
 * on smartmkt's own page, and the settings the script tag's data attributes carry:
 *   data-title      the panel's title ("Shop assistant")
 *   data-greeting   the first thing the panel says, before the customer writes
 *   data-color      the accent colour (a CSS colour; "#1d5fbf")
 *   data-position   "right" (default) or "left": the corner the launcher sits in
 *   data-token-url  the shop's endpoint for the shopper's signed customer token (POST, same
 *                   origin as the shop's page, answering {"customer_ref", "token", "expires_at"});
 *                   without it the shopper chats as a guest
 *   data-open       "true": the panel starts open
 * Requests go to the origin the script came from (the smartmkt app), which answers only the
 * origins SMARTMKT_ALLOWED_ORIGINS lists. */
"use strict";

window.smartmktChat.page = (function () {
  const script = document.currentScript;
  const data = (script && script.dataset) || {};
  const appUrl = new URL(script ? script.src : "/", window.location.href).origin;
  const { node } = window.smartmktChat.dom;

  const host = document.createElement("div");
  host.setAttribute("data-smartmkt-widget", "");
  const shadow = host.attachShadow({ mode: "open" });
  const css = window.smartmktChat.css || "";
  if ("adoptedStyleSheets" in shadow && typeof CSSStyleSheet === "function" && CSSStyleSheet.prototype.replaceSync) {
    const sheet = new CSSStyleSheet(); // not an inline <style>: a shop's CSP style-src does not refuse it
    sheet.replaceSync(css);
    shadow.adoptedStyleSheets = [sheet];
  } else {
    shadow.appendChild(node("style", null, css));
  }
  const color = String(data.color || "").trim();
  if (color && window.CSS && CSS.supports("color", color)) host.style.setProperty("--brand", color, "important");
  const side = data.position === "left" ? "left" : "right";

  const title = String(data.title || "Shop assistant");
  const ids = (name) => "smk-" + name;
  const launcher = node("button", "launcher side-" + side);
  launcher.type = "button";
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", ids("panel"));
  launcher.appendChild(node("span", "launcher-label", "Chat with us"));
  const unread = node("span", "unread");
  unread.hidden = true;
  launcher.appendChild(unread);

  const panel = node("section", "panel side-" + side);
  panel.id = ids("panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-modal", "false");
  panel.setAttribute("aria-labelledby", ids("title"));
  panel.hidden = true;
  const header = node("header", "panel-top");
  const heading = node("h2", "panel-title", title);
  heading.id = ids("title");
  const close = node("button", "close", "×");
  close.type = "button";
  close.setAttribute("aria-label", "Close the chat");
  header.append(heading, close);

  const connection = node("p", "connection");
  connection.setAttribute("role", "status");
  const log = node("div", "log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-relevant", "additions");
  log.setAttribute("aria-label", "Conversation with " + title);
  log.tabIndex = 0;
  const typing = node("p", "typing");
  typing.setAttribute("role", "status");
  typing.setAttribute("aria-live", "polite");

  const composer = node("form", "composer");
  composer.setAttribute("autocomplete", "off");
  const inputLabel = node("label", "visually-hidden", "Your message");
  inputLabel.htmlFor = ids("input");
  const input = node("input");
  input.id = ids("input");
  input.type = "text";
  input.name = "message";
  input.maxLength = 2000;
  input.placeholder = "Ask for a movie, a price, your offers…";
  const send = node("button", "send", "Send");
  send.type = "submit";
  const mic = node("button", "mic");
  mic.type = "button";
  mic.setAttribute("aria-pressed", "false");
  mic.setAttribute("aria-describedby", ids("mic-help"));
  const micLabel = node("span", "mic-label", "Hold to talk");
  mic.appendChild(micLabel);
  const soundLabel = node("label", "sound");
  const sound = node("input");
  sound.type = "checkbox";
  soundLabel.append(sound, document.createTextNode(" Read replies aloud"));
  const micHelp = node("p", "help", "Hold the talk button (or Space on it) while you speak; release to send.");
  micHelp.id = ids("mic-help");
  composer.append(inputLabel, input, send, mic, soundLabel, micHelp);
  panel.append(header, connection, log, typing, composer);
  shadow.append(launcher, panel);
  (document.body || document.documentElement).appendChild(host);

  const el = { log, typing, connection, composer, input, send, mic, micLabel, sound, launcher, unread, panel, close };
  return {
    el,
    socketUrl: window.smartmktChat.socketUrl, // Rasa's socket.io: the app writes it into the bundle
    tokenUrl: String(data.tokenUrl || ""),
    appUrl,
    root: host,
    title,
    greeting: String(data.greeting || ""),
    startOpen: data.open === "true",
  };
})();
