//! Uploaded files on disk, stored by the SHA-256 of their content, so the same file
//! uploaded twice takes the space once.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The longer side of a thumbnail, in pixels.
const THUMBNAIL_SIZE: u32 = 320;
/// Images larger than this are not decoded for a thumbnail, which bounds the memory
/// one upload can make the server allocate.
const THUMBNAIL_MAX_PIXELS_SIDE: u32 = 12_000;
const THUMBNAIL_MAX_ALLOC: u64 = 512 * 1024 * 1024;

/// Image types that browsers display without running anything; only these are served
/// inline, every other type as a download.
pub const INLINE_IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the upload was interrupted: {0}")]
    Upload(String),
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

#[derive(Debug, Clone)]
pub struct SavedBlob {
    pub sha256: String,
    pub size: u64,
}

pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root.join("tmp"))
            .with_context(|| format!("failed to create the files folder {}", root.display()))?;
        Ok(BlobStore {
            root: root.to_path_buf(),
        })
    }

    pub fn path(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2]).join(&sha256[2..])
    }

    /// Streams an upload to a temporary file while hashing it, then moves it to its
    /// content address. Nothing is kept when the upload fails or exceeds `limit`.
    pub async fn save<S, E>(&self, mut stream: S, limit: u64) -> Result<SavedBlob, SaveError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let temporary = self.root.join("tmp").join(uuid::Uuid::new_v4().to_string());
        let result = self.write_temporary(&temporary, &mut stream, limit).await;
        let saved = match result {
            Ok(saved) => saved,
            Err(error) => {
                let _ = tokio::fs::remove_file(&temporary).await;
                return Err(error);
            }
        };

        let target = self.path(&saved.sha256);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .context("failed to create a files folder")?;
        }
        tokio::fs::rename(&temporary, &target)
            .await
            .context("failed to store an upload")?;
        Ok(saved)
    }

    async fn write_temporary<S, E>(
        &self,
        temporary: &Path,
        stream: &mut S,
        limit: u64,
    ) -> Result<SavedBlob, SaveError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut file = tokio::fs::File::create(temporary)
            .await
            .context("failed to create an upload file")?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| SaveError::Upload(error.to_string()))?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(SaveError::TooLarge { limit });
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .context("failed to write an upload")?;
        }
        file.flush().await.context("failed to write an upload")?;
        file.sync_all().await.context("failed to write an upload")?;
        Ok(SavedBlob {
            sha256: hex::encode(hasher.finalize()),
            size,
        })
    }

    /// Makes a PNG thumbnail of an image blob and stores it as a blob of its own.
    /// Returns `None` for anything that does not decode as an image.
    pub async fn thumbnail(&self, sha256: &str, max_side: Option<u32>) -> Option<String> {
        let source = self.path(sha256);
        let side = max_side.unwrap_or(THUMBNAIL_SIZE);
        let encoded = tokio::task::spawn_blocking(move || render_thumbnail(&source, side))
            .await
            .ok()?;
        let png = match encoded {
            Ok(png) => png,
            Err(error) => {
                tracing::debug!(%error, "no thumbnail for an upload");
                return None;
            }
        };
        let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(png))]);
        match self.save(stream, u64::MAX).await {
            Ok(saved) => Some(saved.sha256),
            Err(error) => {
                tracing::warn!(%error, "failed to store a thumbnail");
                None
            }
        }
    }
}

fn render_thumbnail(source: &Path, side: u32) -> anyhow::Result<Vec<u8>> {
    let mut reader = image::ImageReader::open(source)?.with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(THUMBNAIL_MAX_PIXELS_SIDE);
    limits.max_image_height = Some(THUMBNAIL_MAX_PIXELS_SIDE);
    limits.max_alloc = Some(THUMBNAIL_MAX_ALLOC);
    reader.limits(limits);
    let image = reader.decode()?;
    let thumbnail = image.thumbnail(side, side);
    let mut png = Vec::new();
    thumbnail.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(png)
}
