// The login bar above GraphiQL: runs the `login` mutation against this endpoint, then puts
// `Authorization: Bearer <token>` into GraphiQL's headers (the page remounts GraphiQL, which
// fetches the logged-in role's schema). This project's own code; served from this origin only.
(function () {
  "use strict";
  var LOGIN =
    "mutation GraphiQLLogin($u: String!, $p: String!, $totp: String) {\n" +
    "  login(username: $u, password: $p, totp: $totp) { accessToken expiresIn user { username roles { key } } }\n" +
    "}";
  var endpoint = window.location.pathname;
  var form = document.getElementById("followup-login");
  var status = document.getElementById("followup-login-status");
  var username = document.getElementById("followup-username");
  var password = document.getElementById("followup-password");
  var totp = document.getElementById("followup-totp");

  function show(text, isError) {
    status.textContent = text;
    status.className = isError ? "error" : "";
  }

  function setHeaders(headers) {
    var text = JSON.stringify(headers, null, 2);
    if (typeof window.followupSetHeaders === "function") {
      window.followupSetHeaders(text);
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    show("Logging in…", false);
    fetch(endpoint, {
      method: "POST",
      credentials: "same-origin",
      // Marks the session as GraphiQL's in onlineSessions (a label only: it grants nothing).
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-Followup-Client": "graphiql" },
      body: JSON.stringify({
        query: LOGIN,
        operationName: "GraphiQLLogin",
        variables: { u: username.value, p: password.value, totp: totp.value || null },
      }),
    })
      .then(function (response) {
        return response.json();
      })
      .then(function (body) {
        password.value = "";
        totp.value = "";
        if (body.errors && body.errors.length) {
          show("Login failed: " + body.errors[0].message, true);
          return;
        }
        var login = body.data.login;
        var roles = login.user.roles.map(function (role) {
          return role.key;
        });
        setHeaders({ Authorization: "Bearer " + login.accessToken });
        show(
          "Logged in as " + login.user.username + " (" + (roles.join(", ") || "no role") + "); token valid " +
            Math.round(login.expiresIn / 60) + " min",
          false,
        );
      })
      .catch(function () {
        show("Login failed: the server did not answer", true);
      });
  });

  document.getElementById("followup-logout-button").addEventListener("click", function () {
    setHeaders({});
    show("Token forgotten: you see the anonymous schema.", false);
  });
})();
