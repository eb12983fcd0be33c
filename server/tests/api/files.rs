//! Files: uploads, attachments, downloads with their safety headers, ranges,
//! thumbnails, content addressing, the size limit and visibility to non-members.

use std::path::Path;

use reqwest::header::{CONTENT_DISPOSITION, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::common::{Answer, TestServer, TestUser, answer};

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// Uploads `bytes` as the `file` part, with a declared type when `mime` is given.
async fn upload(
    user: &TestUser,
    room_id: Uuid,
    name: &str,
    bytes: Vec<u8>,
    mime: Option<&str>,
) -> Answer {
    let mut part = Part::bytes(bytes).file_name(name.to_string());
    if let Some(mime) = mime {
        part = part.mime_str(mime).unwrap();
    }
    upload_form(user, room_id, Form::new().part("file", part)).await
}

async fn upload_form(user: &TestUser, room_id: Uuid, form: Form) -> Answer {
    let request = user
        .request(Method::POST, &format!("/api/rooms/{room_id}/files"))
        .multipart(form);
    answer(request.send().await.unwrap()).await
}

/// Uploads `bytes` and returns the new file's id, failing the test unless it is 201.
async fn upload_ok(user: &TestUser, room_id: Uuid, name: &str, bytes: Vec<u8>) -> Uuid {
    upload_ok_with(user, room_id, name, bytes, None).await
}

async fn upload_ok_with(
    user: &TestUser,
    room_id: Uuid,
    name: &str,
    bytes: Vec<u8>,
    mime: Option<&str>,
) -> Uuid {
    let uploaded = upload(user, room_id, name, bytes, mime).await;
    assert_eq!(
        uploaded.status,
        StatusCode::CREATED,
        "upload {name}: {}",
        uploaded.body
    );
    uploaded.body["id"].as_str().unwrap().parse().unwrap()
}

async fn download(user: &TestUser, path: &str) -> reqwest::Response {
    user.request(Method::GET, path).send().await.unwrap()
}

/// Returns a response header as text, or `""` when it is absent.
fn header(response: &reqwest::Response, name: impl reqwest::header::AsHeaderName) -> &str {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap())
        .unwrap_or_default()
}

/// Posts a message that carries `attachments` and returns the response.
async fn post_with_attachments(user: &TestUser, room_id: Uuid, attachments: Value) -> Answer {
    let request = json!({
        "body": "see attached",
        "client_id": Uuid::new_v4().to_string(),
        "attachments": attachments,
    });
    user.post(&format!("/api/rooms/{room_id}/messages"), request)
        .await
}

/// Returns `size` bytes of a repeating pattern that differs for each `seed`.
fn sample_bytes(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Counts the blobs under the server's files folder, leaving out uploads in progress
/// under `tmp/`.
fn blob_count(server: &TestServer) -> usize {
    let root = server.dir.path().join("files");
    count_files(&root, &root.join("tmp"))
}

fn count_files(folder: &Path, skipped: &Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path == skipped {
            continue;
        }
        if path.is_dir() {
            count += count_files(&path, skipped);
        } else {
            count += 1;
        }
    }
    count
}

fn temporary_count(server: &TestServer) -> usize {
    let tmp = server.dir.path().join("files").join("tmp");
    std::fs::read_dir(tmp).unwrap().count()
}

// --- A minimal PNG encoder without compression, which needs only CRC-32 and Adler-32 ---

/// Computes CRC-32 as PNG defines it, with the reflected polynomial 0xEDB88320.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// Wraps `data` in a zlib stream of one stored (uncompressed) deflate block.
/// `data` must fit in 65 535 bytes.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let length = u16::try_from(data.len()).unwrap();
    let mut stream = vec![0x78, 0x01, 0x01];
    stream.extend_from_slice(&length.to_le_bytes());
    stream.extend_from_slice(&(!length).to_le_bytes());
    stream.extend_from_slice(data);
    stream.extend_from_slice(&adler32(data).to_be_bytes());
    stream
}

fn png_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
    let mut checked = kind.to_vec();
    checked.extend_from_slice(data);
    png.extend_from_slice(&checked);
    png.extend_from_slice(&crc32(&checked).to_be_bytes());
}

/// Encodes an 8-bit RGB PNG of `width` × `height` pixels in a colour gradient.
fn png_image(width: u32, height: u32) -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), default compression, filter and no interlace.
    header.extend_from_slice(&[8, 2, 0, 0, 0]);

    let mut scanlines = Vec::new();
    for y in 0..height {
        // Each scanline starts with its filter type, 0 for none.
        scanlines.push(0);
        for x in 0..width {
            scanlines.extend_from_slice(&[(x * 60) as u8, (y * 60) as u8, 200]);
        }
    }

    let mut png = PNG_SIGNATURE.to_vec();
    png_chunk(&mut png, b"IHDR", &header);
    png_chunk(&mut png, b"IDAT", &zlib_stored(&scanlines));
    png_chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn crc32_matches_known_value() {
    // The check value of CRC-32/ISO-HDLC, which PNG uses.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn adler32_matches_known_value() {
    assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
}

// --- Uploads ---

#[tokio::test]
async fn upload_returns_file_info() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let uploaded = upload(&alice, room, "notes.txt", b"meeting notes".to_vec(), None).await;

    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    assert!(
        uploaded.body["id"]
            .as_str()
            .unwrap()
            .parse::<Uuid>()
            .is_ok()
    );
    assert_eq!(uploaded.body["name"], "notes.txt");
    assert_eq!(uploaded.body["size"], 13);
    assert_eq!(uploaded.body["mime"], "text/plain");
}

#[tokio::test]
async fn upload_keeps_declared_type() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let uploaded = upload(
        &alice,
        room,
        "data",
        b"{}".to_vec(),
        Some("application/json"),
    )
    .await;

    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    assert_eq!(uploaded.body["mime"], "application/json");
}

#[tokio::test]
async fn upload_strips_folders_from_name() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let uploaded = upload(&alice, room, "../../etc/passwd", b"x".to_vec(), None).await;

    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    assert_eq!(uploaded.body["name"], "passwd");
}

#[tokio::test]
async fn empty_upload_is_stored() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let uploaded = upload(&alice, room, "empty.bin", Vec::new(), None).await;

    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    assert_eq!(uploaded.body["size"], 0);
}

#[tokio::test]
async fn room_files_lists_attached_files() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let other_room = alice.create_public_room("other").await;
    let attached = upload_ok(&alice, room, "a.bin", sample_bytes(10, 1)).await;
    upload_ok(&alice, room, "unattached.bin", sample_bytes(10, 2)).await;
    let elsewhere = upload_ok(&alice, other_room, "b.bin", sample_bytes(10, 3)).await;
    post_with_attachments(&alice, room, json!([attached])).await;
    post_with_attachments(&alice, other_room, json!([elsewhere])).await;

    let listed = alice.get(&format!("/api/rooms/{room}/files")).await;

    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let files = listed.body["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{}", listed.body);
    assert_eq!(files[0]["id"], attached.to_string());
    assert_eq!(files[0]["name"], "a.bin");
    assert_eq!(files[0]["size"], 10);
}

#[tokio::test]
async fn room_files_name_uploader_and_time() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = alice.create_public_room("general").await;
    let joined = bob.join("general").await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    let before = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let from_alice = upload_ok(&alice, room, "a.bin", sample_bytes(10, 5)).await;
    let from_bob = upload_ok(&bob, room, "b.bin", sample_bytes(10, 6)).await;
    post_with_attachments(&alice, room, json!([from_alice])).await;
    post_with_attachments(&bob, room, json!([from_bob])).await;
    let after = OffsetDateTime::now_utc() + time::Duration::seconds(1);

    let listed = bob.get(&format!("/api/rooms/{room}/files")).await;

    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let files = listed.body["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{}", listed.body);
    let uploader_of = |id: Uuid| {
        let file = files
            .iter()
            .find(|file| file["id"] == id.to_string())
            .unwrap_or_else(|| panic!("{id} is not listed: {}", listed.body));
        file["uploader"]["username"].as_str().unwrap().to_string()
    };
    assert_eq!(uploader_of(from_alice), "alice");
    assert_eq!(uploader_of(from_bob), "bob");
    for file in files {
        let text = file["uploaded_at"].as_str().unwrap();
        let uploaded_at = OffsetDateTime::parse(text, &Rfc3339).unwrap();
        assert!(
            before <= uploaded_at && uploaded_at <= after,
            "{text} is not between {before} and {after}"
        );
    }
}

#[tokio::test]
async fn room_files_skip_deleted_messages() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let file = upload_ok(&alice, room, "a.bin", sample_bytes(10, 4)).await;
    let posted = post_with_attachments(&alice, room, json!([file])).await;

    alice
        .delete(&format!(
            "/api/messages/{}",
            posted.body["id"].as_str().unwrap()
        ))
        .await;

    let listed = alice.get(&format!("/api/rooms/{room}/files")).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["files"], json!([]));
}

// --- Attachments and downloads ---

#[tokio::test]
async fn attachment_links_to_download() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let file = upload_ok(&alice, room, "report.pdf", sample_bytes(100, 3)).await;

    let posted = post_with_attachments(&alice, room, json!([file])).await;

    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.body);
    let attachments = posted.body["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1, "{}", posted.body);
    let attachment = &attachments[0];
    assert_eq!(attachment["id"], file.to_string());
    assert_eq!(attachment["name"], "report.pdf");
    assert_eq!(attachment["size"], 100);
    assert_eq!(attachment["mime"], "application/pdf");
    assert_eq!(attachment["url"], format!("/api/files/{file}"));
    assert_eq!(attachment["thumbnail_url"], Value::Null);
}

#[tokio::test]
async fn attachments_keep_their_order() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let first = upload_ok(&alice, room, "first.bin", sample_bytes(10, 4)).await;
    let second = upload_ok(&alice, room, "second.bin", sample_bytes(10, 5)).await;

    let posted = post_with_attachments(&alice, room, json!([second, first])).await;

    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.body);
    assert_eq!(posted.body["attachments"][0]["id"], second.to_string());
    assert_eq!(posted.body["attachments"][1]["id"], first.to_string());
}

#[tokio::test]
async fn download_returns_same_bytes() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let bytes = sample_bytes(5000, 6);
    let file = upload_ok(&alice, room, "notes.txt", bytes.clone()).await;

    let response = download(&alice, &format!("/api/files/{file}")).await;

    assert_eq!(response.status(), StatusCode::OK);
    let disposition = header(&response, CONTENT_DISPOSITION).to_string();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(
        disposition.contains("filename=\"notes.txt\""),
        "{disposition}"
    );
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert_eq!(header(&response, CONTENT_TYPE), "application/octet-stream");
    let downloaded = response.bytes().await.unwrap();
    assert_eq!(downloaded.len(), bytes.len());
    assert!(downloaded == bytes, "the download differs from the upload");
}

#[tokio::test]
async fn download_name_is_encoded() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let file = upload_ok(&alice, room, "résumé v2.pdf", b"cv".to_vec()).await;

    let response = download(&alice, &format!("/api/files/{file}")).await;

    let disposition = header(&response, CONTENT_DISPOSITION);
    assert!(
        disposition.contains("filename=\"r_sum_ v2.pdf\""),
        "{disposition}"
    );
    assert!(
        disposition.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%20v2.pdf"),
        "{disposition}"
    );
}

#[tokio::test]
async fn html_upload_downloads_as_octet_stream() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let page = b"<html><script>alert(document.cookie)</script></html>".to_vec();

    for (name, declared) in [("page.html", None), ("page.htm", Some("text/html"))] {
        let file = upload_ok_with(&alice, room, name, page.clone(), declared).await;
        let response = download(&alice, &format!("/api/files/{file}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        let content_type = header(&response, CONTENT_TYPE);
        assert_eq!(content_type, "application/octet-stream", "{name}");
        assert!(!content_type.contains("html"), "{name}: {content_type}");
        let disposition = header(&response, CONTENT_DISPOSITION);
        assert!(
            disposition.starts_with("attachment"),
            "{name}: {disposition}"
        );
        assert_eq!(
            header(&response, "x-content-type-options"),
            "nosniff",
            "{name}"
        );
    }
}

#[tokio::test]
async fn svg_upload_downloads_as_attachment() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec();
    let file = upload_ok(&alice, room, "logo.svg", svg).await;

    let response = download(&alice, &format!("/api/files/{file}")).await;

    assert_eq!(header(&response, CONTENT_TYPE), "application/octet-stream");
    let disposition = header(&response, CONTENT_DISPOSITION);
    assert!(disposition.starts_with("attachment"), "{disposition}");
}

#[tokio::test]
async fn download_of_unknown_file_is_not_found() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;

    let response = download(&alice, &format!("/api/files/{}", Uuid::new_v4())).await;

    let answered = answer(response).await;
    assert_eq!(answered.status, StatusCode::NOT_FOUND, "{}", answered.body);
    assert_eq!(answered.code(), "file_not_found");
}

#[tokio::test]
async fn anonymous_download_is_unauthorized() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let file = upload_ok(&alice, room, "notes.txt", b"private".to_vec()).await;

    let response = server
        .anonymous(Method::GET, &format!("/api/files/{file}"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

// --- Ranges ---

#[tokio::test]
async fn range_returns_partial_content() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let bytes = sample_bytes(100, 7);
    let file = upload_ok(&alice, room, "data.bin", bytes.clone()).await;

    let response = alice
        .request(Method::GET, &format!("/api/files/{file}"))
        .header(RANGE, "bytes=0-9")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&response, CONTENT_RANGE), "bytes 0-9/100");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    let partial = response.bytes().await.unwrap();
    assert_eq!(partial.len(), 10);
    assert!(
        partial[..] == bytes[..10],
        "the range differs from the upload"
    );
}

#[tokio::test]
async fn suffix_range_returns_tail() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let bytes = sample_bytes(100, 8);
    let file = upload_ok(&alice, room, "data.bin", bytes.clone()).await;

    let response = alice
        .request(Method::GET, &format!("/api/files/{file}"))
        .header(RANGE, "bytes=90-")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&response, CONTENT_RANGE), "bytes 90-99/100");
    let partial = response.bytes().await.unwrap();
    assert!(
        partial[..] == bytes[90..],
        "the range differs from the upload"
    );
}

#[tokio::test]
async fn unsatisfiable_range_is_rejected() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let file = upload_ok(&alice, room, "data.bin", sample_bytes(100, 9)).await;

    let response = alice
        .request(Method::GET, &format!("/api/files/{file}"))
        .header(RANGE, "bytes=500-600")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
}

// --- Images and thumbnails ---

#[tokio::test]
async fn png_gets_thumbnail() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let file = upload_ok(&alice, room, "dot.png", png_image(2, 2)).await;

    let posted = post_with_attachments(&alice, room, json!([file])).await;

    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.body);
    let attachment = &posted.body["attachments"][0];
    assert_eq!(attachment["mime"], "image/png");
    let thumbnail_url = attachment["thumbnail_url"].as_str();
    assert_eq!(
        thumbnail_url,
        Some(format!("/api/files/{file}/thumbnail").as_str())
    );
    let response = download(&alice, &format!("/api/files/{file}/thumbnail")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, CONTENT_TYPE), "image/png");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    let thumbnail = response.bytes().await.unwrap();
    assert!(
        thumbnail.starts_with(&PNG_SIGNATURE),
        "the thumbnail is no PNG"
    );
}

#[tokio::test]
async fn png_downloads_inline() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let image = png_image(3, 2);
    let file = upload_ok(&alice, room, "dot.png", image.clone()).await;

    let response = download(&alice, &format!("/api/files/{file}")).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, CONTENT_TYPE), "image/png");
    let disposition = header(&response, CONTENT_DISPOSITION);
    assert!(disposition.starts_with("inline"), "{disposition}");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    let downloaded = response.bytes().await.unwrap();
    assert!(downloaded == image, "the download differs from the upload");
}

#[tokio::test]
async fn broken_image_has_no_thumbnail() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let file = upload_ok(&alice, room, "broken.png", sample_bytes(64, 10)).await;

    let posted = post_with_attachments(&alice, room, json!([file])).await;
    let response = download(&alice, &format!("/api/files/{file}/thumbnail")).await;

    assert_eq!(posted.body["attachments"][0]["thumbnail_url"], Value::Null);
    let answered = answer(response).await;
    assert_eq!(answered.status, StatusCode::NOT_FOUND, "{}", answered.body);
    assert_eq!(answered.code(), "thumbnail_not_found");
}

#[tokio::test]
async fn text_file_has_no_thumbnail() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let file = upload_ok(&alice, room, "notes.txt", b"words".to_vec()).await;

    let response = download(&alice, &format!("/api/files/{file}/thumbnail")).await;

    let answered = answer(response).await;
    assert_eq!(answered.status, StatusCode::NOT_FOUND, "{}", answered.body);
    assert_eq!(answered.code(), "thumbnail_not_found");
}

// --- Content addressing ---

#[tokio::test]
async fn same_bytes_store_one_blob() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let bytes = sample_bytes(2000, 11);

    let first = upload_ok(&alice, room, "one.bin", bytes.clone()).await;
    let second = upload_ok(&alice, room, "two.bin", bytes.clone()).await;

    assert_ne!(first, second, "each upload gets its own file id");
    assert_eq!(blob_count(&server), 1);
    assert_eq!(temporary_count(&server), 0);
    for (file, name) in [(first, "one.bin"), (second, "two.bin")] {
        let response = download(&alice, &format!("/api/files/{file}")).await;
        let disposition = header(&response, CONTENT_DISPOSITION).to_string();
        assert!(
            disposition.contains(&format!("filename=\"{name}\"")),
            "{disposition}"
        );
        let downloaded = response.bytes().await.unwrap();
        assert!(downloaded == bytes, "{name} differs from the upload");
    }
}

#[tokio::test]
async fn different_bytes_store_two_blobs() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    upload_ok(&alice, room, "one.bin", sample_bytes(2000, 12)).await;
    upload_ok(&alice, room, "two.bin", sample_bytes(2000, 13)).await;

    assert_eq!(blob_count(&server), 2);
}

#[tokio::test]
async fn same_image_stores_one_thumbnail() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    upload_ok(&alice, room, "one.png", png_image(2, 2)).await;
    upload_ok(&alice, room, "two.png", png_image(2, 2)).await;

    // One blob for the image and one for its thumbnail.
    assert_eq!(blob_count(&server), 2);
}

// --- Size limit ---

#[tokio::test]
async fn oversized_upload_is_rejected() {
    let server = TestServer::start_with(|settings| settings.max_upload_bytes = 1024).await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let uploaded = upload(&alice, room, "big.bin", sample_bytes(2048, 14), None).await;

    assert_eq!(
        uploaded.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        uploaded.body
    );
    assert_eq!(uploaded.code(), "file_too_large");
    assert_eq!(
        temporary_count(&server),
        0,
        "no partial upload is left in tmp/"
    );
    assert_eq!(blob_count(&server), 0, "no blob is stored");
}

#[tokio::test]
async fn upload_far_over_limit_is_rejected() {
    let server = TestServer::start_with(|settings| settings.max_upload_bytes = 1024).await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    // Larger than the request body limit too, which is the upload limit plus 64 KiB.
    let uploaded = upload(&alice, room, "huge.bin", sample_bytes(200_000, 15), None).await;

    assert_eq!(
        uploaded.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        uploaded.body
    );
    assert_eq!(uploaded.code(), "file_too_large");
    assert_eq!(
        temporary_count(&server),
        0,
        "no partial upload is left in tmp/"
    );
    assert_eq!(blob_count(&server), 0, "no blob is stored");
}

#[tokio::test]
async fn upload_at_limit_is_accepted() {
    let server = TestServer::start_with(|settings| settings.max_upload_bytes = 1024).await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let uploaded = upload(&alice, room, "exact.bin", sample_bytes(1024, 16), None).await;

    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    assert_eq!(uploaded.body["size"], 1024);
}

// --- Malformed uploads ---

#[tokio::test]
async fn upload_without_file_part_is_rejected() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let form = Form::new().text("comment", "no file here").part(
        "attachment",
        Part::bytes(b"wrong name".to_vec()).file_name("a.txt"),
    );
    let uploaded = upload_form(&alice, room, form).await;

    assert_eq!(
        uploaded.status,
        StatusCode::BAD_REQUEST,
        "{}",
        uploaded.body
    );
    assert_eq!(uploaded.code(), "missing_file");
    assert_eq!(blob_count(&server), 0);
}

#[tokio::test]
async fn file_part_after_other_parts_is_used() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let form = Form::new().text("comment", "the file follows").part(
        "file",
        Part::bytes(b"payload".to_vec()).file_name("late.txt"),
    );
    let uploaded = upload_form(&alice, room, form).await;

    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    assert_eq!(uploaded.body["name"], "late.txt");
    assert_eq!(uploaded.body["size"], 7);
}

#[tokio::test]
async fn non_multipart_upload_is_rejected() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let uploaded = alice
        .post(
            &format!("/api/rooms/{room}/files"),
            json!({"file": "not multipart"}),
        )
        .await;

    assert_eq!(
        uploaded.status,
        StatusCode::BAD_REQUEST,
        "{}",
        uploaded.body
    );
    assert_eq!(blob_count(&server), 0);
}

#[tokio::test]
async fn non_multipart_error_is_json() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let response = alice
        .request(Method::POST, &format!("/api/rooms/{room}/files"))
        .json(&json!({"file": "not multipart"}))
        .send()
        .await
        .unwrap();

    let content_type = header(&response, CONTENT_TYPE).to_string();
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert!(
        body["error"]["code"].is_string(),
        "the error is not in the API's JSON shape ({content_type}): {text:?}"
    );
}

#[tokio::test]
async fn garbled_multipart_is_rejected() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let request = alice
        .request(Method::POST, &format!("/api/rooms/{room}/files"))
        .header(CONTENT_TYPE, "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nthis is no part header\r\n");
    let uploaded = answer(request.send().await.unwrap()).await;

    assert_eq!(
        uploaded.status,
        StatusCode::BAD_REQUEST,
        "{}",
        uploaded.body
    );
    assert_eq!(uploaded.code(), "invalid_multipart");
    assert_eq!(temporary_count(&server), 0);
}

// --- Visibility and ownership ---

#[tokio::test]
async fn private_file_is_hidden_from_non_member() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = alice
        .create_room(json!({"name": "secret", "kind": "private"}))
        .await;
    let file = upload_ok(&alice, room, "dot.png", png_image(2, 2)).await;

    let downloaded = answer(download(&bob, &format!("/api/files/{file}")).await).await;
    let thumbnail = answer(download(&bob, &format!("/api/files/{file}/thumbnail")).await).await;
    let listed = bob.get(&format!("/api/rooms/{room}/files")).await;

    assert_eq!(
        downloaded.status,
        StatusCode::NOT_FOUND,
        "{}",
        downloaded.body
    );
    assert_eq!(downloaded.code(), "file_not_found");
    assert_eq!(
        thumbnail.status,
        StatusCode::NOT_FOUND,
        "{}",
        thumbnail.body
    );
    assert_eq!(thumbnail.code(), "file_not_found");
    assert_eq!(listed.status, StatusCode::NOT_FOUND, "{}", listed.body);
    assert_eq!(listed.code(), "room_not_found");
}

#[tokio::test]
async fn upload_to_hidden_room_is_not_found() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = alice
        .create_room(json!({"name": "secret", "kind": "private"}))
        .await;

    let uploaded = upload(&bob, room, "intruder.txt", b"x".to_vec(), None).await;

    assert_eq!(uploaded.status, StatusCode::NOT_FOUND, "{}", uploaded.body);
    assert_eq!(uploaded.code(), "room_not_found");
    assert_eq!(blob_count(&server), 0, "nothing of the upload is stored");
}

#[tokio::test]
async fn member_downloads_others_file() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = alice.create_public_room("general").await;
    bob.join("general").await;
    let file = upload_ok(&alice, room, "shared.txt", b"for everyone".to_vec()).await;

    let response = download(&bob, &format!("/api/files/{file}")).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(&response.bytes().await.unwrap()[..], b"for everyone");
}

#[tokio::test]
async fn others_upload_cannot_be_attached() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let room = alice.create_public_room("general").await;
    bob.join("general").await;
    let bobs_file = upload_ok(&bob, room, "bob.txt", b"bob's".to_vec()).await;

    let posted = post_with_attachments(&alice, room, json!([bobs_file])).await;

    assert_eq!(
        posted.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        posted.body
    );
    assert_eq!(posted.code(), "invalid_attachments");
}

#[tokio::test]
async fn upload_from_other_room_cannot_be_attached() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let other_room = alice.create_public_room("other").await;
    let file = upload_ok(&alice, other_room, "elsewhere.txt", b"x".to_vec()).await;

    let posted = post_with_attachments(&alice, room, json!([file])).await;

    assert_eq!(
        posted.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        posted.body
    );
    assert_eq!(posted.code(), "invalid_attachments");
    let page = alice.get(&format!("/api/rooms/{room}/messages")).await;
    assert_eq!(page.body["messages"], json!([]), "no message is posted");
}

#[tokio::test]
async fn unknown_attachment_is_rejected() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;

    let posted = post_with_attachments(&alice, room, json!([Uuid::new_v4()])).await;

    assert_eq!(
        posted.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        posted.body
    );
    assert_eq!(posted.code(), "invalid_attachments");
}

#[tokio::test]
async fn too_many_attachments_are_rejected() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let file = upload_ok(&alice, room, "one.txt", b"x".to_vec()).await;

    let posted = post_with_attachments(&alice, room, json!(vec![file; 11])).await;

    assert_eq!(
        posted.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        posted.body
    );
    assert_eq!(posted.code(), "invalid_attachments");
}

#[tokio::test]
async fn deleted_message_drops_attachments() {
    let server = TestServer::start().await;
    let alice = server.register("alice").await;
    let room = alice.create_public_room("general").await;
    let file = upload_ok(&alice, room, "one.txt", b"x".to_vec()).await;
    let posted = post_with_attachments(&alice, room, json!([file])).await;
    let path = format!("/api/messages/{}", posted.body["id"].as_str().unwrap());

    alice.delete(&path).await;

    let tombstone = alice.get(&path).await;
    assert_eq!(
        tombstone.body["attachments"],
        json!([]),
        "{}",
        tombstone.body
    );
}
