// The shop API's reference (/api/docs): Swagger UI, served by the app itself, over the API's
// own OpenAPI document. "Try it out" sends real requests with the key given under "Authorize".
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  window.SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
  });
});
