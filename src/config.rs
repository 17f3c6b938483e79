//! Server-wide configuration: where data lives and how the server listens. Read from flags,
//! then the environment (`DATABASE_URL`, `HAMN_*`), then an optional TOML file, then defaults
//! that work out of the box — in that order of precedence.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::store::embedded::EmbeddedStore;
use crate::store::postgis::PostgisStore;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Settings common to every command, as given by flags or the environment (clap reads both).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GlobalArgs {
    /// TOML configuration file (keys: database_url, data_dir, bind, demo_data, allow_gdal_paths,
    /// allow_any_gdal_driver, basemap_style, and a [dcat] table).
    #[arg(long, global = true, env = "HAMN_CONFIG")]
    pub config: Option<PathBuf>,
    /// PostgreSQL/PostGIS URL (postgres://user:pass@host/db). Without it, hamn uses the embedded store.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory of the embedded store (used when no database URL is set) [default: ./hamn-data].
    #[arg(long, global = true, env = "HAMN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log lines as text or as JSON objects, one a line (for log collectors).
    #[arg(
        long,
        global = true,
        env = "HAMN_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Let ingest open GDAL virtual file systems and network sources (/vsicurl/, http:, PG: …).
    #[arg(long, global = true, env = "HAMN_ALLOW_GDAL_PATHS")]
    pub allow_gdal_paths: Option<bool>,
    /// Let ingest open sources with any GDAL driver, not only the file formats hamn lists (an
    /// OGR VRT, PostgreSQL, WFS … read other files and servers than the one named).
    #[arg(long, global = true, env = "HAMN_ALLOW_ANY_GDAL_DRIVER")]
    pub allow_any_gdal_driver: Option<bool>,
}

/// The optional TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub bind: Option<String>,
    pub demo_data: Option<PathBuf>,
    pub allow_gdal_paths: Option<bool>,
    pub allow_any_gdal_driver: Option<bool>,
    /// A MapLibre style URL for the maps' background (see `ServeArgs::basemap_style`).
    pub basemap_style: Option<String>,
    /// The DCAT-AP-SE catalog at /datasets/dcat (a `[dcat]` table; see `DcatArgs`).
    pub dcat: Option<DcatArgs>,
}

/// Settings of the DCAT-AP-SE catalog at `/datasets/dcat` (see `api::dcat`), as `hamn serve`
/// flags, `HAMN_DCAT_*` variables or keys of the TOML file's `[dcat]` table (without the
/// `dcat-` prefix, `_` for `-`). Checked at start-up by `api::dcat::CatalogSettings::new`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcatArgs {
    /// Catalog title, in the catalog's language (Swedish by default) [default: "Öppna geodata
    /// från <publisher>"].
    #[arg(long = "dcat-title", env = "HAMN_DCAT_TITLE")]
    pub title: Option<String>,
    /// Catalog title in English (optional translation).
    #[arg(long = "dcat-title-en", env = "HAMN_DCAT_TITLE_EN")]
    pub title_en: Option<String>,
    /// Catalog description, in the catalog's language.
    #[arg(long = "dcat-description", env = "HAMN_DCAT_DESCRIPTION")]
    pub description: Option<String>,
    /// Catalog description in English (optional translation).
    #[arg(long = "dcat-description-en", env = "HAMN_DCAT_DESCRIPTION_EN")]
    pub description_en: Option<String>,
    /// Who publishes the catalog, e.g. "Härryda kommun" (mandatory in DCAT-AP-SE).
    #[arg(long = "dcat-publisher", env = "HAMN_DCAT_PUBLISHER")]
    pub publisher: Option<String>,
    /// The publisher's organisationsnummer (10 digits, e.g. 2120001439): its URI becomes
    /// http://dataportal.se/organisation/SE<orgnr>, as dataportal.se expects.
    #[arg(long = "dcat-publisher-orgnr", env = "HAMN_DCAT_PUBLISHER_ORGNR")]
    pub publisher_orgnr: Option<String>,
    /// ADMS publisher type URI [default: http://purl.org/adms/publishertype/LocalAuthority].
    #[arg(long = "dcat-publisher-type", env = "HAMN_DCAT_PUBLISHER_TYPE")]
    pub publisher_type: Option<String>,
    /// Contact point name (a vcard:Organization) [default: the publisher].
    #[arg(long = "dcat-contact-name", env = "HAMN_DCAT_CONTACT_NAME")]
    pub contact_name: Option<String>,
    /// Contact point e-mail, e.g. geodata@harryda.se.
    #[arg(long = "dcat-contact-email", env = "HAMN_DCAT_CONTACT_EMAIL")]
    pub contact_email: Option<String>,
    /// Licence of the catalog (its metadata): a URI or an SPDX id [default: CC0,
    /// http://creativecommons.org/publicdomain/zero/1.0/].
    #[arg(long = "dcat-licence", env = "HAMN_DCAT_LICENCE")]
    pub licence: Option<String>,
    /// Language of the catalog's and the collections' texts: sv, en, fi, nb, da or de
    /// [default: sv].
    #[arg(long = "dcat-language", env = "HAMN_DCAT_LANGUAGE")]
    pub language: Option<String>,
}

impl DcatArgs {
    /// Each setting from `self` (flags, environment) where given, else from `file`.
    pub fn or(self, file: DcatArgs) -> DcatArgs {
        DcatArgs {
            title: self.title.or(file.title),
            title_en: self.title_en.or(file.title_en),
            description: self.description.or(file.description),
            description_en: self.description_en.or(file.description_en),
            publisher: self.publisher.or(file.publisher),
            publisher_orgnr: self.publisher_orgnr.or(file.publisher_orgnr),
            publisher_type: self.publisher_type.or(file.publisher_type),
            contact_name: self.contact_name.or(file.contact_name),
            contact_email: self.contact_email.or(file.contact_email),
            licence: self.licence.or(file.licence),
            language: self.language.or(file.language),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: String,
        source: toml::de::Error,
    },
}

/// Where collections are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    Postgis { url: String },
    Embedded { dir: PathBuf },
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub allow_gdal_paths: bool,
    pub allow_any_gdal_driver: bool,
    pub file: FileConfigValues,
}

/// Values only the file (or later, command flags) set.
#[derive(Debug, Clone, Default)]
pub struct FileConfigValues {
    pub bind: Option<String>,
    pub demo_data: Option<PathBuf>,
    pub basemap_style: Option<String>,
    pub dcat: DcatArgs,
}

impl Config {
    pub fn resolve(args: &GlobalArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let url = args
            .database_url
            .clone()
            .or(file.database_url)
            .filter(|u| !u.is_empty());
        let store = match url {
            Some(url) => StoreConfig::Postgis { url },
            None => StoreConfig::Embedded {
                dir: args
                    .data_dir
                    .clone()
                    .or(file.data_dir)
                    .unwrap_or_else(|| PathBuf::from("hamn-data")),
            },
        };
        Ok(Self {
            store,
            allow_gdal_paths: args
                .allow_gdal_paths
                .or(file.allow_gdal_paths)
                .unwrap_or(false),
            allow_any_gdal_driver: args
                .allow_any_gdal_driver
                .or(file.allow_any_gdal_driver)
                .unwrap_or(false),
            file: FileConfigValues {
                bind: file.bind,
                demo_data: file.demo_data,
                basemap_style: file.basemap_style,
                dcat: file.dcat.unwrap_or_default(),
            },
        })
    }

    pub async fn open_store(&self) -> Result<Box<dyn Store>, StoreError> {
        Ok(match &self.store {
            StoreConfig::Postgis { url } => Box::new(PostgisStore::connect(url).await?),
            StoreConfig::Embedded { dir } => Box::new(EmbeddedStore::open(dir)?),
        })
    }
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_flag_over_file_over_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("hamn.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\nbind = \"0.0.0.0:9000\"\nbasemap_style = \"https://maps.example.se/style.json\"\n",
        )
        .expect("write");
        let mut args = GlobalArgs {
            config: Some(file.clone()),
            ..Default::default()
        };
        let c = Config::resolve(&args).expect("config");
        assert_eq!(
            c.store,
            StoreConfig::Embedded {
                dir: "/from/file".into()
            }
        );
        assert_eq!(c.file.bind.as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(
            c.file.basemap_style.as_deref(),
            Some("https://maps.example.se/style.json")
        );
        args.data_dir = Some("/from/flag".into());
        let c = Config::resolve(&args).expect("config");
        assert_eq!(
            c.store,
            StoreConfig::Embedded {
                dir: "/from/flag".into()
            }
        );
        args.database_url = Some("postgres://x@localhost/db".into());
        let c = Config::resolve(&args).expect("config");
        assert!(matches!(c.store, StoreConfig::Postgis { .. }));
        let none = Config::resolve(&GlobalArgs::default()).expect("config");
        assert_eq!(
            none.store,
            StoreConfig::Embedded {
                dir: "hamn-data".into()
            }
        );
    }

    #[test]
    fn dcat_settings_from_flags_over_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("hamn.toml");
        std::fs::write(
            &file,
            "[dcat]\npublisher = \"Från filen\"\ncontact_email = \"a@b.se\"\n",
        )
        .expect("write");
        let c = Config::resolve(&GlobalArgs {
            config: Some(file.clone()),
            ..Default::default()
        })
        .expect("config");
        let flags = DcatArgs {
            publisher: Some("Från flaggan".into()),
            ..Default::default()
        };
        let merged = flags.or(c.file.dcat.clone());
        assert_eq!(merged.publisher.as_deref(), Some("Från flaggan"));
        assert_eq!(merged.contact_email.as_deref(), Some("a@b.se"));
        std::fs::write(&file, "[dcat]\npublsher = \"typo\"\n").expect("write");
        assert!(Config::resolve(&GlobalArgs {
            config: Some(file),
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("hamn.toml");
        std::fs::write(&file, "databse_url = \"typo\"\n").expect("write");
        let args = GlobalArgs {
            config: Some(file),
            ..Default::default()
        };
        assert!(matches!(
            Config::resolve(&args),
            Err(ConfigError::Parse { .. })
        ));
    }
}
