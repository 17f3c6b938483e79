//! Turning what a user names into something GDAL can open safely: path checks (no virtual file
//! systems or network sources unless the operator allows them), hashing, unzipping, and the
//! repairs real municipal files need before GDAL will read them (a bare JSON array of features,
//! CSV in an old encoding, Shapefiles without a `.cpg`).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::IngestError;

/// Largest total size unpacked from one zip (guards against zip bombs).
const MAX_UNZIPPED_BYTES: u64 = 4 << 30;

/// The GDAL drivers a source may be opened with unless the operator allows any driver.
///
/// GDAL chooses a driver by a file's content as well as its name, so a file called `x.csv` may
/// be opened by a driver that reads other things than the file: an OGR VRT names other files
/// or URLs to read (a downloaded file could publish `/etc/passwd` or an internal service),
/// database and web-service drivers (PostgreSQL, WFS, OAPIF, …) connect somewhere, GMLAS
/// fetches schemas, GPSBabel runs a program, SQLite can reach files through VirtualOGR. The
/// list holds the file formats municipal open data comes in, whose drivers read the named file
/// (and, for Shapefile, MapInfo and FileGDB, its sibling files) and nothing else:
/// - GeoJSON, GeoJSONSeq: the usual web download; sequences from streaming exports.
/// - ESRI Shapefile, MapInfo File, OpenFileGDB: desktop-GIS exports (MapInfo is still common in
///   Swedish municipalities; FileGDB comes from ArcGIS).
/// - GPKG: GeoPackage, the OGC format and hamn's own embedded store.
/// - CSV: tables with coordinate or WKT columns.
/// - XLSX, ODS: the same tables as spreadsheets (coordinates read from columns as for CSV).
/// - GML: surveyors' and cadastral exports (INSPIRE, Danish matrikel, Swedish property data).
/// - KML, LIBKML: Google Earth exports (LIBKML also reads KMZ).
/// - FlatGeobuf: large downloads, streamed.
/// - GPX: walking trails and routes from GPS devices.
pub const ALLOWED_DRIVERS: &[&str] = &[
    "GeoJSON",
    "GeoJSONSeq",
    "ESRI Shapefile",
    "MapInfo File",
    "OpenFileGDB",
    "GPKG",
    "CSV",
    "XLSX",
    "ODS",
    "GML",
    "KML",
    "LIBKML",
    "FlatGeobuf",
    "GPX",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Read by GDAL's own geometry handling.
    Gdal,
    /// Delimited text whose points hamn builds from coordinate columns.
    Csv,
}

/// A source ready for GDAL.
#[derive(Debug)]
pub struct PreparedSource {
    /// What to pass to GDAL's open (a local path, or a `CSV:` prefixed one).
    pub gdal_path: String,
    pub open_options: Vec<String>,
    pub kind: SourceKind,
    /// File name for the catalog (no directories: they are the operator's business).
    pub name: String,
    /// Filled in by the caller, which hashes while GDAL opens the file.
    pub sha256: String,
    pub warnings: Vec<String>,
    /// The operator's permission to open the source with any GDAL driver, not only
    /// [`ALLOWED_DRIVERS`]; set by the caller from its options.
    pub allow_any_driver: bool,
    /// Keeps unpacked or rewritten files alive until the ingest ends.
    _scratch: Option<tempfile::TempDir>,
}

/// True for anything GDAL would treat as other than a plain local file: `/vsi…` virtual file
/// systems, URLs, and driver prefixes such as `PG:` or `CSV:`.
pub fn is_gdal_special(path: &str) -> bool {
    if path.starts_with("/vsi") || path.contains("://") {
        return true;
    }
    // A `NAME:` prefix of two or more characters is a driver prefix (one letter: a Windows drive).
    match path.split_once(':') {
        Some((prefix, _)) => {
            prefix.len() >= 2
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

pub fn sha256_file(path: &Path) -> Result<String, IngestError> {
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| IngestError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Prepares `input` for reading. `encoding` is the user's `--encoding`; `allow_special` is the
/// operator's permission to pass GDAL paths through as they are.
pub fn prepare(
    input: &str,
    encoding: Option<&str>,
    allow_special: bool,
) -> Result<PreparedSource, IngestError> {
    if is_gdal_special(input) {
        if !allow_special {
            return Err(IngestError::RefusedPath(input.chars().take(200).collect()));
        }
        return Ok(PreparedSource {
            gdal_path: input.to_string(),
            open_options: Vec::new(),
            kind: SourceKind::Gdal,
            name: input.chars().take(200).collect(),
            sha256: String::new(),
            warnings: vec![
                "source is a GDAL path: not hashed, so unchanged re-ingests are not skipped".into(),
            ],
            allow_any_driver: false,
            _scratch: None,
        });
    }
    let path = PathBuf::from(input);
    let meta = std::fs::metadata(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => IngestError::NotFound(input.to_string()),
        _ => IngestError::io(&path, e),
    })?;
    if !meta.is_file() {
        return Err(IngestError::NotAFile(input.to_string()));
    }
    if meta.len() == 0 {
        return Err(IngestError::Empty(input.to_string()));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| input.to_string());
    // The caller hashes the file at the same time as GDAL opens it (see `ingest::ingest`).
    let sha256 = String::new();
    let mut warnings = Vec::new();
    let mut scratch = None;
    let mut file = path.clone();

    if extension(&file) == "zip" {
        let dir = tempfile::tempdir().map_err(|e| IngestError::io("temporary directory", e))?;
        file = unzip(&path, dir.path())?;
        scratch = Some(dir);
    }

    let ext = extension(&file);
    let mut open_options = Vec::new();
    let mut kind = SourceKind::Gdal;
    let mut gdal_path = file.display().to_string();
    match ext.as_str() {
        "json" | "geojson" if starts_with_array(&file)? => {
            let dir = scratch_dir(&mut scratch)?;
            // Named after the source, so the layer (and the default title) keeps its name.
            let wrapped = dir.join(file.file_name().unwrap_or_default());
            wrap_feature_array(&file, &wrapped)?;
            warnings.push(
                "source is a bare JSON array of features, not a FeatureCollection: read as one"
                    .into(),
            );
            gdal_path = wrapped.display().to_string();
        }
        "csv" | "txt" | "tsv" => {
            kind = SourceKind::Csv;
            let utf8 = match encoding {
                Some(enc) => Some(transcode_to_utf8(&file, enc, &mut scratch)?),
                None if !is_utf8_file(&file)? => {
                    warnings.push(
                        "text is not UTF-8 and no --encoding was given: read as Windows-1252 (Latin-1)".into(),
                    );
                    Some(transcode_to_utf8(&file, "windows-1252", &mut scratch)?)
                }
                None => None,
            };
            let csv_file = utf8.unwrap_or(file.clone());
            // GDAL recognises only `.csv` by name; other delimited text needs the prefix.
            gdal_path = if extension(&csv_file) == "csv" {
                csv_file.display().to_string()
            } else {
                format!("CSV:{}", csv_file.display())
            };
            open_options.extend(
                [
                    "AUTODETECT_TYPE=YES",
                    "EMPTY_STRING_AS_NULL=YES",
                    "GEOM_POSSIBLE_NAMES=",
                    "KEEP_GEOM_COLUMNS=YES",
                ]
                .map(String::from),
            );
        }
        "shp" | "dbf" => {
            let cpg = file.with_extension("cpg");
            let cpg_upper = file.with_extension("CPG");
            if let Some(enc) = encoding {
                open_options.push(format!("ENCODING={enc}"));
            } else if !cpg.exists() && !cpg_upper.exists() {
                let dbf = file.with_extension("dbf");
                if dbf.exists() && !is_utf8_file(&dbf)? {
                    warnings.push(
                        "Shapefile has no .cpg and its text is not UTF-8: read as Windows-1252 (Latin-1); use --encoding to override".into(),
                    );
                    open_options.push("ENCODING=CP1252".into());
                }
            }
        }
        // GML: GDAL would otherwise write a .gfs file beside the source (which may be read-only).
        // Nor fetch a WFS's remote application schema the file points at: an ingest reads
        // the file it was given and reaches no other host.
        "gml" | "xml" => open_options.extend(["WRITE_GFS=NO".into(), "DOWNLOAD_SCHEMA=NO".into()]),
        _ => {
            if let Some(enc) = encoding {
                warnings.push(format!(
                    "--encoding {enc} ignored: it applies to Shapefiles and CSV"
                ));
            }
        }
    }
    Ok(PreparedSource {
        gdal_path,
        open_options,
        kind,
        name,
        sha256,
        warnings,
        allow_any_driver: false,
        _scratch: scratch,
    })
}

fn scratch_dir(scratch: &mut Option<tempfile::TempDir>) -> Result<PathBuf, IngestError> {
    if scratch.is_none() {
        *scratch =
            Some(tempfile::tempdir().map_err(|e| IngestError::io("temporary directory", e))?);
    }
    Ok(scratch
        .as_ref()
        .map(|d| d.path().to_path_buf())
        .unwrap_or_default())
}

fn starts_with_array(path: &Path) -> Result<bool, IngestError> {
    let mut head = [0u8; 512];
    let mut f = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let n = f.read(&mut head).map_err(|e| IngestError::io(path, e))?;
    let text = head[..n]
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&head[..n]);
    Ok(text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'['))
}

/// Streams `[feature, …]` into `{"type":"FeatureCollection","features":[feature, …]}` so the
/// file is never held in memory.
fn wrap_feature_array(src: &Path, dst: &Path) -> Result<(), IngestError> {
    let mut input = BufReader::new(File::open(src).map_err(|e| IngestError::io(src, e))?);
    let mut out = BufWriter::new(File::create(dst).map_err(|e| IngestError::io(dst, e))?);
    let mut bom = [0u8; 3];
    let n = input.read(&mut bom).map_err(|e| IngestError::io(src, e))?;
    out.write_all(br#"{"type":"FeatureCollection","features":"#)
        .map_err(|e| IngestError::io(dst, e))?;
    if &bom[..n] != b"\xEF\xBB\xBF" {
        out.write_all(&bom[..n])
            .map_err(|e| IngestError::io(dst, e))?;
    }
    std::io::copy(&mut input, &mut out).map_err(|e| IngestError::io(dst, e))?;
    out.write_all(b"}").map_err(|e| IngestError::io(dst, e))?;
    out.flush().map_err(|e| IngestError::io(dst, e))
}

fn is_utf8_file(path: &Path) -> Result<bool, IngestError> {
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut buf = Vec::with_capacity(1 << 16);
    let mut carry: Vec<u8> = Vec::new();
    loop {
        buf.clear();
        buf.extend_from_slice(&carry);
        let mut chunk = vec![0u8; 1 << 16];
        let n = reader
            .read(&mut chunk)
            .map_err(|e| IngestError::io(path, e))?;
        if n == 0 {
            return Ok(carry.is_empty() || std::str::from_utf8(&carry).is_ok());
        }
        buf.extend_from_slice(&chunk[..n]);
        match std::str::from_utf8(&buf) {
            Ok(_) => carry.clear(),
            // An incomplete sequence at the end of a chunk is not an error yet.
            Err(e) if e.error_len().is_none() => carry = buf[e.valid_up_to()..].to_vec(),
            Err(_) => return Ok(false),
        }
    }
}

/// Bytes decoded per step when transcoding: memory stays flat in the file's size.
const TRANSCODE_CHUNK: usize = 1 << 16;

fn transcode_to_utf8(
    src: &Path,
    label: &str,
    scratch: &mut Option<tempfile::TempDir>,
) -> Result<PathBuf, IngestError> {
    let encoding = encoding_rs::Encoding::for_label(label.as_bytes())
        .ok_or_else(|| IngestError::UnknownEncoding(label.to_string()))?;
    let dir = scratch_dir(scratch)?;
    let dst = dir.join(src.file_name().unwrap_or_default());
    let input = File::open(src).map_err(|e| IngestError::io(src, e))?;
    let output = File::create(&dst).map_err(|e| IngestError::io(&dst, e))?;
    transcode(input, BufWriter::new(output), encoding, TRANSCODE_CHUNK)
        .map_err(|e| IngestError::io(src, e))?;
    Ok(dst)
}

/// Decodes `input` from `encoding` to UTF-8 on `output`, `chunk` bytes at a time. A character
/// whose bytes straddle two chunks is held by the decoder until its last byte arrives; a BOM
/// overrides `encoding`, as in `Encoding::decode`.
fn transcode(
    mut input: impl Read,
    mut output: impl Write,
    encoding: &'static encoding_rs::Encoding,
    chunk: usize,
) -> std::io::Result<()> {
    let mut decoder = encoding.new_decoder();
    let mut bytes = vec![0u8; chunk.max(1)];
    // Room for the worst case (three UTF-8 bytes per input byte, plus a replacement character
    // for a sequence left open); `OutputFull` is handled all the same.
    let mut text = String::with_capacity(bytes.len() * 3 + 16);
    loop {
        let n = match input.read(&mut bytes) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let last = n == 0;
        let mut pending = &bytes[..n];
        loop {
            let (result, read, _) = decoder.decode_to_string(pending, &mut text, last);
            pending = &pending[read..];
            output.write_all(text.as_bytes())?;
            text.clear();
            if result == encoding_rs::CoderResult::InputEmpty {
                break;
            }
        }
        if last {
            return output.flush();
        }
    }
}

/// Unpacks a zip into `dir` and returns what to open: the one `.shp` (or other single data
/// file) inside, or the directory itself.
fn unzip(zip_path: &Path, dir: &Path) -> Result<PathBuf, IngestError> {
    let bad = |reason: String| IngestError::BadZip {
        path: zip_path.display().to_string(),
        reason,
    };
    let file = File::open(zip_path).map_err(|e| IngestError::io(zip_path, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    let mut total: u64 = 0;
    let mut data_files = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| bad(e.to_string()))?;
        if entry.is_dir() {
            continue;
        }
        // `enclosed_name` refuses absolute paths and `..`, so nothing lands outside `dir`.
        let Some(rel) = entry.enclosed_name() else {
            return Err(bad(format!("unsafe path in archive: {}", entry.name())));
        };
        if rel
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with("__MACOSX"))
        {
            continue;
        }
        let out_path = dir.join(&rel);
        if let Some(parent) = out_path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| IngestError::io(parent, e))?;
        }
        let mut out = File::create(&out_path).map_err(|e| IngestError::io(&out_path, e))?;
        let limit = MAX_UNZIPPED_BYTES.saturating_sub(total) + 1;
        let copied = std::io::copy(&mut (&mut entry).take(limit), &mut out)
            .map_err(|e| bad(e.to_string()))?;
        total += copied;
        if total > MAX_UNZIPPED_BYTES {
            return Err(bad(format!(
                "unpacks to more than {MAX_UNZIPPED_BYTES} bytes"
            )));
        }
        let ext = extension(&out_path);
        if matches!(
            ext.as_str(),
            "shp"
                | "gpkg"
                | "geojson"
                | "json"
                | "gml"
                | "kml"
                | "fgb"
                | "csv"
                | "sqlite"
                | "tab"
                | "mif"
        ) {
            data_files.push(out_path);
        }
    }
    let shps: Vec<&PathBuf> = data_files
        .iter()
        .filter(|p| extension(p) == "shp")
        .collect();
    match (shps.len(), data_files.len()) {
        (1, _) => Ok(shps[0].clone()),
        (0, 1) => Ok(data_files.remove(0)),
        (0, 0) => Err(bad("no spatial data file inside".into())),
        _ => Ok(dir.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_paths_are_recognised() {
        for p in [
            "/vsicurl/http://x/y.shp",
            "/vsizip/a.zip",
            "http://example.org/a.geojson",
            "PG:dbname=x",
            "CSV:/tmp/a.txt",
            "OAPIF:https://x",
            "WFS:http://x",
        ] {
            assert!(is_gdal_special(p), "{p}");
        }
        for p in ["/data/a.geojson", "a.csv", "C:/data/a.shp", "./dir/x.gml"] {
            assert!(!is_gdal_special(p), "{p}");
        }
    }

    #[test]
    fn refuses_special_paths_unless_allowed() {
        assert!(matches!(
            prepare("/vsicurl/http://x/a.shp", None, false),
            Err(IngestError::RefusedPath(_))
        ));
        assert!(prepare("/vsimem/a.shp", None, true).is_ok());
    }

    #[test]
    fn missing_and_empty_files() {
        assert!(matches!(
            prepare("/nonexistent/a.geojson", None, false),
            Err(IngestError::NotFound(_))
        ));
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("e.geojson");
        std::fs::write(&empty, b"").expect("write");
        assert!(matches!(
            prepare(&empty.display().to_string(), None, false),
            Err(IngestError::Empty(_))
        ));
    }

    #[test]
    fn transcoding_holds_a_character_cut_at_a_chunk_edge() {
        let text = "namn;ort\nGöteborg;Malmö\n東京;Ålesund €\n";
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let cases: [(&'static encoding_rs::Encoding, Vec<u8>); 4] = [
            (
                encoding_rs::SHIFT_JIS,
                encoding_rs::SHIFT_JIS.encode(text).0.into_owned(),
            ),
            (
                encoding_rs::GB18030,
                encoding_rs::GB18030.encode(text).0.into_owned(),
            ),
            (
                encoding_rs::WINDOWS_1252,
                b"G\xf6teborg;Malm\xf6 \x80\n".to_vec(),
            ),
            (encoding_rs::WINDOWS_1252, utf16),
        ];
        for (encoding, bytes) in cases {
            let whole = encoding.decode(&bytes).0.into_owned();
            // Chunks of 1 to 7 bytes cut every multi-byte character somewhere.
            for chunk in 1..=7 {
                let mut out = Vec::new();
                transcode(&bytes[..], &mut out, encoding, chunk).expect("transcode");
                assert_eq!(
                    String::from_utf8(out).expect("UTF-8"),
                    whole,
                    "{} {chunk}",
                    encoding.name()
                );
            }
        }
        // A character left open at the end of the file becomes one replacement character.
        let mut out = Vec::new();
        transcode(&b"ok\x82"[..], &mut out, encoding_rs::SHIFT_JIS, 2).expect("transcode");
        assert_eq!(out, "ok\u{fffd}".as_bytes());
    }

    #[test]
    fn utf8_detection_across_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.csv");
        let mut text = "x".repeat((1 << 16) - 1);
        text.push('ö');
        std::fs::write(&p, text.as_bytes()).expect("write");
        assert!(is_utf8_file(&p).expect("read"));
        std::fs::write(&p, b"namn\nG\xf6teborg\n").expect("write");
        assert!(!is_utf8_file(&p).expect("read"));
    }
}
