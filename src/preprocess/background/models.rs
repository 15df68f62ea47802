//! rembg's models: their table (names, release files, checksums, input contracts), the places
//! rembg keeps them, and downloading one the way rembg does.
//!
//! rembg 2.0.86 (`rembg/sessions/base.py`) looks for `<name>.onnx` in exactly two places, in
//! this order ([`rembg_places`]):
//!
//! 1. the model's own folder `<home>/models/<name>/`, where `<home>` is `$U2NET_HOME` when set,
//!    else `$REMBG_HOME`, else `$XDG_DATA_HOME/rembg`, else `~/.rembg` (new downloads go here);
//! 2. the old flat folder: `$U2NET_HOME` when set, else `$XDG_DATA_HOME/.u2net`, else
//!    `~/.u2net` (read only; what rembg before 2.0.8x and the original PIXAL used).
//!
//! An empty variable counts as unset (rembg would use the empty string as a relative path).
//!
//! When neither holds the file, rembg downloads it from its GitHub release with pooch, checks
//! its checksum and stores it in the first place; [`download`] does the same: the same address
//! (or a mirror's base address), the same checksum (md5, sha256 for bria-rmbg), written to a
//! temporary file in the destination folder that is renamed into place only once complete and
//! verified, so an interrupted or corrupt download never leaves a file behind.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::onnx::Contract;

/// The base address of rembg's model release: `<base>/<remote file>` is what rembg fetches.
pub const RELEASE_URL: &str = "https://github.com/danielgatis/rembg/releases/download/v0.0.0";

/// How a downloaded model file is checked: rembg's own checksum for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// MD5, as 32 lower-case hex digits.
    Md5(&'static str),
    /// SHA-256, as 64 lower-case hex digits.
    Sha256(&'static str),
}

/// One model of rembg's table that pixal runs with rembg's own pre- and post-processing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelInfo {
    /// rembg's session name (`rembg i -m <name>`), also the file stem it is stored under.
    pub name: &'static str,
    /// The file name in rembg's release (the download address's last part).
    pub remote_file: &'static str,
    /// rembg's checksum of that file.
    pub checksum: Checksum,
    /// The input contract (size, mean, std) rembg's session uses.
    pub contract: Contract,
}

impl ModelInfo {
    /// The file name rembg stores the model under: `<name>.onnx`.
    pub fn file_name(&self) -> String {
        format!("{}.onnx", self.name)
    }

    /// The address rembg downloads it from, or the same file under another base address.
    pub fn url(&self, base: &str) -> String {
        format!("{}/{}", base.trim_end_matches('/'), self.remote_file)
    }
}

/// Every model of rembg 2.0.86 whose session does exactly what [`super::onnx`] does (normalise,
/// run, min-max the first output, Lanczos back). Left out: the BiRefNet family (a sigmoid on the
/// output first), u2net_cloth_seg (three classes), SAM (prompts), the `*_custom` sessions (a
/// user file: give its path as the model) and the remote services.
pub const MODELS: [ModelInfo; 7] = [
    ModelInfo {
        name: "u2net",
        remote_file: "u2net.onnx",
        checksum: Checksum::Md5("60024c5c889badc19c04ad937298a77b"),
        contract: Contract::U2NET,
    },
    ModelInfo {
        name: "u2netp",
        remote_file: "u2netp.onnx",
        checksum: Checksum::Md5("8e83ca70e441ab06c318d82300c84806"),
        contract: Contract::U2NET,
    },
    ModelInfo {
        name: "u2net_human_seg",
        remote_file: "u2net_human_seg.onnx",
        checksum: Checksum::Md5("c09ddc2e0104f800e3e1bb4652583d1f"),
        contract: Contract::U2NET,
    },
    ModelInfo {
        name: "silueta",
        remote_file: "silueta.onnx",
        checksum: Checksum::Md5("55e59e0d8062d2f5d013f4725ee84782"),
        contract: Contract::U2NET,
    },
    ModelInfo {
        name: "isnet-general-use",
        remote_file: "isnet-general-use.onnx",
        checksum: Checksum::Md5("fc16ebd8b0c10d971d3513d564d01e29"),
        contract: Contract::ISNET,
    },
    ModelInfo {
        name: "isnet-anime",
        remote_file: "isnet-anime.onnx",
        checksum: Checksum::Md5("6f184e756bb3bd901c8849220a83e38e"),
        contract: Contract::ISNET_ANIME,
    },
    ModelInfo {
        name: "bria-rmbg",
        remote_file: "bria-rmbg-2.0.onnx",
        checksum: Checksum::Sha256(
            "5b486f08200f513f460da46dd701db5fbb47d79b4be4b708a19444bcd4e79958",
        ),
        contract: Contract::IMAGENET_1024,
    },
];

/// The table entry of a rembg model name (exact, as rembg spells it).
pub fn info(name: &str) -> Option<&'static ModelInfo> {
    MODELS.iter().find(|m| m.name == name)
}

/// Where rembg looks for one model, in its order, and where it would download it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RembgPlaces {
    /// The files looked at, in order: `<home>/models/<name>/<name>.onnx`, then the old flat
    /// folder's `<name>.onnx`.
    pub candidates: Vec<PathBuf>,
    /// The folder a download goes to: `<home>/models/<name>`.
    pub model_dir: PathBuf,
    /// Which variables decided `<home>` and the old folder, for messages.
    pub decided_by: String,
}

impl RembgPlaces {
    /// The first candidate that is a file.
    pub fn existing(&self) -> Option<&Path> {
        self.candidates
            .iter()
            .find(|p| p.is_file())
            .map(PathBuf::as_path)
    }
}

/// rembg's places for the model `name` (see the module documentation), reading the
/// environment through `env` (empty values count as unset). Fails only when a place needs the
/// home folder and `HOME` is unset.
pub fn rembg_places(
    name: &str,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<RembgPlaces, String> {
    let var = |k: &str| env(k).filter(|v| !v.is_empty());
    let home = var("HOME").map(PathBuf::from);
    let need_home = |what: &str| -> Result<PathBuf, String> {
        home.clone().ok_or_else(|| {
            format!("HOME is not set, so rembg's {what} (under ~) cannot be located")
        })
    };
    // Python's os.path.expanduser on the leading `~` only.
    let expand = |v: OsString| -> Result<PathBuf, String> {
        let p = PathBuf::from(v);
        match p.strip_prefix("~") {
            Ok(rest) => Ok(need_home("folder")?.join(rest)),
            Err(_) => Ok(p),
        }
    };
    let (root, legacy, decided_by) = if let Some(u) = var("U2NET_HOME") {
        let u = expand(u)?;
        (u.clone(), u, "U2NET_HOME".to_string())
    } else {
        let xdg = var("XDG_DATA_HOME").map(&expand).transpose()?;
        let legacy = match &xdg {
            Some(x) => x.join(".u2net"),
            None => need_home("old model folder")?.join(".u2net"),
        };
        let (root, why) = match (var("REMBG_HOME"), &xdg) {
            (Some(r), _) => (expand(r)?, "REMBG_HOME"),
            (None, Some(x)) => (x.join("rembg"), "XDG_DATA_HOME"),
            (None, None) => (need_home("model folder")?.join(".rembg"), "HOME"),
        };
        let why = if xdg.is_some() && why == "REMBG_HOME" {
            "REMBG_HOME; old folder from XDG_DATA_HOME".to_string()
        } else {
            why.to_string()
        };
        (root, legacy, why)
    };
    let model_dir = root.join("models").join(name);
    let file = format!("{name}.onnx");
    let mut candidates = vec![model_dir.join(&file), legacy.join(&file)];
    candidates.dedup();
    Ok(RembgPlaces {
        candidates,
        model_dir,
        decided_by,
    })
}

/// Why a download failed. Each names the address or file.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The server could not be reached or answered with an error.
    #[error("cannot download {url}: {reason}")]
    Http {
        /// The address.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The file arrived but its checksum is not rembg's.
    #[error(
        "downloaded {url} but its {kind} is {got}, not rembg's {expected}; the file was discarded"
    )]
    Checksum {
        /// The address.
        url: String,
        /// `md5` or `sha256`.
        kind: &'static str,
        /// rembg's checksum.
        expected: String,
        /// The checksum of what arrived.
        got: String,
    },
    /// The file could not be written into the model folder.
    #[error("cannot store the downloaded model: {0}")]
    Write(String),
}

/// An incremental hash of either kind.
enum Hasher {
    Md5(md5::Md5),
    Sha256(sha2::Sha256),
}

impl Hasher {
    fn new(c: Checksum) -> Hasher {
        use sha2::Digest;
        match c {
            Checksum::Md5(_) => Hasher::Md5(md5::Md5::new()),
            Checksum::Sha256(_) => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Md5(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }

    fn hex(self) -> String {
        use sha2::Digest;
        let bytes: Vec<u8> = match self {
            Hasher::Md5(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Downloads `model` from `<base_url>/<remote file>` into `dest_dir/<name>.onnx`, as rembg
/// does: the checksum must be rembg's, and the file appears only once complete and verified.
/// `progress(done, total)` is called as bytes arrive (`total` when the server says it).
/// Returns the installed file.
pub fn download(
    model: &ModelInfo,
    base_url: &str,
    dest_dir: &Path,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<PathBuf, DownloadError> {
    let url = model.url(base_url);
    let http = |reason: String| DownloadError::Http {
        url: url.clone(),
        reason,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        // The whole body: generous, a large model on a slow line takes minutes.
        .timeout_recv_body(Some(Duration::from_secs(3600)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .user_agent(concat!("pixal/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let response = agent.get(&url).call().map_err(|e| http(e.to_string()))?;
    let total = response.body().content_length();
    let mut body = response.into_body().into_reader();

    let dest = dest_dir.join(model.file_name());
    let mut hasher = Hasher::new(model.checksum);
    let mut done = 0u64;
    let mut failure: Option<DownloadError> = None;
    let written = crate::io::atomic::write_with(&dest, |w| {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    failure = Some(http(format!(
                        "the transfer broke off after {done} bytes: {e}"
                    )));
                    return Err("download failed".into());
                }
            };
            hasher.update(&buf[..n]);
            w.write_all(&buf[..n]).map_err(|e| e.to_string())?;
            done += n as u64;
            progress(done, total);
        }
        if let Some(t) = total
            && t != done
        {
            failure = Some(http(format!(
                "the server announced {t} bytes and sent {done}"
            )));
            return Err("download incomplete".into());
        }
        let got = std::mem::replace(&mut hasher, Hasher::new(model.checksum)).hex();
        let (kind, expected) = match model.checksum {
            Checksum::Md5(h) => ("md5", h),
            Checksum::Sha256(h) => ("sha256", h),
        };
        if got != expected {
            failure = Some(DownloadError::Checksum {
                url: url.clone(),
                kind,
                expected: expected.to_string(),
                got,
            });
            return Err("checksum mismatch".into());
        }
        Ok(())
    });
    match (written, failure) {
        (_, Some(f)) => Err(f),
        (Err(e), None) => Err(DownloadError::Write(e.to_string())),
        (Ok(()), None) => Ok(dest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let map: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| {
            map.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn places_follow_rembgs_order() {
        // Nothing set but HOME: ~/.rembg/models/<name>, then ~/.u2net.
        let p = rembg_places("u2net", env_of(&[("HOME", "/h")])).unwrap();
        assert_eq!(
            p.candidates,
            vec![
                PathBuf::from("/h/.rembg/models/u2net/u2net.onnx"),
                PathBuf::from("/h/.u2net/u2net.onnx")
            ]
        );
        assert_eq!(p.model_dir, PathBuf::from("/h/.rembg/models/u2net"));
        // XDG_DATA_HOME moves both.
        let p = rembg_places(
            "silueta",
            env_of(&[("HOME", "/h"), ("XDG_DATA_HOME", "/x")]),
        )
        .unwrap();
        assert_eq!(
            p.candidates,
            vec![
                PathBuf::from("/x/rembg/models/silueta/silueta.onnx"),
                PathBuf::from("/x/.u2net/silueta.onnx")
            ]
        );
        // REMBG_HOME wins over XDG_DATA_HOME for the new folder only.
        let p = rembg_places(
            "u2netp",
            env_of(&[
                ("HOME", "/h"),
                ("XDG_DATA_HOME", "/x"),
                ("REMBG_HOME", "~/r"),
            ]),
        )
        .unwrap();
        assert_eq!(
            p.candidates,
            vec![
                PathBuf::from("/h/r/models/u2netp/u2netp.onnx"),
                PathBuf::from("/x/.u2net/u2netp.onnx")
            ]
        );
        // U2NET_HOME wins over everything, for both.
        let p = rembg_places(
            "u2net",
            env_of(&[("HOME", "/h"), ("REMBG_HOME", "/r"), ("U2NET_HOME", "/u")]),
        )
        .unwrap();
        assert_eq!(
            p.candidates,
            vec![
                PathBuf::from("/u/models/u2net/u2net.onnx"),
                PathBuf::from("/u/u2net.onnx")
            ]
        );
        // Empty values are unset.
        let p = rembg_places("u2net", env_of(&[("HOME", "/h"), ("U2NET_HOME", "")])).unwrap();
        assert_eq!(p.model_dir, PathBuf::from("/h/.rembg/models/u2net"));
        // No HOME and nothing else: an error that says so.
        let e = rembg_places("u2net", env_of(&[])).unwrap_err();
        assert!(e.contains("HOME"), "{e}");
        // But U2NET_HOME alone is enough.
        assert!(rembg_places("u2net", env_of(&[("U2NET_HOME", "/u")])).is_ok());
    }

    #[test]
    fn table_matches_rembg() {
        assert_eq!(MODELS.len(), 7);
        for m in &MODELS {
            match m.checksum {
                Checksum::Md5(h) => assert_eq!(h.len(), 32, "{}", m.name),
                Checksum::Sha256(h) => assert_eq!(h.len(), 64, "{}", m.name),
            }
            assert_eq!(info(m.name), Some(m));
        }
        assert_eq!(
            info("u2net").unwrap().url(RELEASE_URL),
            "https://github.com/danielgatis/rembg/releases/download/v0.0.0/u2net.onnx"
        );
        assert_eq!(
            info("bria-rmbg").unwrap().url("http://127.0.0.1:9/m/"),
            "http://127.0.0.1:9/m/bria-rmbg-2.0.onnx"
        );
        assert_eq!(info("bria-rmbg").unwrap().file_name(), "bria-rmbg.onnx");
        assert!(info("birefnet-general").is_none());
    }

    #[test]
    fn md5_and_sha256_hex() {
        let mut h = Hasher::new(Checksum::Md5(""));
        h.update(b"abc");
        assert_eq!(h.hex(), "900150983cd24fb0d6963f7d28e17f72");
        let mut h = Hasher::new(Checksum::Sha256(""));
        h.update(b"abc");
        assert_eq!(
            h.hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
