// The API reference: Swagger UI (vendored, no network) reading the server's OpenAPI document.
document.addEventListener("DOMContentLoaded", () => {
  const node = document.getElementById("api-docs");
  if (!node || typeof SwaggerUIBundle !== "function") return;
  SwaggerUIBundle({
    url: node.dataset.openapiUrl,
    domNode: node,
    deepLinking: true,
    validatorUrl: null,  // the default badge asks a public validator: nothing leaves this server
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
