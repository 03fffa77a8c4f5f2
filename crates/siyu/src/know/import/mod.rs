//! `siyu import orders`: seller exports and POS files into orders and customers.
//!
//! A file is read as bytes, its encoding detected (UTF-8 with or without BOM, or GB18030/GBK),
//! parsed row by row on a blocking thread, and stored in chunks, each in one transaction, while
//! the next chunk is parsed. Bad rows go to `NAME.rejected.csv` beside the input with their line,
//! column and reason; every good row is kept.

use crate::platform::TenantId;
mod parse;
pub mod presets;
pub mod receipts;
pub mod rows;
pub mod status_map;
pub mod values;

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use serde::Serialize;

use self::parse::{Chunk, ParseEnd, parse_file};
pub use self::parse::{TextEncoding, detect_encoding};
use self::presets::Preset;
use self::rows::RowError;
use self::status_map::StatusMap;
use crate::know::orders::{StoreOutcome, store_orders};
use crate::platform::clock::now_ms;
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbError};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: the file is empty")]
    Empty(String),
    #[error(
        "{file}: no column for {field} found in the header; the {preset} preset looks for {wanted} (use --mapping to name it)"
    )]
    MissingColumn {
        file: String,
        field: String,
        preset: String,
        wanted: String,
    },
    #[error("{0}: cannot read the header row: {1}")]
    Header(String, String),
    #[error(
        "{0}: storing orders failed: {1}. Chunks stored before stay; run the same import again to complete it (re-imports update, never duplicate)"
    )]
    Store(String, DbError),
}

/// What importing one file did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileSummary {
    pub file: String,
    pub encoding: Option<TextEncoding>,
    /// Data rows read (not counting the header).
    pub read: u64,
    pub imported: u64,
    pub updated: u64,
    pub rejected: u64,
    pub customers_created: u64,
    pub customers_merged: u64,
    /// Orders kept with a status nobody has read yet, and each such text with its count.
    pub unknown_status: u64,
    pub unknown_texts: std::collections::BTreeMap<String, u64>,
    /// Orders kept whose buyer is not identified (a masked phone and no buyer id).
    pub unlinked: u64,
    /// Unlinked buyers of earlier imports that this file identified.
    pub buyers_linked: u64,
    pub rejected_file: Option<String>,
    /// The receipt recorded for this file (`import_runs`).
    pub receipt: Option<i64>,
    /// The first rejections, for the terminal; all of them are in the rejected file.
    pub errors: Vec<RowError>,
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub preset: Preset,
    pub channel: Option<String>,
    pub store_id: Option<String>,
    /// Orders per transaction.
    pub chunk_orders: usize,
    /// The tenant's own readings of status texts.
    pub status_map: StatusMap,
    /// The name the summary and receipt give the file (an upload's own name, not the server's
    /// temporary path); the path when `None`.
    pub display_name: Option<String>,
}

impl ImportOptions {
    pub fn new(preset: Preset) -> Self {
        ImportOptions {
            preset,
            channel: None,
            store_id: None,
            // 20,000 measured 9-13% faster than 10,000 at 1,000,000 rows, and 40,000 no faster
            // (docs/BENCHMARKS.md); a transaction then holds the writer about a third of a second.
            chunk_orders: 20_000,
            status_map: StatusMap::default(),
            display_name: None,
        }
    }
}

/// `orders.csv` → `orders.rejected.csv` beside it.
pub fn rejected_path(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "import".into());
    file.with_file_name(format!("{stem}.rejected.csv"))
}

/// Imports one file. `progress`, when given, is set to the file's length in bytes and advanced
/// as chunks are stored.
pub async fn import_file(
    db: &Db,
    cipher: &FieldCipher,
    tenant_id: TenantId,
    path: &Path,
    opts: &ImportOptions,
    progress: Option<&ProgressBar>,
) -> Result<FileSummary, ImportError> {
    Parsing::start(cipher, tenant_id, path, opts)
        .store(db, progress)
        .await
}

/// A file being read and parsed on a blocking thread, its chunks waiting to be stored. Starting
/// the next file's parse before storing the current one keeps the database busy across file
/// boundaries (else it waits for the next file's first chunk each time).
pub struct Parsing {
    name: String,
    path: PathBuf,
    tenant_id: TenantId,
    cipher: FieldCipher,
    rx: tokio::sync::mpsc::Receiver<Chunk>,
    parser: tokio::task::JoinHandle<Result<ParseEnd, ImportError>>,
}

impl Parsing {
    /// Starts reading and parsing `path` for `tenant_id` (whose key hashes the phones); nothing
    /// is stored until [`Parsing::store`].
    pub fn start(
        cipher: &FieldCipher,
        tenant_id: TenantId,
        path: &Path,
        opts: &ImportOptions,
    ) -> Parsing {
        let name = opts
            .display_name
            .clone()
            .unwrap_or_else(|| path.display().to_string());
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(4);
        let (parse_opts, parse_name, file) = (opts.clone(), name.clone(), path.to_path_buf());
        let kept = cipher.clone();
        let cipher = cipher.clone();
        let lookup = cipher.lookup(tenant_id);
        let parser = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&file).map_err(|e| ImportError::Io(parse_name.clone(), e))?;
            if bytes.iter().all(|b| b.is_ascii_whitespace()) {
                return Err(ImportError::Empty(parse_name));
            }
            parse_file(
                &parse_name,
                &bytes,
                &parse_opts,
                &cipher,
                &lookup,
                &rejected_path(&file),
                tx,
            )
        });
        Parsing {
            name,
            path: path.to_path_buf(),
            tenant_id,
            cipher: kept,
            rx,
            parser,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores the file's chunks as they are parsed, each in one transaction.
    pub async fn store(
        self,
        db: &Db,
        progress: Option<&ProgressBar>,
    ) -> Result<FileSummary, ImportError> {
        let Parsing {
            name,
            path,
            tenant_id,
            cipher,
            mut rx,
            parser,
        } = self;
        if let Some(pb) = progress {
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            pb.set_length(len);
            pb.set_position(0);
        }
        let started_at = now_ms();
        let mut outcome = StoreOutcome::default();
        let mut store_err = None;
        while let Some(chunk) = rx.recv().await {
            match store_orders(
                db,
                tenant_id,
                "import",
                &chunk.orders,
                &chunk.keyed,
                now_ms(),
            )
            .await
            {
                Ok(o) => outcome.add(o),
                Err(e) => {
                    store_err = Some(e);
                    break;
                }
            }
            if let Some(pb) = progress {
                pb.set_position(chunk.position);
            }
        }
        drop(rx);
        let end = parser
            .await
            .map_err(|e| ImportError::Io(name.clone(), std::io::Error::other(e.to_string())))??;
        if let Some(e) = store_err {
            return Err(ImportError::Store(name, e));
        }
        if let Some(pb) = progress {
            pb.set_position(pb.length().unwrap_or(0));
        }
        let reject_file = rejected_path(&path);
        let mut summary = FileSummary {
            file: name,
            encoding: Some(end.encoding),
            read: end.read,
            imported: outcome.imported,
            updated: outcome.updated,
            rejected: end.rejected,
            customers_created: outcome.customers_created,
            customers_merged: outcome.customers_merged,
            unknown_status: outcome.unknown_status,
            unknown_texts: end.unknown_texts,
            unlinked: outcome.unlinked,
            buyers_linked: outcome.buyers_linked,
            rejected_file: (end.rejected > 0).then(|| reject_file.display().to_string()),
            receipt: None,
            errors: end.errors,
        };
        let rejected_csv = match end.rejected {
            0 => None,
            _ => std::fs::read_to_string(&reject_file).ok(),
        };
        summary.receipt = Some(
            receipts::record(
                db,
                &cipher,
                tenant_id,
                "file",
                &summary,
                started_at,
                now_ms(),
                rejected_csv,
            )
            .await
            .map_err(|e| ImportError::Store(summary.file.clone(), e))?,
        );
        Ok(summary)
    }
}

/// Files to import, each one's parse started when the one before it is handed out, so that it
/// is ready by the time the one before it is stored.
pub fn parse_ahead<'a, I>(
    cipher: &'a FieldCipher,
    tenant_id: TenantId,
    files: I,
) -> ParseAhead<'a, I::IntoIter>
where
    I: IntoIterator<Item = (PathBuf, ImportOptions)>,
{
    ParseAhead {
        cipher,
        tenant_id,
        files: files.into_iter(),
        next: None,
    }
}

pub struct ParseAhead<'a, I> {
    cipher: &'a FieldCipher,
    tenant_id: TenantId,
    files: I,
    next: Option<Parsing>,
}

impl<I: Iterator<Item = (PathBuf, ImportOptions)>> Iterator for ParseAhead<'_, I> {
    type Item = Parsing;
    fn next(&mut self) -> Option<Parsing> {
        let mut start = || {
            self.files
                .next()
                .map(|(path, opts)| Parsing::start(self.cipher, self.tenant_id, &path, &opts))
        };
        let current = match self.next.take() {
            Some(p) => p,
            None => start()?,
        };
        self.next = start();
        Some(current)
    }
}

/// What reading an export found, without storing anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOnly {
    pub rows: u64,
    pub orders: usize,
    pub rejected: u64,
}

/// Reads an export held in memory as an import would, storing nothing: the rows read, the orders
/// they make and the rows rejected (written to `reject_to`). The fuzz target reads every input
/// through here, so the importer's reader meets the same bytes.
pub fn read_only(
    bytes: &[u8],
    opts: &ImportOptions,
    cipher: &FieldCipher,
    reject_to: &Path,
) -> Result<ReadOnly, ImportError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(4);
    // Tenant 0 is no brand's: nothing read here is stored.
    let lookup = cipher.lookup(TenantId::new(0));
    std::thread::scope(|scope| {
        let parser =
            scope.spawn(|| parse_file("input", bytes, opts, cipher, &lookup, reject_to, tx));
        let mut orders = 0;
        while let Some(chunk) = rx.blocking_recv() {
            orders += chunk.orders.len();
        }
        let end = parser
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        Ok(ReadOnly {
            rows: end.read,
            orders,
            rejected: end.rejected,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_file_sits_beside_the_input() {
        assert_eq!(
            rejected_path(Path::new("/x/orders.csv")),
            PathBuf::from("/x/orders.rejected.csv")
        );
    }
}
