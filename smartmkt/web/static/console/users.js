/* Console users (admins only: the API answers 403 to marketers). */
"use strict";

(function () {
  const C = window.smartmktConsole;
  const { h } = C;
  const status = document.getElementById("status");
  const box = document.getElementById("users");
  const form = document.getElementById("new-user");
  const formStatus = document.getElementById("new-user-status");

  async function list() {
    try {
      const data = await C.api("GET", "/users");
      const items = Array.isArray(data) ? data : (data && data.items) || [];
      box.replaceChildren(
        h(
          "table",
          {},
          h("caption", {}, items.length + " user" + (items.length === 1 ? "" : "s")),
          h("thead", {}, h("tr", {}, ["E-mail", "Role", "Created"].map((x) => h("th", { scope: "col" }, x)))),
          h("tbody", {}, items.map((u) => h("tr", {}, h("td", {}, u.email), h("td", {}, u.role), h("td", {}, C.fmtTime(u.created_at)))))
        )
      );
      form.hidden = false;
      C.say(status, "");
    } catch (err) {
      if (err.status === 403) C.say(status, "Only admins can manage users.", "error");
      else C.say(status, "Could not load the users: " + err.message, "error");
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { email: form.email.value.trim(), role: form.elements["role"].value, password: form.password.value };
    C.say(formStatus, "Adding…");
    try {
      await C.api("POST", "/users", body);
      C.say(formStatus, "Added " + body.email + ".", "ok");
      form.reset();
      list();
    } catch (err) {
      C.say(formStatus, "Not added: " + err.message, "error");
    }
  });

  C.start(list);
})();
