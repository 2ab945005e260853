// The API reference: Swagger UI (vendored, no network) reading the server's OpenAPI document.
document.addEventListener("DOMContentLoaded", () => {
  const node = document.getElementById("api-docs");
  if (!node || typeof SwaggerUIBundle !== "function") return;
  SwaggerUIBundle({
    url: node.dataset.openapiUrl,
    domNode: node,
    deepLinking: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
