// Swagger UI over the served OpenAPI document. Everything it loads comes from this origin:
// the bundle is vendored and embedded, and the online spec validator is switched off.
/* global SwaggerUIBundle */
(function () {
  const ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    validatorUrl: null,
    deepLinking: true,
    tryItOutEnabled: false,
    // Never persist the key (Swagger UI would use localStorage).
    persistAuthorization: false,
    onComplete: function () {
      // Signed in to the console in this tab: let "Try it out" use the same key.
      const key = sessionStorage.getItem('leadpush.apiKey');
      if (key) ui.preauthorizeApiKey('api_key', key);
    },
  });
  window.ui = ui;
})();
