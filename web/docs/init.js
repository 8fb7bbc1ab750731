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
});
