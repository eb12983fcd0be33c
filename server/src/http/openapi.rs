//! `GET /api/openapi.json`: the OpenAPI 3 document of the whole API, generated from
//! the handlers' annotations so that it cannot drift from the routes.

use axum::Router;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{accounts, files, health, messages, rooms, ws};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Roomler API", description = "Accounts, rooms, messages, files and live events."),
    paths(
        accounts::register, accounts::login, accounts::logout, accounts::me,
        accounts::update_profile, accounts::change_password, accounts::upload_avatar,
        accounts::find_user, accounts::user, accounts::avatar,
        rooms::create_room, rooms::my_rooms, rooms::directory, rooms::join, rooms::room,
        rooms::children, rooms::update_room, rooms::delete_room, rooms::members,
        rooms::add_member, rooms::leave, rooms::kick, rooms::bans, rooms::ban, rooms::unban,
        rooms::set_role,
        rooms::transfer_ownership, rooms::create_invite, rooms::accept_invite,
        rooms::create_direct,
        messages::history, messages::post_message, messages::message, messages::edit,
        messages::delete_message, messages::thread, messages::add_reaction,
        messages::remove_reaction, messages::pin, messages::unpin, messages::pins,
        messages::search,
        files::upload, files::room_files, files::download, files::thumbnail,
        ws::upgrade, health::health, health::ready,
    ),
    components(schemas(roomler_shared::api::ErrorBody, roomler_shared::ws::Event)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/openapi.json",
        get(|| async { axum::Json(ApiDoc::openapi()) }),
    )
}
