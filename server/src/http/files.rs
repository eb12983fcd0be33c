//! Uploads and downloads of attachments.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::HashMap;

use roomler_shared::api::{FileInfo, RoomFileInfo};
use roomler_shared::limits;
use roomler_shared::model::UserRef;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use uuid::Uuid;

use super::rooms::require_member;
use super::{Json, Multipart, Path};
use crate::AppState;
use crate::auth::AuthUser;
use crate::blobs::{INLINE_IMAGE_TYPES, SaveError, SavedBlob};
use crate::error::{ApiError, ApiResult};
use crate::store::FileRecord;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rooms/{id}/files", post(upload).get(room_files))
        .route("/files/{id}", get(download))
        .route("/files/{id}/thumbnail", get(thumbnail))
}

/// An upload saved to disk, not yet recorded in the store.
pub struct Upload {
    pub blob: SavedBlob,
    pub name: String,
    pub mime: String,
}

/// Streams the `file` part of a multipart body to the blob folder.
pub async fn read_upload(
    state: &AppState,
    Multipart(mut multipart): Multipart,
) -> ApiResult<Upload> {
    let limit = state.settings.max_upload_bytes;
    loop {
        let field = multipart.next_field().await.map_err(multipart_error)?;
        let Some(field) = field else {
            return Err(ApiError::bad_request(
                "missing_file",
                "The multipart body has no part named `file`; send the file in a `file` part.",
            ));
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = limits::file_name(field.file_name().unwrap_or("file"));
        let declared = field.content_type().map(str::to_string);
        let blob = state
            .blobs
            .save(field, limit)
            .await
            .map_err(|error| match error {
                SaveError::TooLarge { limit } => too_large(limit),
                SaveError::Upload(reason) if reason.contains("limit") => too_large(limit),
                SaveError::Upload(reason) => ApiError::bad_request(
                    "upload_failed",
                    format!("The upload was interrupted ({reason}); send the file again."),
                ),
                SaveError::Io(error) => ApiError::internal(error),
            })?;
        let mime = declared
            .filter(|mime| mime != "application/octet-stream" && !mime.is_empty())
            .unwrap_or_else(|| {
                mime_guess::from_path(&name)
                    .first_or_octet_stream()
                    .to_string()
            });
        return Ok(Upload { blob, name, mime });
    }
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge {
            code: "file_too_large",
            message: "The upload is larger than the server accepts.".to_string(),
        };
    }
    ApiError::bad_request(
        "invalid_multipart",
        format!("The multipart body is invalid: {error}"),
    )
}

fn too_large(limit: u64) -> ApiError {
    ApiError::TooLarge {
        code: "file_too_large",
        message: format!(
            "The file is larger than the limit of {limit} bytes; compress or split it."
        ),
    }
}

#[utoipa::path(post, path = "/api/rooms/{id}/files", tag = "files",
    request_body(content_type = "multipart/form-data", description = "a `file` part"),
    responses((status = 201, body = FileInfo), (status = 404), (status = 413)),
    security(("bearer" = [])))]
pub(crate) async fn upload(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(room_id): Path<Uuid>,
    multipart: Multipart,
) -> ApiResult<Response> {
    require_member(&state, auth.id(), room_id).await?;
    let upload = read_upload(&state, multipart).await?;

    let thumbnail = if upload.mime.starts_with("image/") {
        state.blobs.thumbnail(&upload.blob.sha256, None).await
    } else {
        None
    };
    let record = FileRecord {
        id: Uuid::now_v7(),
        sha256: upload.blob.sha256,
        size: upload.blob.size,
        mime: upload.mime,
        name: upload.name,
        uploader_id: auth.id(),
        room_id: Some(room_id),
        thumbnail_sha256: thumbnail,
        created_at: time::OffsetDateTime::now_utc(),
    };
    state.store.create_file(record.clone()).await?;
    tracing::info!(file_id = %record.id, %room_id, size = record.size, "stored an upload");

    let info = FileInfo {
        id: record.id,
        name: record.name,
        size: record.size,
        mime: record.mime,
    };
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct RoomFiles {
    files: Vec<RoomFileInfo>,
}

#[utoipa::path(get, path = "/api/rooms/{id}/files", tag = "files",
    responses((status = 200, body = RoomFiles), (status = 404)), security(("bearer" = [])))]
pub(crate) async fn room_files(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(room_id): Path<Uuid>,
) -> ApiResult<Json<RoomFiles>> {
    require_member(&state, auth.id(), room_id).await?;
    let records = state.store.room_files(room_id, 200).await?;

    // Each uploader's account is read once, however many of the files they uploaded.
    let mut uploaders: HashMap<Uuid, Option<UserRef>> = HashMap::new();
    let mut files = Vec::with_capacity(records.len());
    for file in records {
        let uploader = match uploaders.get(&file.uploader_id) {
            Some(uploader) => uploader.clone(),
            None => {
                let user = state.store.user_by_id(file.uploader_id).await?;
                let uploader = user.map(|user| UserRef {
                    id: user.id,
                    username: user.username,
                    display_name: user.display_name,
                });
                uploaders.insert(file.uploader_id, uploader.clone());
                uploader
            }
        };
        files.push(RoomFileInfo {
            id: file.id,
            name: file.name,
            size: file.size,
            mime: file.mime,
            uploader,
            uploaded_at: file.created_at,
        });
    }
    Ok(Json(RoomFiles { files }))
}

#[utoipa::path(get, path = "/api/files/{id}", tag = "files",
    responses((status = 200, description = "the bytes; `Range` is supported"), (status = 206),
        (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn download(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    request: Request,
) -> ApiResult<Response> {
    let file = visible_file(&state, &auth, id).await?;
    serve_blob(&state, &file.sha256, &file.mime, &file.name, request).await
}

#[utoipa::path(get, path = "/api/files/{id}/thumbnail", tag = "files",
    responses((status = 200, content_type = "image/png"), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn thumbnail(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<Uuid>,
    request: Request,
) -> ApiResult<Response> {
    let file = visible_file(&state, &auth, id).await?;
    let Some(sha256) = &file.thumbnail_sha256 else {
        return Err(ApiError::not_found(
            "thumbnail_not_found",
            "This file has no thumbnail.",
        ));
    };
    serve_blob(&state, sha256, "image/png", "thumbnail.png", request).await
}

/// The file, when the caller is a member of its room (or uploaded it, for files
/// outside rooms).
pub(crate) async fn visible_file(
    state: &AppState,
    auth: &AuthUser,
    id: Uuid,
) -> ApiResult<FileRecord> {
    let not_found = || {
        ApiError::not_found(
            "file_not_found",
            "The file does not exist or is in a room you are not a member of.",
        )
    };
    let file = state.store.file(id).await?.ok_or_else(not_found)?;
    let allowed = match file.room_id {
        Some(room_id) => state.store.membership(room_id, auth.id()).await?.is_some(),
        None => file.uploader_id == auth.id(),
    };
    if allowed { Ok(file) } else { Err(not_found()) }
}

/// Serves a blob with `Range` support. Only plain image types are shown inline;
/// everything else downloads, so an uploaded HTML file can never run on this origin.
pub async fn serve_blob(
    state: &AppState,
    sha256: &str,
    mime: &str,
    name: &str,
    request: Request,
) -> ApiResult<Response> {
    let path = state.blobs.path(sha256);
    let response = ServeFile::new(path)
        .oneshot(request)
        .await
        .map_err(|error| {
            ApiError::internal(anyhow::anyhow!("failed to read a stored file: {error}"))
        })?;
    let (mut parts, body) = response.into_parts();
    if parts.status == StatusCode::NOT_FOUND {
        tracing::error!(sha256, "a stored file is missing from the files folder");
        return Err(ApiError::not_found(
            "file_not_found",
            "The file's content is missing on the server.",
        ));
    }

    let inline = INLINE_IMAGE_TYPES.contains(&mime);
    let content_type = if inline {
        mime
    } else {
        "application/octet-stream"
    };
    let disposition = content_disposition(if inline { "inline" } else { "attachment" }, name);
    let headers = &mut parts.headers;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// `Content-Disposition` with an ASCII fallback and the RFC 5987 UTF-8 name.
fn content_disposition(kind: &str, name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .filter(|c| *c != '"' && *c != '\\')
        .collect();
    let encoded: String = name
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect();
    let value = format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn disposition_escapes_names() {
        let value = content_disposition("attachment", "résumé \"v2\".pdf");
        let text = value.to_str().unwrap();
        assert_eq!(
            text,
            "attachment; filename=\"r_sum_ v2.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v2%22.pdf"
        );
    }
}
