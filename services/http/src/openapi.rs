//! `GET /openapi.json`: the OpenAPI document, derived from the handlers and their types, so it
//! cannot describe a route or field the code does not have.

use axum::Json;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "rag HTTP API", description = "Retrieval-augmented answers over the indexed \
        documents: search, grounded answers with checked citations (Server-Sent Events), an \
        OpenAI-compatible chat endpoint, the source viewer and feedback. Keys as for gRPC: \
        `Authorization: Bearer <key>`; a trusted front end names its user's groups in \
        `x-rag-groups`. An answer's client may bound its wait with `x-rag-timeout: <seconds>` \
        (gRPC's `grpc-timeout`): past it the answer ends with DEADLINE_EXCEEDED."),
    paths(
        crate::search::search,
        crate::ask::ask,
        crate::chat::completions,
        crate::chat::models,
        crate::documents::chunk_in_context,
        crate::feedback::post,
    ),
    components(schemas(
        crate::api::RewriteEvent,
        crate::api::SourcesEvent,
        crate::api::TokenEvent,
        crate::chat::ChatChunk,
    )),
    modifiers(&Bearer)
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document, as served.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub async fn serve() -> impl IntoResponse {
    Json(document())
}
