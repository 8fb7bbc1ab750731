// Starts Swagger UI on the API's own spec. A file, not an inline script: /docs allows this
// origin's scripts only (see internal/adapters/http/docs.go).
//
// "Try it out" calls this same server: the spec's server URL is relative ("/"). Authenticate with
// the Authorize button (bearerAuth: paste the accessToken from POST /v1/auth/login), or log in
// through "Try it out" on POST /v1/auth/login: its fs_access cookie then authenticates the
// following calls (cookieAuth).
window.ui = SwaggerUIBundle({
  url: "/openapi.yaml",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  presets: [SwaggerUIBundle.presets.apis],
  deepLinking: true,
  displayOperationId: true,
  displayRequestDuration: true,
  defaultModelsExpandDepth: 0,
  docExpansion: "list",
  // No call to the public validator service: the CSP would refuse it anyway.
  validatorUrl: null,
  // The spec's one server is relative ("/"); its entry names the origin it stands for, the one
  // this page was served from, whatever host and port that is.
  responseInterceptor: (res) => {
    if (res.url && new URL(res.url, window.location.href).pathname === "/openapi.yaml" && typeof res.text === "string") {
      res.text = res.text.replace("description: The server that serves this document",
        "description: The server that serves this document (" + window.location.origin + ")");
    }
    return res;
  },
});
